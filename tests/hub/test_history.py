"""Message history on one process: positions, envelopes, recovery, reads, configuration errors (issue 15)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import attrs
import pytest
from historytest import Subscriber, load_app
from hubtest import RedisProcess, eventually
from timing import timeout, until
from websockets.exceptions import ConnectionClosed

import wsroute
from wsroute.errors import ConfigurationError
from wsroute.hub import Broker, Hub, MemoryBroker, Position, Publisher, Recovery
from wsroute.hub.history import HistoryConfig, MemoryHistory
from wsroute.hub.redis import RedisBroker
from wsroute.testing import serve_app


async def recv(ws: Any) -> Any:
    """One message, failing after 10 s (scaled)."""
    async with asyncio.timeout(timeout(10)):
        return await ws.recv()


def test_position_parse_and_str() -> None:
    """'42:e1' parses to Position(42, 'e1') and back; '' is None; the epoch may hold colons."""
    assert Position.parse("42:e1") == Position(42, "e1")
    assert str(Position(42, "e1")) == "42:e1"
    assert Position.parse("") is None
    assert Position.parse("0:a:b") == Position(0, "a:b")
    assert Position.parse("0:") == Position(0, "")
    assert repr(Position(7, "x")) == "Position(7, 'x')"


@pytest.mark.parametrize("text", ["42", ":e1", "-1:e1", "x:e1", "4 2:e1", "²:e1", "1" * 20 + ":e"])
def test_position_parse_refuses_malformed_text(text: str) -> None:
    """Anything but '<offset>:<epoch>' raises ValueError quoting the text."""
    with pytest.raises(ValueError, match=r"is not '<offset>:<epoch>'"):
        Position.parse(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size must be a positive <int> (got 0 that is a <int>)"),
        ({"size": 1.5}, "size must be a positive <int> (got 1.5 that is a <float>)"),
        ({"size": True}, "size must be a positive <int> (got True that is a <bool>)"),
        ({"ttl": -1}, "ttl must be a positive number of seconds (got -1 that is a <int>)"),
        ({"ttl": "300"}, "ttl must be a positive number of seconds (got '300' that is a <str>)"),
    ],
)
def test_history_settings_are_checked_when_declared(kwargs: dict[str, Any], message: str) -> None:
    """A bad size or ttl fails at hub.history() with ConfigurationError quoting it."""
    with pytest.raises(ConfigurationError) as info:
        Hub().history("room:*", **kwargs)
    assert str(info.value) == f"hub.history(): {message}"


def test_history_glob_must_be_a_non_empty_string() -> None:
    """An empty or non-str glob is refused at declaration."""
    for pattern in ("", None):
        with pytest.raises(ConfigurationError, match="the topic glob must be a non-empty <str>"):
            Hub().history(pattern)  # type: ignore[arg-type]


def test_later_declarations_win_and_same_glob_replaces() -> None:
    """The last glob that matches gives the settings; declaring a glob again replaces it."""
    hub = Hub()
    hub.history("room:*", size=10)
    hub.history("room:vip*", size=20)
    hub.history("room:*", size=30, ttl=5)
    assert hub.history_of("room:vip1") == HistoryConfig(30, 5)
    assert hub.history_of("lobby") is None
    hub.history("room:vip*", size=40)
    assert hub.history_of("room:vip1") == HistoryConfig(40, 300)
    assert hub.history_of("room:1") == HistoryConfig(30, 5)


@pytest.mark.asyncio
async def test_history_cannot_be_declared_once_the_hub_runs() -> None:
    """hub.history() after start raises ConfigurationError: every process must agree before serving."""
    hub = Hub()
    await hub.start()
    try:
        with pytest.raises(ConfigurationError, match=r"hub.history\('room:\*'\): the hub is running"):
            hub.history("room:*")
    finally:
        await hub.stop()


@pytest.mark.asyncio
async def test_a_broker_without_history_fails_at_start() -> None:
    """A broker that does not implement the history methods is refused at start-up, naming the globs."""

    class NoHistory(MemoryBroker):
        publish_history = Broker.publish_history  # type: ignore[assignment]
        read_history = Broker.read_history  # type: ignore[assignment]

        def __repr__(self) -> str:
            return "NoHistory()"

    hub = Hub(broker=NoHistory())
    hub.history("room:*")
    assert not hub.broker.keeps_history and MemoryBroker().keeps_history
    with pytest.raises(ConfigurationError) as info:
        await hub.start()
    assert str(info.value) == (
        "hub.history('room:*'): the broker NoHistory() keeps no message history; "
        "use the memory broker, redis:// or redis+cluster://, or remove the history() call"
    )


@pytest.mark.asyncio
async def test_history_settings_survive_use_broker(redis_url: str) -> None:
    """Replacing the broker (what --broker does) keeps the hub's history settings."""
    app = load_app()
    app.hub.use_broker(redis_url)
    assert app.hub.history_of("h:x") == HistoryConfig(100, 300)
    async with serve_app(app) as server:
        client = Subscriber("x")
        await client.connect(server.url("").rstrip("/"))
        await app.hub.publish("h:x", "hi")
        assert (await client.recv())["data"] == "hi"
        await client.close()


@pytest.mark.asyncio
async def test_envelopes_for_text_and_json_and_plain_frames_elsewhere() -> None:
    """Text becomes a JSON string, publish_json a JSON value, in envelopes; other topics keep plain frames."""
    app = wsroute.App()
    app.hub.history("h:*")

    @app.route("/raw/{topic}")
    async def raw(ws: Any, topic: str) -> None:
        await app.hub.subscribe(ws, topic)
        await ws.send("ready")
        await ws.wait_closed()

    async with serve_app(app) as server, server.connect("/raw/h:a") as hist, server.connect("/raw/plain") as plain:
        assert await recv(hist) == await recv(plain) == "ready"
        await app.hub.publish("h:a", 'say "hi"')
        await app.hub.publish_json("h:a", {"n": [1, 2]})
        await app.hub.publish("plain", "as is")
        await app.hub.publish("plain", b"\x00bin")
        first, second = await recv(hist), await recv(hist)
        epoch = json.loads(first)["epoch"]
        assert first == f'{{"topic":"h:a","offset":1,"epoch":"{epoch}","data":"say \\"hi\\""}}'
        assert json.loads(second) == {"topic": "h:a", "offset": 2, "epoch": epoch, "data": {"n": [1, 2]}}
        assert [await recv(plain), await recv(plain)] == ["as is", b"\x00bin"]


@wsroute.message("say")
@attrs.frozen
class Say:
    text: str


@pytest.mark.asyncio
async def test_a_message_class_is_the_envelope_data_with_its_type_field() -> None:
    """publish_json of a message class instance keeps it in history as an object with the hub's type field."""
    hub = Hub(message_key="kind")
    hub.history("h:*")
    await hub.start()
    try:
        await hub.publish_json("h:a", Say("hi"))
        envelopes, _ = await hub.read_history("h:a")
        assert [e["data"] for e in envelopes] == [{"kind": "say", "text": "hi"}]
    finally:
        await hub.stop()


@pytest.mark.asyncio
async def test_binary_on_a_history_topic_is_refused() -> None:
    """publish(bytes) on a history topic raises TypeError saying why and what to do; nothing is kept."""
    hub = Hub()
    hub.history("h:*")
    await hub.start()
    try:
        with pytest.raises(TypeError) as info:
            await hub.publish("h:a", b"\x01")
        assert str(info.value) == (
            "publish('h:a', <bytes>): topic 'h:a' keeps history, so its messages are JSON envelopes and "
            "cannot be binary; publish a str or use publish_json"
        )
        envelopes, position = await hub.read_history("h:a")
        assert (envelopes, position.offset) == ([], 0)
    finally:
        await hub.stop()


@pytest.mark.asyncio
async def test_read_history_is_bounded_and_follows_positions() -> None:
    """read_history returns the newest `limit` envelopes, or those after a position; another epoch gives none."""
    hub = Hub()
    hub.history("h:*", size=5)
    await hub.start()
    try:
        for i in range(1, 8):
            await hub.publish("h:a", f"m{i}")
        envelopes, position = await hub.read_history("h:a", limit=2)
        assert [e["data"] for e in envelopes] == ["m6", "m7"] and position.offset == 7
        envelopes, _ = await hub.read_history("h:a", limit=100)
        assert [e["offset"] for e in envelopes] == [3, 4, 5, 6, 7]
        envelopes, _ = await hub.read_history("h:a", since=Position(4, position.epoch), limit=2)
        assert [e["offset"] for e in envelopes] == [5, 6]
        assert await hub.read_history("h:a", since=Position(4, "other")) == ([], position)
        for limit in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match="must be a positive <int>"):
                await hub.read_history("h:a", limit=limit)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"read_history\('plain'\): this topic keeps no history"):
            await hub.read_history("plain")
    finally:
        await hub.stop()


@pytest.mark.asyncio
async def test_since_on_a_topic_without_history_is_an_error() -> None:
    """subscribe(since=...) on a plain topic raises ValueError naming hub.history(); without since it returns None."""
    app = wsroute.App()
    results: list[Any] = []

    @app.route("/")
    class Plain(wsroute.Handler):
        async def on_connect(self) -> None:
            results.append(await self.subscribe("plain"))
            try:
                await self.subscribe("other", since=Position(1, "e"))
            except ValueError as exc:
                results.append(str(exc))
            await self.send("done")

    async with serve_app(app) as server, server.connect("/") as ws:
        assert await recv(ws) == "done"
    assert results == [
        None,
        "subscribe(since=...)('other'): this topic keeps no history; declare it with app.hub.history('other') "
        "(or a glob matching it) before the app starts",
    ]


@pytest.mark.asyncio
async def test_malformed_since_closes_with_1008() -> None:
    """The sample app closes a connection whose ?since= does not parse with 1008 and the reason."""
    async with serve_app(load_app()) as server, server.connect("/sub/a?since=abc") as ws:
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1008
        assert ws.close_reason == "position 'abc' is not '<offset>:<epoch>' (e.g. '42:e1')"


@pytest.mark.asyncio
async def test_memory_broker_recovery_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """On one process the ring buffer recovers what a client missed, and not once it expired."""
    app = load_app(monkeypatch, HISTORY_TEST_TTL="0.3")
    async with serve_app(app) as server:
        url = server.url("").rstrip("/")
        client = Subscriber("mem")
        await client.connect(url)
        await client.close()
        for i in range(1, 4):
            await app.hub.publish("h:mem", f"m{i}")
        replayed, recovery = await client.connect(url)
        assert [m["data"] for m in replayed] == ["m1", "m2", "m3"]
        assert (recovery["recovered"], recovery["missed"]) == (True, 3)
        await client.close()
        await app.hub.publish("h:mem", "m4")
        await asyncio.sleep(0.3 + timeout(0.2))
        replayed, recovery = await client.connect(url)
        assert (replayed, recovery["recovered"], recovery["missed"]) == ([], False, 0)
        assert recovery["position"].startswith("4:")
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("broker", ["memory", "redis"])
async def test_publishing_during_recovery_is_merged_without_gap_or_duplicate(
    broker: str, request: pytest.FixtureRequest
) -> None:
    """Messages published while a replay of 300 runs arrive once each, in offset order, after the replay."""
    app = load_app()
    app.hub.history("h:*", size=1000)
    if broker == "redis":
        app.hub.use_broker(request.getfixturevalue("redis_url"))
    async with serve_app(app) as server:
        url = server.url("").rstrip("/")
        client = Subscriber("merge")
        await client.connect(url)
        await client.close()
        for i in range(1, 301):
            await app.hub.publish("h:merge", f"m{i}")

        async def more() -> None:
            for i in range(301, 501):
                await app.hub.publish("h:merge", f"m{i}")
                await asyncio.sleep(0)

        task = asyncio.create_task(more())
        _, recovery = await client.connect(url)
        await task
        assert recovery["recovered"] is True and recovery["missed"] >= 300
        while client.offsets[-1] < 500:
            await client.recv()
        assert client.offsets == list(range(1, 501))
        await client.close()


@pytest.mark.asyncio
async def test_redis_replay_is_byte_for_byte_the_live_envelope(redis_url: str) -> None:
    """The Lua script's live envelope and the replayed one built in Python are the same bytes."""
    app = wsroute.App(broker=redis_url)
    app.hub.history("h:*")

    @app.route("/raw")
    async def raw(ws: Any) -> None:
        await app.hub.subscribe(ws, 'h:"é"')
        await ws.send("ready")
        await ws.wait_closed()

    async with serve_app(app) as server, server.connect("/raw") as ws:
        assert await recv(ws) == "ready"
        await app.hub.publish_json('h:"é"', {"text": "ünï", "n": 1.5})
        live = await recv(ws)
        page = await app.hub.broker.read_history('h:"é"', 0, 10, HistoryConfig(1000, 300))
        assert [frame.decode() for _, frame in page.entries] == [live]
        assert json.loads(live)["topic"] == 'h:"é"'


@pytest.mark.asyncio
async def test_history_subscribe_during_an_outage_is_not_recovered_then_goes_live(
    redis_url: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """During an outage subscribe(since=) gives recovered=False at its position; live follows once Redis is back."""
    caplog.set_level(logging.WARNING, "wsroute.hub.redis")
    app = load_app()
    app.hub.use_broker(RedisBroker(redis_url, backoff_max=0.2))
    async with serve_app(app) as server:
        url = server.url("").rstrip("/")
        await asyncio.to_thread(redis_process.stop)
        await eventually(lambda: "lost Redis" in caplog.text)
        fresh, known = Subscriber("down"), Subscriber("down")
        assert await fresh.connect(url) == ([], {"recovered": False, "missed": 0, "position": "0:"})
        assert await known.connect(url, since="7:e1") == ([], {"recovered": False, "missed": 0, "position": "7:e1"})
        await asyncio.to_thread(redis_process.start)
        await eventually(lambda: "is back" in caplog.text, timeout=20)
        await eventually(lambda: app.hub.broker._confirmed.issuperset({"wsroute:topic:h:down"}))
        await app.hub.publish("h:down", "back")
        assert [(await c.recv())["data"] for c in (fresh, known)] == ["back", "back"]
        assert not app.hub._recoveries.waiting
        for client in (fresh, known):
            await client.close()


def test_recovery_is_a_plain_value() -> None:
    """Recovery holds recovered, missed and position, and compares by value."""
    assert Recovery(True, 3, Position(3, "e")) == Recovery(recovered=True, missed=3, position=Position(3, "e"))


@pytest.mark.asyncio
async def test_client_too_slow_for_its_replay_is_closed_as_a_slow_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that stops reading during a 20 MB replay while 70 new messages arrive is closed; nothing is kept."""
    app = load_app(monkeypatch, HISTORY_TEST_SIZE="40")
    async with serve_app(app) as server:
        big = "x" * 512 * 1024
        for _ in range(40):
            await app.hub.publish("h:big", big)
        _, position = await app.hub.read_history("h:big", limit=1)
        client = server.connect(f"/sub/big?since=0:{position.epoch}", max_size=None, max_queue=1,
                                compression=None, close_timeout=timeout(0.5))
        async with client:  # it never reads: the replay blocks on the server's write buffer
            await until(lambda: bool(app.hub._recoveries.waiting), 5)
            for i in range(70):
                await app.hub.publish("h:big", f"new {i}")
            await eventually(lambda: app.hub.connections == 0, timeout(10))
        assert app.hub.stats.slow_disconnects == 1
        assert not app.hub._recoveries.waiting and app.hub._registry.is_empty()


@pytest.mark.asyncio
async def test_publisher_declaring_history_shares_offsets_with_the_servers(redis_url: str) -> None:
    """A Publisher with the same history() numbers its messages in the servers' sequence; bytes are refused."""
    app = load_app()
    app.hub.use_broker(redis_url)
    async with serve_app(app) as server, Publisher(redis_url) as pub:
        pub.history("h:*", size=100)
        client = Subscriber("pub")
        await client.connect(server.url("").rstrip("/"))
        await app.hub.publish("h:pub", "from the hub")
        assert await pub.publish("h:pub", "from a script") == 1
        assert await pub.publish_json("h:pub", {"n": 1}) == 1
        await client.receive(3)
        assert (client.offsets, client.data) == ([1, 2, 3], ["from the hub", "from a script", {"n": 1}])
        with pytest.raises(TypeError, match="keeps history, so its messages are JSON envelopes"):
            await pub.publish("h:pub", b"\x00")
        assert await pub.publish("plain", b"\x00") == 0
        await client.close()


def test_memory_ring_buffer_bounds_expires_and_renews_the_epoch() -> None:
    """The ring buffer keeps `size` entries, drops those older than ttl, and starts a new epoch after meta_ttl."""
    now = [1000.0]
    history = MemoryHistory(clock=lambda: now[0])
    config = HistoryConfig(3, 10)
    for i in range(1, 6):
        offset, epoch, frame = history.append("t", f'"m{i}"'.encode(), config)
        now[0] += 1
    assert (offset, frame) == (5, f'{{"topic":"t","offset":5,"epoch":"{epoch}","data":"m5"}}'.encode())
    page = history.read("t", None, 10, config)
    assert ([o for o, _ in page.entries], page.position) == ([3, 4, 5], Position(5, epoch))
    now[0] += 8  # m3 was published 10.x s ago: expired; m4, m5 still kept
    assert [o for o, _ in history.read("t", 2, 10, config).entries] == [4, 5]
    now[0] += config.meta_ttl
    page = history.read("t", 5, 10, config)
    assert page.entries == [] and page.position.offset == 0 and page.position.epoch != epoch


async def test_issue_sample_closes_a_malformed_since_with_1008(caplog: pytest.LogCaptureFixture) -> None:
    """The issue's on_connect, copied as written, closes ?since=garbage with 1008 and the reason, logging no error."""
    from wsroute.testing import serve_app

    app = wsroute.App(load_entrypoints=False)
    app.hub.history("room:*", size=1000, ttl=300)

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self) -> None:
            since = wsroute.Position.parse(self.ws.query.get("since", [""])[0])
            result = await self.subscribe(f"room:{self.params['room']}", since=since)
            await self.send(str(result.position))

    async with serve_app(app) as server:
        for bad in ("oops", "-1:e", "12", "1e3:x"):
            async with server.connect(f"/rooms/1?since={bad}") as ws:
                await ws.wait_closed()
            assert ws.close_code == 1008, bad
            assert ws.close_reason == f"position {bad!r} is not '<offset>:<epoch>' (e.g. '42:e1')"
        async with server.connect("/rooms/1?since=") as ws:
            assert (await ws.recv()).startswith("0:")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_invalid_position_is_a_value_error_and_a_close() -> None:
    """InvalidPosition is both a ValueError (for code parsing positions) and a 1008 Close (for handlers)."""
    from wsroute.hub.history import InvalidPosition

    with pytest.raises(InvalidPosition) as caught:
        Position.parse("x")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, wsroute.Close)
    assert caught.value.code == 1008
