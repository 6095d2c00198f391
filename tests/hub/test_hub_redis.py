"""The hub with the Redis broker, against a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest
from hubtest import RedisProcess, eventually, free_port, open_client, receive, running_hub
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from wsroute.errors import BrokerUnavailable
from wsroute.hub import Hub, Publisher
from wsroute.hub.redis import RedisBroker

BASE_CHANNELS = {b"wsroute:all", b"wsroute:users", b"wsroute:presence"}


async def assert_silent(ws: ClientConnection) -> None:
    """Nothing else arrives in the next 200 ms (no duplicate delivery)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await ws.recv()


@pytest.mark.asyncio
async def test_start_fails_fast_when_redis_is_down() -> None:
    """Starting a hub on a URL where nothing listens raises BrokerUnavailable naming the URL and the fix."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    hub = Hub(broker=url)
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1.*start Redis or pass the right --broker"):
        await hub.start()


@pytest.mark.asyncio
async def test_start_can_wait_for_redis(redis_process: RedisProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With wait=True the hub keeps trying until a Redis started later answers."""
    later = RedisProcess(redis_process.binary, str(tmp_path))
    hub = Hub(broker=later.url, broker_options={"wait": True, "connect_timeout": 20})
    starting = asyncio.ensure_future(hub.start())
    await asyncio.sleep(0.3)
    assert not starting.done()
    await asyncio.to_thread(later.start)
    try:
        async with asyncio.timeout(20):
            await starting
        await hub.health_checks()["redis"]()
        await hub.stop()
    finally:
        later.stop()


@pytest.mark.asyncio
async def test_two_hubs_share_topics_exactly_once_in_order(redis_url: str) -> None:
    """A publish in one hub reaches subscribers of both hubs once each, in order."""
    hub1, hub2 = Hub(broker=redis_url), Hub(broker=redis_url)
    async with running_hub(hub1) as url1, running_hub(hub2) as url2:
        local = await open_client(url1, "?topics=room")
        remote = await open_client(url2, "?topics=room")
        for i in range(100):
            await hub1.publish("room", f"m{i}")
        expected = [f"m{i}" for i in range(100)]
        assert await receive(local, 100) == expected
        assert await receive(remote, 100) == expected
        await assert_silent(local)
        await assert_silent(remote)
        for ws in (local, remote):
            await ws.close()


@pytest.mark.asyncio
async def test_two_server_processes_share_a_topic(server_processes) -> None:  # type: ignore[no-untyped-def]
    """A publish in one server process reaches a client of the other exactly once and in order."""
    a, b = server_processes(), server_processes()
    sender = await open_client(a.url, "?topics=room")
    listener = await open_client(b.url, "?topics=room")
    for i in range(200):
        await sender.send(f"pub room m{i}")
    expected = [f"m{i}" for i in range(200)]
    assert await receive(listener, 200) == expected
    assert await receive(sender, 200) == expected
    await assert_silent(listener)
    for ws in (sender, listener):
        await ws.close()


@pytest.mark.asyncio
async def test_send_to_user_across_processes(server_processes) -> None:  # type: ignore[no-untyped-def]
    """send_to_user reaches the user's connections on two processes, once each."""
    a, b = server_processes(), server_processes()
    alice_a = await open_client(a.url, "?user=alice")
    alice_b = await open_client(b.url, "?user=alice")
    bob = await open_client(b.url, "?user=bob")
    await bob.send("user alice hello")
    assert await receive(alice_a, 1) == ["hello"]
    assert await receive(alice_b, 1) == ["hello"]
    await assert_silent(alice_a)
    await assert_silent(bob)
    for ws in (alice_a, alice_b, bob):
        await ws.close()


@pytest.mark.asyncio
async def test_presence_across_processes(server_processes) -> None:  # type: ignore[no-untyped-def]
    """presence() in one process lists users subscribed in another; leaving removes them."""
    a, b = server_processes(), server_processes()
    alice = await open_client(a.url, "?user=alice&topics=lobby")
    bob = await open_client(b.url, "?user=bob&topics=lobby")
    asker = await open_client(a.url)

    async def present() -> str:
        await asker.send("presence lobby")
        return str(await asker.recv())

    async def is_(value: str) -> bool:
        return await present() == value

    await eventually(lambda: is_("alice,bob"))
    await bob.close()
    await eventually(lambda: is_("alice"))
    for ws in (alice, asker):
        await ws.close()


@pytest.mark.asyncio
async def test_presence_of_a_dead_process_expires(redis_url: str) -> None:
    """Entries of a process that died without cleaning up stop counting after the TTL and are pruned."""
    dead = RedisBroker(redis_url, presence_ttl=1)
    hub_dead = Hub(broker=dead)
    hub_live = Hub(broker=redis_url)
    async with running_hub(hub_live) as url:
        await hub_dead.start()
        dead.set_presence("lobby", "ghost", True)
        await dead.flush()
        assert await hub_live.presence("lobby") == {"ghost"}
        for task in dead._tasks:  # simulate a crash: no heartbeat, no cleanup
            task.cancel()
        ws = await open_client(url, "?user=alice&topics=lobby")
        await eventually(lambda: _equals(hub_live.presence("lobby"), {"alice"}))
        client = Redis.from_url(redis_url)
        assert await client.hkeys("wsroute:present:lobby") == [f"{hub_live.broker.process_id}:alice".encode()]  # type: ignore[attr-defined]
        await client.aclose()
        await ws.close()
        await dead._close_pubsub()
        assert dead._client is not None
        await dead._client.aclose()


async def _equals(coro, expected: object) -> bool:  # type: ignore[no-untyped-def]
    return bool(await coro == expected)


@pytest.mark.asyncio
async def test_publisher_reaches_clients_without_a_server(redis_url: str) -> None:
    """A Publisher outside any server reaches topic, user and broadcast clients."""
    hub = Hub(broker=redis_url)
    async with running_hub(hub) as url:
        ws = await open_client(url, "?user=carol&topics=news")
        async with Publisher(redis_url) as pub:
            assert await pub.publish("news", "n1") == 1
            await pub.send_json_to_user("carol", {"x": 1})
            await pub.broadcast(b"\x01")
        assert await receive(ws, 3) == ["n1", '{"x":1}', b"\x01"]
        await ws.close()


@pytest.mark.asyncio
async def test_health_check_reports_redis(redis_url: str) -> None:
    """The hub exposes a "redis" readiness check that passes while Redis is up."""
    hub = Hub(broker=redis_url)
    await hub.start()
    checks = hub.health_checks()
    assert list(checks) == ["redis"]
    await checks["redis"]()
    await hub.stop()
    with pytest.raises(BrokerUnavailable):
        await checks["redis"]()


@pytest.mark.asyncio
async def test_subscriber_recovers_from_client_kill(redis_url: str, redis_process: RedisProcess, caplog) -> None:  # type: ignore[no-untyped-def]
    """After CLIENT KILL TYPE pubsub, the subscriber reconnects and delivery resumes."""
    hub = Hub(broker=redis_url)
    async with running_hub(hub) as url:
        ws = await open_client(url, "?topics=t")
        await hub.publish("t", "before")
        assert await receive(ws, 1) == ["before"]
        with caplog.at_level(logging.WARNING, "wsroute.hub.redis"):
            redis_process.command("CLIENT", "KILL", "TYPE", "pubsub")
            await eventually(lambda: not hub.broker._online.is_set() or "back" in caplog.text)  # type: ignore[attr-defined]
            await eventually(lambda: hub.broker._online.is_set())  # type: ignore[attr-defined]
        await hub.publish("t", "after")
        assert await receive(ws, 1) == ["after"]
        assert caplog.text.count("lost Redis") == 1
        await ws.close()


@pytest.mark.asyncio
async def test_redis_restart_during_traffic(redis_url: str, redis_process: RedisProcess, caplog) -> None:  # type: ignore[no-untyped-def]
    """Killing and restarting Redis keeps connections open, fails publishes, then resumes delivery and presence."""
    hub = Hub(broker=RedisBroker(redis_url, backoff_max=0.5))
    async with running_hub(hub) as url:
        ws = await open_client(url, "?user=dora&topics=t")
        received: list[str | bytes] = []
        with caplog.at_level(logging.WARNING, "wsroute.hub.redis"):
            for i in range(20):
                await hub.publish("t", f"a{i}")
            received += await receive(ws, 20)
            redis_process.stop()
            await eventually(lambda: not hub.broker._online.is_set())  # type: ignore[attr-defined]
            with pytest.raises(BrokerUnavailable, match="start Redis"):
                for i in range(50):  # bounded: the first publish after the kill fails
                    await hub.publish("t", f"lost{i}")
                    await asyncio.sleep(0.02)
            assert hub.stats.publish_failures >= 1
            redis_process.start()
            await eventually(lambda: hub.broker._online.is_set(), timeout=15)  # type: ignore[attr-defined]
            for i in range(20):
                await hub.publish("t", f"b{i}")
            after = await receive(ws, 20)
        assert [m for m in after if str(m).startswith("b")] == [f"b{i}" for i in range(20)]
        assert ws.state.name == "OPEN"
        assert caplog.text.count("lost Redis") == 1
        await hub.broker.flush()
        assert await hub.presence("t") == {"dora"}
        await ws.close()


@pytest.mark.asyncio
async def test_a_thousand_cycles_leave_nothing_in_redis(redis_url: str) -> None:
    """1,000 connect/subscribe/disconnect cycles leave no local entries, channels or presence keys."""
    hub = Hub(broker=redis_url)
    async with running_hub(hub) as url:
        for i in range(1000):
            ws = await open_client(url, f"?user=u{i % 5}&topics=t{i % 17},shared")
            await ws.close()
        await eventually(lambda: hub.connections == 0)
        await hub.broker.flush()
        assert hub._registry.is_empty()
        broker = hub.broker
        assert isinstance(broker, RedisBroker)
        assert broker._refs == {}
        client = Redis.from_url(redis_url)
        assert set(await client.pubsub_channels()) == BASE_CHANNELS
        keys = await client.keys("wsroute:*")
        assert keys == [f"wsroute:alive:{broker.process_id}".encode()]
        await client.aclose()
    client = Redis.from_url(redis_url)
    assert await client.keys("wsroute:*") == []
    await client.aclose()


def test_redis_is_an_optional_extra_with_an_actionable_error() -> None:
    """Without the redis package, importing wsroute.hub works and redis:// says how to install it."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import wsroute.hub\n"
        "try:\n"
        "    wsroute.hub.Hub(broker='redis://127.0.0.1:1/0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'wsroute[redis]'" in out.stdout


@pytest.mark.asyncio
async def test_readyz_reports_redis_through_the_health_plugin(redis_process, redis_url) -> None:
    """With the health plugin, /readyz is 200 while Redis answers and 503 naming 'redis' when it is gone."""
    import json

    import wsroute_health

    import wsroute
    from wsroute.testing import serve_app

    app = wsroute.App(load_entrypoints=False, plugins=[wsroute_health], broker=redis_url)
    async with serve_app(app) as server:
        ready = await server.http_get("/readyz")
        assert ready.status == 200, ready.text
        assert json.loads(ready.body)["checks"]["redis"]["status"] == "pass"
        redis_process.stop()  # the redis_url fixture starts it again for the next test
        down = await server.http_get("/readyz")
        assert down.status == 503, down.text
        assert json.loads(down.body)["checks"]["redis"]["status"] == "fail"
        assert (await server.http_get("/healthz")).status == 200
