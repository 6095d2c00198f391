"""wsroute.traffic: what a counting connection counts, on a real server, with no plugin in between."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import wsroute
from wsroute.testing import TestServer, serve_app
from wsroute.traffic import DEFAULT_DURATION_BUCKETS, UNMATCHED, TrafficCounters, TrafficTable

from .timing import MS

BUCKETS = (0.5, 60.0)


def counting_app() -> tuple[wsroute.App, TrafficTable]:
    """An app counting with two duration buckets, an echo route, a refusing route and a first-message route."""
    app = wsroute.App(load_entrypoints=False)
    table = app.count_traffic(duration_buckets=BUCKETS)

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    @app.route("/private")
    async def private(ws: wsroute.Connection) -> None:
        raise AssertionError("never reached: the middleware refuses")

    @app.middleware
    def refuse_private(conn: wsroute.Connection, request: Any) -> Any:
        return conn.respond(403, "no\n") if request.path == "/private" else None

    @app.route("/play", message="join")
    async def join(ws: wsroute.Connection) -> None:
        await ws.send("joined")

    return app, table


async def settled(table: TrafficTable, label: str, closes: int) -> TrafficCounters:
    """The counters of ``label`` once ``closes`` connections were counted as closed (bounded wait)."""
    for _ in range(200):
        counters = table.snapshot().get(label)
        if counters is not None and sum(counters.closes.values()) >= closes:
            return counters
        await asyncio.sleep(5 * MS)
    raise AssertionError(f"{label}: {closes} closes not counted; table: {table.snapshot()}")


async def test_handshakes_are_counted_by_route_and_status() -> None:
    """A 101, a 403 from middleware and a 404 count under their route, the refused route and (unmatched)."""
    app, table = counting_app()
    async with serve_app(app) as server:
        async with server.connect("/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
        assert await server.rejection("/private") == 403
        assert await server.rejection("/nowhere/at/all") == 404
        echo = await settled(table, "/echo", 1)
    found = table.snapshot()
    assert echo.handshakes == {101: 1}
    assert found["/private"].handshakes == {403: 1}
    assert found[UNMATCHED].handshakes == {404: 1}
    assert "/nowhere/at/all" not in found
    assert found["/private"].closes == {} and found[UNMATCHED].closes == {}  # refused: never upgraded


async def test_close_codes_and_durations_are_bucketed_per_route() -> None:
    """A normal close counts 1000 in the first bucket; a dropped TCP connection counts 1006; the sum is positive."""
    app, table = counting_app()
    async with serve_app(app) as server:
        async with server.connect("/echo") as ws:
            await ws.send("x")
            await ws.recv()
        answer = await server.handshake("/echo")  # a raw socket that leaves without a closing handshake
        assert answer.status == 101
        echo = await settled(table, "/echo", 2)
    assert echo.closes == {1000: 1, 1006: 1}
    assert all(type(code) is int for code in echo.closes)  # plain ints, never CloseCode members
    assert echo.durations == [2, 0, 0]  # both well under 0.5 s; one slot per bound, then +Inf
    assert 0 < echo.duration_sum < 2 * BUCKETS[0]


async def test_first_message_route_counts_handshake_by_path_and_close_by_route() -> None:
    """The 101 counts under the path pattern /play; the close under the route the first message chose."""
    app, table = counting_app()
    async with serve_app(app) as server:
        async with server.connect("/play") as ws:
            await ws.send('{"type": "join"}')
            assert await ws.recv() == "joined"
        chosen = await settled(table, "/play[join]", 1)
    assert table.snapshot()["/play"].handshakes == {101: 1}
    assert chosen.closes == {1000: 1}
    assert chosen.messages_sent == 1


async def test_a_101_replaced_by_503_during_shutdown_counts_as_503() -> None:
    """websockets answers 503 instead of 101 when the server stops mid-handshake: the count says 503."""
    app, table = counting_app()
    entered, release = asyncio.Event(), asyncio.Event()

    @app.middleware
    async def hold(conn: wsroute.Connection, request: Any) -> None:
        if request.path == "/echo":
            entered.set()
            await release.wait()

    manager = app.serve("127.0.0.1", 0, close_timeout=1)
    server = await manager.__aenter__()
    test_server = TestServer(app, server)
    answer = asyncio.create_task(test_server.handshake("/echo"))
    await asyncio.wait_for(entered.wait(), 5)
    stopping = asyncio.create_task(manager.__aexit__(None, None, None))
    for _ in range(200):  # bounded: stop() closes the listening socket first
        if not server.is_serving():
            break
        await asyncio.sleep(5 * MS)
    release.set()
    result = await asyncio.wait_for(answer, 5)
    await asyncio.wait_for(stopping, 10)
    assert result.status == 503
    assert table.snapshot()["/echo"].handshakes == {503: 1}


def test_durations_land_in_the_bucket_whose_bound_they_do_not_exceed() -> None:
    """Prometheus' ``le`` rule: a duration equal to a bound belongs to that bound's bucket (bisect_left)."""
    import bisect

    bounds = TrafficTable(BUCKETS).duration_buckets
    assert [bisect.bisect_left(bounds, d) for d in (0.0, 0.5, 0.5001, 60.0, 61.0)] == [0, 0, 1, 1, 2]


def test_a_new_label_starts_with_one_zero_per_bucket_and_snapshots_are_copies() -> None:
    """Counters start at zero with len(bounds)+1 duration slots; mutating a snapshot leaves the table alone."""
    table = TrafficTable()
    counters = table.counters("/x")
    assert counters.durations == [0] * (len(DEFAULT_DURATION_BUCKETS) + 1)
    counters.handshakes[101] = 1
    copy = table.snapshot()["/x"]
    copy.handshakes[101] = 99
    copy.durations[0] = 5
    assert table.counters("/x").handshakes == {101: 1} and table.counters("/x").durations[0] == 0


@pytest.mark.parametrize("buckets", [(), (1.0, 1.0), (5.0, 1.0), (0.0, 1.0), (-1.0,)])
def test_bad_duration_buckets_fail_at_configuration(buckets: tuple[float, ...]) -> None:
    """Empty, repeated, decreasing or non-positive bounds raise ConfigurationError naming count_traffic."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(wsroute.ConfigurationError, match=r"count_traffic\(duration_buckets=.*increasing positive"):
        app.count_traffic(duration_buckets=buckets)


def test_two_callers_share_one_table_and_must_agree_on_buckets() -> None:
    """A second caller gets the same table; different explicit bounds are refused with both named."""
    app = wsroute.App(load_entrypoints=False)
    table = app.count_traffic(duration_buckets=(1, 2))
    assert app.count_traffic() is table
    assert app.count_traffic(duration_buckets=(1.0, 2.0)) is table
    with pytest.raises(wsroute.ConfigurationError, match=r"already counts with buckets \(1\.0, 2\.0\)"):
        app.count_traffic(duration_buckets=(1, 3))
