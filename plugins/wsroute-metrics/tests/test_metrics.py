"""wsroute-metrics against a real server: /metrics scraped with prometheus_client's parser as traffic flows."""

from __future__ import annotations

import asyncio
import http.client
from typing import Any

import pytest
import wsroute_metrics
from prometheus_client.parser import text_string_to_metric_families

import wsroute
from wsroute.testing import TestServer, serve_app


def make_app(*, hub_options: dict[str, Any] | None = None, **settings: Any) -> wsroute.App:
    """An app with exactly wsroute-metrics (no entry points) and a few routes."""
    app = wsroute.App(
        load_entrypoints=False,
        plugins=[wsroute_metrics],
        settings={"wsroute-metrics": settings} if settings else None,
        hub_options=hub_options,
    )

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_message(self, message: Any) -> None:
            await self.ws.send(message)

    @app.route("/fail")
    async def fail(ws: wsroute.Connection) -> None:
        await ws.recv()
        raise ValueError("boom")

    @app.route("/play", message="join")
    async def join(ws: wsroute.Connection) -> None:
        await ws.send("joined")

    @app.route("/feed", slow_consumer="disconnect")
    async def feed(ws: wsroute.Connection) -> None:
        await ws.send("ready")
        await ws.wait_closed()

    return app


async def scrape(server: TestServer, path: str = "/metrics") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET the metrics and parse them: ``{(sample name, sorted labels): value}``."""
    result = await server.http_get(path)
    assert result.status == 200, result.text
    assert result.headers["content-type"].startswith("text/plain; version=")
    return samples(result.text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """One sample's value, 0.0 when it is absent (a labelled child not created yet)."""
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_connections_messages_and_bytes_move_with_traffic() -> None:
    """Opening, echoing three messages and closing moves the gauge and the traffic, handshake and close counters."""
    async with serve_app(make_app()) as server:
        async with server.connect("/echo") as ws:
            for text in ("a", "bb", "ccc"):
                await ws.send(text)
                assert await ws.recv() == text
            during = await scrape(server)
        for _ in range(100):  # bounded: the server's close hooks run just after the client's close
            after = await scrape(server)
            if value(after, "wsroute_connections", route="/echo") == 0:
                break
            await asyncio.sleep(0.02)
    assert value(during, "wsroute_connections", route="/echo") == 1
    assert value(during, "wsroute_handshakes_total", route="/echo", status="101") == 1
    assert value(during, "wsroute_messages_received_total", route="/echo") == 3
    assert value(during, "wsroute_messages_sent_total", route="/echo") == 3
    assert value(during, "wsroute_received_bytes_total", route="/echo") == 6
    assert value(during, "wsroute_sent_bytes_total", route="/echo") == 6
    assert value(after, "wsroute_connections", route="/echo") == 0
    assert value(after, "wsroute_closes_total", route="/echo", code="1000") == 1
    assert value(after, "wsroute_connection_duration_seconds_count", route="/echo") == 1
    assert value(after, "wsroute_handshakes_total", route="(unmatched)", status="200") == 1  # the first scrape


async def test_route_label_is_the_pattern_and_unmatched_paths_share_one_label() -> None:
    """Two rooms count under /rooms/{room}; a 404 counts under (unmatched), never under its raw path."""
    async with serve_app(make_app()) as server:
        for room in ("red", "blue"):
            async with server.connect(f"/rooms/{room}") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
        assert await server.rejection("/no/such/path") == 404
        found = await scrape(server)
    assert value(found, "wsroute_handshakes_total", route="/rooms/{room}", status="101") == 2
    assert value(found, "wsroute_messages_received_total", route="/rooms/{room}") == 2
    assert value(found, "wsroute_handshakes_total", route="(unmatched)", status="404") == 1
    routes = {dict(labels).get("route") for (_, labels) in found}
    assert not routes & {"/rooms/red", "/rooms/blue", "/no/such/path"}


async def test_handler_failure_is_counted_by_route_and_exception() -> None:
    """A handler raising ValueError counts one failure on /fail and one close with 1011."""
    async with serve_app(make_app()) as server:
        async with server.connect("/fail") as ws:
            await ws.send("go")
            await ws.wait_closed()
        assert ws.close_code == 1011
        for _ in range(100):  # bounded: the closed hook runs after the close frame
            found = await scrape(server)
            if value(found, "wsroute_closes_total", route="/fail", code="1011"):
                break
            await asyncio.sleep(0.02)
    assert value(found, "wsroute_handler_failures_total", route="/fail", exception="ValueError") == 1
    assert value(found, "wsroute_closes_total", route="/fail", code="1011") == 1


async def test_first_message_rejections_by_reason() -> None:
    """A binary first message and an unknown type count as binary and unknown_type; a join counts under its route."""
    async with serve_app(make_app()) as server:
        async with server.connect("/play") as ws:
            await ws.send(b"\x00")
            await ws.wait_closed()
        async with server.connect("/play") as ws:
            await ws.send('{"type": "leave"}')
            await ws.wait_closed()
        async with server.connect("/play") as ws:
            await ws.send('{"type": "join"}')
            assert await ws.recv() == "joined"
        found = await scrape(server)
    assert value(found, "wsroute_first_message_rejections_total", reason="binary") == 1
    assert value(found, "wsroute_first_message_rejections_total", reason="unknown_type") == 1
    assert value(found, "wsroute_handshakes_total", route="/play", status="101") == 3
    assert value(found, "wsroute_messages_received_total", route="/play") == 3  # first messages, by path
    assert value(found, "wsroute_messages_sent_total", route="/play[join]") == 1


async def test_slow_consumer_cut_is_counted() -> None:
    """A client that never reads is cut with 1013: slow-consumer disconnects and drops under 'disconnect' move."""
    app = make_app(hub_options={"max_queue": 2, "max_buffer": 1024, "close_timeout": 0.5})
    options: dict[str, Any] = {"compression": None, "max_size": None, "close_timeout": 0.5}
    async with serve_app(app) as server, server.connect("/feed", **options) as ws:
        assert await ws.recv() == "ready"  # and never reads again
        before = await scrape(server)
        for _ in range(2000):  # bounded: 2,000 x 64 KiB is far beyond every buffer
            await app.hub.broadcast(bytes(64 * 1024))
            await asyncio.sleep(0)
            if app.hub.stats.slow_disconnects:
                break
        after = await scrape(server)
    assert value(before, "wsroute_slow_consumer_disconnects_total") == 0
    assert value(after, "wsroute_slow_consumer_disconnects_total") == 1
    assert value(after, "wsroute_hub_dropped_total", policy="disconnect") >= 1
    assert value(after, "wsroute_hub_delivered_total") == app.hub.stats.delivered
    assert value(after, "wsroute_messages_sent_total", route="/feed") >= 2  # "ready" and fan-out frames


async def test_process_level_gauges_are_exported() -> None:
    """The in-memory broker is up, has not reconnected, and the event-loop lag gauge exists."""
    async with serve_app(make_app(lag_interval=0.01)) as server:
        await asyncio.sleep(0.05)
        found = await scrape(server)
    assert value(found, "wsroute_broker_up") == 1
    assert value(found, "wsroute_broker_reconnects_total") == 0
    assert ("wsroute_event_loop_lag_seconds", ()) in found
    assert found[("wsroute_event_loop_lag_seconds", ())] >= 0


async def test_head_and_other_methods() -> None:
    """HEAD answers 200 without a body; POST gets 405 with Allow."""
    async with serve_app(make_app()) as server:
        head = await server.http_get("/metrics", method="HEAD")
        post = await server.http_get("/metrics", method="POST")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) > 0
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"


async def test_configured_path() -> None:
    """With path '/internal/metrics' the exposition moves there and /metrics is a plain 404."""
    async with serve_app(make_app(path="/internal/metrics")) as server:
        found = await scrape(server, "/internal/metrics")
        assert await server.rejection("/metrics") == 404
    assert value(found, "wsroute_broker_up") == 1


async def test_separate_port() -> None:
    """With port 0 the metrics are served on a port of their own and not on the app's port."""
    app = make_app(port=0)
    async with serve_app(app) as server:
        exporter = wsroute_metrics.exporter_of(app)
        assert exporter is not None and exporter.side_port is not None
        port = exporter.side_port.port

        def fetch(path: str) -> tuple[int, str, str]:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                client.request("GET", path)
                response = client.getresponse()
                return response.status, response.getheader("Content-Type") or "", response.read().decode()
            finally:
                client.close()

        status, content_type, text = await asyncio.to_thread(fetch, "/metrics")
        missing, _, _ = await asyncio.to_thread(fetch, "/other")
        assert await server.rejection("/metrics") == 404
    assert status == 200 and content_type.startswith("text/plain; version=")
    assert value(samples(text), "wsroute_broker_up") == 1
    assert missing == 404


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"path": "metrics"}, "'path' must be a path"),
        ({"port": 70000}, "'port' must be None or a port number"),
        ({"duration_buckets": (5, 1)}, "'duration_buckets' must be increasing"),
        ({"sync_interval": 0}, "'sync_interval' must be a number of seconds > 0"),
    ],
)
async def test_bad_settings_fail_start_up(settings: dict[str, Any], message: str) -> None:
    """A wrong setting stops start-up with a PluginError naming the setting."""
    with pytest.raises(wsroute.PluginError, match=message):
        async with serve_app(make_app(**settings)):
            pass


def test_limit_refusals_adapter_reads_app_stats() -> None:
    """The limits adapter returns {} for an app without stats() and stats().refusals for one with it."""

    class Stats:
        def __init__(self) -> None:
            self.refusals = {("/echo", "rate"): 3}

    class WithLimits:
        def stats(self) -> Stats:
            return Stats()

    assert wsroute_metrics.limit_refusals(wsroute.App(load_entrypoints=False)) in ({}, {})
    assert wsroute_metrics.limit_refusals(WithLimits()) == {("/echo", "rate"): 3}


def test_every_family_follows_prometheus_naming() -> None:
    """Counters end in _total, histograms and durations are in seconds, every name is wsroute_-prefixed."""
    for family in wsroute_metrics.FAMILIES:
        assert family.name.startswith("wsroute_")
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        assert not {"user", "path", "ip", "address"} & set(family.labels)


@pytest.mark.parametrize("durations", [[0.0, 0.1, 0.1000001, 5.0, 14400.0, 20000.0], [], [3600.0] * 4])
def test_bucketed_durations_render_like_observe(durations: list[float]) -> None:
    """Durations bucketed by the core and added whole render the same samples as observe() per duration."""
    import bisect

    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from wsroute.traffic import DEFAULT_DURATION_BUCKETS

    def histogram() -> tuple[CollectorRegistry, Histogram]:
        registry = CollectorRegistry()
        return registry, Histogram("d_seconds", "d", ["route"], registry=registry, buckets=DEFAULT_DURATION_BUCKETS)

    observed_registry, observed = histogram()
    added_registry, added = histogram()
    counts = [0] * (len(DEFAULT_DURATION_BUCKETS) + 1)
    observed.labels("/x")  # the child exists, as after a scrape, even with nothing observed
    for duration in durations:
        observed.labels("/x").observe(duration)
        counts[bisect.bisect_left(DEFAULT_DURATION_BUCKETS, duration)] += 1
    wsroute_metrics.add_to_histogram(added.labels("/x"), counts, sum(durations))

    def without_created(registry: CollectorRegistry) -> list[bytes]:
        return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]

    assert without_created(added_registry) == without_created(observed_registry)
    with pytest.raises(ValueError, match="3 bucket counts for a histogram of 9 buckets"):
        wsroute_metrics.add_to_histogram(added.labels("/x"), [0, 0, 0], 0.0)


async def test_dropped_connection_counts_1006_and_a_duration() -> None:
    """A client that drops TCP without a close frame counts as a 1006 close, with its duration observed."""
    async with serve_app(make_app()) as server:
        assert (await server.handshake("/echo")).status == 101
        for _ in range(100):  # bounded: connection_lost runs just after the socket closes
            found = await scrape(server)
            if value(found, "wsroute_closes_total", route="/echo", code="1006"):
                break
            await asyncio.sleep(0.02)
    assert value(found, "wsroute_closes_total", route="/echo", code="1006") == 1
    assert value(found, "wsroute_connection_duration_seconds_count", route="/echo") == 1
    assert value(found, "wsroute_connection_duration_seconds_bucket", route="/echo", le="+Inf") == 1
    assert value(found, "wsroute_connection_duration_seconds_sum", route="/echo") > 0


async def test_declared_path_lets_wsroute_skip_the_request_hook() -> None:
    """The exporter declares its one path (none with a port of its own), so wsroute asks it about no other."""
    app = make_app(path="/internal/metrics")
    async with serve_app(app) as server:
        exporter = wsroute_metrics.exporter_of(app)
        assert exporter is not None and exporter.wsroute_paths == frozenset({"/internal/metrics"})
        assert app._assembly.handshake is not None
        assert app._assembly.handshake.request_paths == frozenset({"/internal/metrics"})
        found = await scrape(server, "/internal/metrics")
    assert value(found, "wsroute_broker_up") == 1
    side = make_app(port=0)
    async with serve_app(side):
        side_exporter = wsroute_metrics.exporter_of(side)
        assert side_exporter is not None and side_exporter.wsroute_paths == frozenset()
