"""Every hub method during a Redis outage behaves as docs/hub.md says (issue 10, item 5).

Each test stops a real redis-server (SIGKILL), waits for the broker's "lost
Redis" warning, and checks the documented outage behaviour: what needs
other processes raises BrokerUnavailable at once, what is local keeps
working, and the changes made meanwhile reach Redis when it is back.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hubtest import RedisProcess, eventually, open_client, receive, running_hub

from wsroute.errors import BrokerUnavailable
from wsroute.hub import Hub, Publisher
from wsroute.hub.redis import RedisBroker
from wsroute.testing import serve_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "chat" / "app.py"


async def stop_redis(redis_process: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    """SIGKILL redis-server and wait for the broker's "lost Redis" warning."""
    await asyncio.to_thread(redis_process.stop)
    await eventually(lambda: "lost Redis" in caplog.text)


async def start_redis(redis_process: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    """Start redis-server again and wait for the broker's "is back" line."""
    await asyncio.to_thread(redis_process.start)
    await eventually(lambda: "is back" in caplog.text, timeout=20)


async def _equals(coro: Any, expected: object) -> bool:
    return bool(await coro == expected)


@pytest.mark.asyncio
async def test_sends_and_presence_raise_while_local_operations_keep_working(
    redis_url: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """During an outage sends, presence() and readiness raise BrokerUnavailable; local operations work."""
    caplog.set_level(logging.WARNING, "wsroute.hub.redis")
    hub = Hub(broker=RedisBroker(redis_url, backoff_max=0.2))
    async with running_hub(hub) as url:
        dora = await open_client(url, "?user=dora&topics=t")
        await stop_redis(redis_process, caplog)
        sends = [
            lambda: hub.publish("t", "x"), lambda: hub.publish_json("t", {}), lambda: hub.broadcast("x"),
            lambda: hub.broadcast_json({}), lambda: hub.send_to_user("dora", "x"),
            lambda: hub.send_json_to_user("dora", {}),
        ]
        for send in sends:
            with pytest.raises(BrokerUnavailable, match=r"reconnecting\); start Redis or pass the right --broker"):
                await send()
        assert hub.stats.publish_failures == len(sends)
        with pytest.raises(BrokerUnavailable, match="reading presence"):
            await hub.presence("t")
        with pytest.raises(BrokerUnavailable, match="health check"):
            await hub.health_checks()["redis"]()
        # Local operations: a new connection attaches and subscribes without waiting.
        erin = await open_client(url, "?user=erin&topics=t,t2")
        assert hub.connections == 2
        assert hub.local_presence("t") == {"dora", "erin"}
        assert hub.local_presence("t2") == {"erin"}
        await erin.close()
        await eventually(lambda: hub.connections == 1)
        assert hub.local_presence("t") == {"dora"}
        assert hub.local_presence("t2") == set()
        assert hub.backlog(next(iter(hub._registry.conns))) == 0
        # Back: what changed during the outage is in Redis, sends work again.
        await start_redis(redis_process, caplog)
        other = Hub(broker=redis_url)
        await other.start()
        try:
            await eventually(lambda: _equals(other.presence("t"), {"dora"}))
            assert await other.presence("t2") == set()
            await other.publish("t", "after")
        finally:
            await other.stop()
        assert await receive(dora, 1) == ["after"]
        await dora.close()


@pytest.mark.asyncio
async def test_a_subscription_made_during_the_outage_receives_after_recovery(
    redis_url: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A topic first subscribed while Redis is down is subscribed in Redis once it is back."""
    caplog.set_level(logging.WARNING, "wsroute.hub.redis")
    hub = Hub(broker=RedisBroker(redis_url, backoff_max=0.2))
    async with running_hub(hub) as url:
        await stop_redis(redis_process, caplog)
        ws = await open_client(url, "?topics=later")
        await start_redis(redis_process, caplog)
        async with Publisher(redis_url) as publisher:
            await eventually(lambda: _equals(publisher.publish("later", "hello"), 1))
        assert await receive(ws, 1) == ["hello"]
        await ws.close()


@pytest.mark.asyncio
async def test_stop_during_an_outage_returns_without_raising(
    redis_url: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Hub.stop() while Redis is down returns (bounded) and raises nothing."""
    caplog.set_level(logging.WARNING, "wsroute.hub.redis")
    hub = Hub(broker=RedisBroker(redis_url, backoff_max=0.2))
    await hub.start()
    await stop_redis(redis_process, caplog)
    async with asyncio.timeout(15):
        await hub.stop()
    with pytest.raises(BrokerUnavailable, match="not started"):
        await hub.publish("t", "x")


@pytest.mark.asyncio
async def test_start_and_publisher_raise_while_redis_is_down(
    redis_url: str, redis_process: RedisProcess
) -> None:
    """Hub.start() and a Publisher raise BrokerUnavailable naming the fix while Redis is down."""
    publisher = Publisher(redis_url)
    await publisher.connect()
    await asyncio.to_thread(redis_process.stop)
    try:
        with pytest.raises(BrokerUnavailable, match="start Redis"):
            await publisher.publish("t", "x")
        with pytest.raises(BrokerUnavailable, match="start Redis"):
            await Hub(broker=redis_url).start()
    finally:
        await publisher.aclose()


def load_chat_app() -> Any:
    """Import a fresh copy of examples/chat's ``app``."""
    spec = importlib.util.spec_from_file_location("chat_example_outage", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


async def recv_json(ws: Any) -> Any:
    """One JSON message, failing after 10 s; a room message's envelope is unwrapped, the history report skipped."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "history":
                return message["data"] if "offset" in message else message


async def next_of_type(ws: Any, kind: str) -> Any:
    """The next JSON message of type ``kind``, skipping join/leave events."""
    while (message := await recv_json(ws))["type"] != kind:
        assert message["type"] in ("join", "leave"), message
    return message


@pytest.mark.asyncio
async def test_chat_example_degrades_during_an_outage(
    redis_url: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """While Redis is down the chat accepts newcomers with local members and answers sends with an error."""
    caplog.set_level(logging.WARNING, "wsroute.hub.redis")
    app = load_chat_app()
    app.hub.use_broker(RedisBroker(redis_url, backoff_max=0.2))
    async with serve_app(app) as server:
        alice = await server.connect("/rooms/lobby?token=alice")
        assert await next_of_type(alice, "members") == {"type": "members", "users": ["alice"], "partial": False}
        await stop_redis(redis_process, caplog)
        bob = await server.connect("/rooms/lobby?token=bob")
        assert await next_of_type(bob, "members") == {"type": "members", "users": ["alice", "bob"], "partial": True}
        await bob.send(json.dumps({"type": "say", "text": "anyone?"}))
        assert (await next_of_type(bob, "error"))["reason"].startswith("chat unavailable")
        await bob.send(json.dumps({"type": "whisper", "to": "alice", "text": "psst"}))
        assert (await next_of_type(bob, "error"))["reason"].startswith("chat unavailable")
        async with server.connect("/announce?token=carol") as announcer:
            await announcer.send("maintenance")
            assert (await recv_json(announcer))["type"] == "error"
        await start_redis(redis_process, caplog)
        await bob.send(json.dumps({"type": "say", "text": "back"}))
        assert await next_of_type(alice, "say") == {"type": "say", "user": "bob", "text": "back"}
        assert bob.state.name == alice.state.name == "OPEN"
        for ws in (alice, bob):
            await ws.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
