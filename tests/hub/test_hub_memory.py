"""The hub with its in-memory broker, on a real websockets server."""

from __future__ import annotations

import asyncio
import json

import pytest
from hubtest import eventually, open_client, receive, running_hub

from wsroute.errors import BrokerError
from wsroute.hub import Hub, MemoryBroker, SlowConsumer, make_broker


@pytest.mark.asyncio
async def test_broadcast_reaches_every_client_once_in_order() -> None:
    """Every client receives every broadcast exactly once, in publish order."""
    hub = Hub()
    async with running_hub(hub) as url:
        clients = [await open_client(url) for _ in range(5)]
        for i in range(200):
            await hub.broadcast(f"m{i}")
        await hub.broadcast("end")
        for ws in clients:
            assert await receive(ws, 201) == [f"m{i}" for i in range(200)] + ["end"]
            await ws.close()
    assert hub.stats.delivered == 5 * 201


@pytest.mark.asyncio
async def test_str_is_text_and_bytes_is_binary() -> None:
    """A str is sent as a text frame and bytes as a binary frame."""
    hub = Hub()
    async with running_hub(hub) as url:
        ws = await open_client(url)
        await hub.broadcast("text")
        await hub.broadcast(b"\x00\x01")
        assert await receive(ws, 2) == ["text", b"\x00\x01"]
        await ws.close()


@pytest.mark.asyncio
async def test_publish_reaches_only_subscribers() -> None:
    """A topic message reaches the topic's subscribers and nobody else."""
    hub = Hub()
    async with running_hub(hub) as url:
        a = await open_client(url, "?topics=a")
        ab = await open_client(url, "?topics=a,b")
        b = await open_client(url, "?topics=b")
        await hub.publish("a", "to-a")
        await hub.publish("b", "to-b")
        assert await receive(a, 1) == ["to-a"]
        assert await receive(ab, 2) == ["to-a", "to-b"]
        assert await receive(b, 1) == ["to-b"]
        for ws in (a, ab, b):
            await ws.close()


@pytest.mark.asyncio
async def test_send_to_user_reaches_every_connection_of_the_user() -> None:
    """send_to_user reaches both connections of alice and none of bob's."""
    hub = Hub()
    async with running_hub(hub) as url:
        alice1 = await open_client(url, "?user=alice")
        alice2 = await open_client(url, "?user=alice")
        bob = await open_client(url, "?user=bob")
        await hub.send_to_user("alice", "hi alice")
        await hub.send_to_user("nobody", "lost")
        await hub.send_to_user("bob", "hi bob")
        assert await receive(alice1, 1) == ["hi alice"]
        assert await receive(alice2, 1) == ["hi alice"]
        assert await receive(bob, 1) == ["hi bob"]
        for ws in (alice1, alice2, bob):
            await ws.close()


@pytest.mark.asyncio
async def test_json_variants_send_compact_json_text() -> None:
    """The _json variants send one compact JSON text frame."""
    hub = Hub()
    async with running_hub(hub) as url:
        ws = await open_client(url, "?user=u&topics=t")
        await hub.broadcast_json({"a": 1})
        await hub.publish_json("t", [1, 2])
        await hub.send_json_to_user("u", {"b": None})
        assert await receive(ws, 3) == ['{"a":1}', "[1,2]", '{"b":null}']
        await ws.close()


@pytest.mark.asyncio
async def test_presence_and_join_leave_events() -> None:
    """presence() lists subscribed users; on_presence gets join then leave."""
    hub = Hub()
    events: list[tuple[str, str, str]] = []

    async def on_presence(topic: str, event: str, user_id: str) -> None:
        events.append((topic, event, user_id))

    async with running_hub(hub) as url:
        watcher = await open_client(url)
        (conn,) = list(hub._registry.conns)
        await hub.subscribe(conn, "room", on_presence=on_presence)
        alice = await open_client(url, "?user=alice&topics=room")
        assert await hub.presence("room") == {"alice"}
        await alice.close()
        await eventually(lambda: ("room", "leave", "alice") in events)
        assert events == [("room", "join", "alice"), ("room", "leave", "alice")]
        assert await hub.presence("room") == set()
        await watcher.close()


@pytest.mark.asyncio
async def test_a_thousand_cycles_leave_nothing_behind() -> None:
    """1,000 connect/subscribe/unsubscribe/disconnect cycles leave every map empty."""
    hub = Hub()
    async with running_hub(hub) as url:
        for i in range(1000):
            ws = await open_client(url, f"?user=u{i % 7}&topics=t{i % 13},all")
            if i % 2:
                await ws.send("presence all")
                assert "u" in await ws.recv()
            await ws.close()
        await eventually(lambda: hub.connections == 0)
        assert hub._registry.is_empty()
        assert hub._delivery._behind == {} and hub._delivery._policies == {}
        assert await hub.presence("all") == set()
        assert hub.broker._present == {}  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_subscribe_requires_an_attached_connection() -> None:
    """Subscribing a connection that was never attached raises ValueError."""
    hub = Hub()
    await hub.start()
    with pytest.raises(ValueError, match="not attached"):
        await hub.subscribe(object(), "t")  # type: ignore[arg-type]
    await hub.stop()


def test_bad_options_fail_at_construction() -> None:
    """A bad policy, max_queue or broker URL raises with the value and the choices."""
    with pytest.raises(ValueError, match="'disconnect', 'drop_oldest', 'keep_latest'"):
        Hub(policy="slow")
    with pytest.raises(ValueError, match="max_queue must be a positive <int>"):
        Hub(max_queue=0)
    with pytest.raises(ValueError, match="unknown scheme 'amqp'"):
        Hub(broker="amqp://x")
    assert isinstance(make_broker("memory://"), MemoryBroker)
    assert Hub(policy="keep_latest")._delivery.policy is SlowConsumer.KEEP_LATEST


@pytest.mark.asyncio
async def test_publish_failure_is_counted_and_raised() -> None:
    """A broker error in publish is re-raised and counted in stats."""

    class Broken(MemoryBroker):
        async def publish_topic(self, topic: str, text: bool, payload: bytes) -> None:
            raise BrokerError("down")

    hub = Hub(broker=Broken())
    await hub.start()
    with pytest.raises(BrokerError):
        await hub.publish("t", "x")
    assert hub.stats.publish_failures == 1
    await hub.stop()


def test_messages_must_be_str_or_bytes() -> None:
    """Sending something else than str or bytes raises a TypeError."""
    hub = Hub()
    with pytest.raises(TypeError, match="must be <str> or <bytes>"):
        asyncio.run(hub.broadcast(json))  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_use_broker_replaces_the_broker_only_before_start() -> None:
    """use_broker() swaps the broker while stopped and refuses once the hub runs."""
    from wsroute.hub import Hub, MemoryBroker

    hub = Hub(policy="drop_oldest")
    first = hub.broker
    hub.use_broker("memory://")
    assert isinstance(hub.broker, MemoryBroker) and hub.broker is not first
    await hub.start()
    try:
        with pytest.raises(RuntimeError, match="replace the broker before the app starts"):
            hub.use_broker("memory://")
    finally:
        await hub.stop()
