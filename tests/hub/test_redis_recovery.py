"""Right after Redis recovers, every broker operation succeeds (issue 10, item 2).

Each test kills a real redis-server with SIGKILL, starts it again on the
same port, waits for the broker's own "is back" log line, and then runs one
operation as the *first* command after the recovery: that is the one that
used to meet a pooled connection opened to the dead Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hubtest import RedisProcess, eventually, open_client, receive, running_hub
from websockets.asyncio.client import ClientConnection

from wsroute.hub import Hub, Publisher
from wsroute.hub.redis import RedisBroker


async def warm_up(hub: Hub, publisher: Publisher) -> None:
    """Use the command pool concurrently so that it holds several idle connections."""
    await asyncio.gather(
        *(hub.publish("warm", "x") for _ in range(4)),
        *(hub.presence("t") for _ in range(4)),
        hub.health_checks()["redis"](),
        publisher.publish("warm", "x"),
    )


async def restart_redis(redis_process: RedisProcess, caplog: pytest.LogCaptureFixture, brokers: int) -> None:
    """SIGKILL redis-server, start it on the same port, wait until every broker says it is back."""
    await asyncio.to_thread(redis_process.stop)
    await eventually(lambda: caplog.text.count("lost Redis") == brokers)
    await asyncio.to_thread(redis_process.start)
    await eventually(lambda: caplog.text.count("is back") == brokers, timeout=20)


class Clients:
    """The clients a recovery test holds: dora in topic t, and a plain one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dora: ClientConnection | None = None

    async def open(self) -> None:
        self.dora = await open_client(self.url, "?user=dora&topics=t")


async def op_publish(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    assert clients.dora is not None
    await hub.publish("t", "after")
    assert await receive(clients.dora, 1) == ["after"]


async def op_publish_json(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    assert clients.dora is not None
    await hub.publish_json("t", {"n": 1})
    assert await receive(clients.dora, 1) == ['{"n":1}']


async def op_send_to_user(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    assert clients.dora is not None
    await hub.send_to_user("dora", "psst")
    assert await receive(clients.dora, 1) == ["psst"]


async def op_broadcast(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    assert clients.dora is not None
    await hub.broadcast("all")
    assert await receive(clients.dora, 1) == ["all"]


async def op_presence_read(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    assert await hub.presence("t") == {"dora"}


async def op_presence_write(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    erin = await open_client(clients.url, "?user=erin&topics=t")
    await eventually(lambda: _equals(other.presence("t"), {"dora", "erin"}))
    await erin.close()
    await eventually(lambda: _equals(other.presence("t"), {"dora"}))


async def op_subscribe(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    fresh = await open_client(clients.url, "?topics=fresh")
    await other.publish("fresh", "hello")
    assert await receive(fresh, 1) == ["hello"]
    await fresh.close()


async def op_readiness(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    await hub.health_checks()["redis"]()


async def op_publisher(hub: Hub, other: Hub, clients: Clients, publisher: Publisher) -> None:
    assert clients.dora is not None
    assert await publisher.publish("t", "from outside") == 1  # one process subscribes t
    assert await receive(clients.dora, 1) == ["from outside"]


async def _equals(coro: Awaitable[Any], expected: object) -> bool:
    return bool(await coro == expected)


Op = Callable[[Hub, Hub, Clients, Publisher], Awaitable[None]]
OPS: dict[str, Op] = {
    "publish": op_publish,
    "publish_json": op_publish_json,
    "send_to_user": op_send_to_user,
    "broadcast": op_broadcast,
    "presence_read": op_presence_read,
    "presence_write": op_presence_write,
    "subscribe": op_subscribe,
    "readiness": op_readiness,
    "publisher": op_publisher,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("first", list(OPS))
async def test_first_operation_after_a_redis_restart_succeeds(
    first: str, redis_url: str, redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """After SIGKILL and restart, the operation run first once the broker is back succeeds, and so do all others."""
    caplog.set_level(logging.DEBUG, "wsroute.hub")
    hub = Hub(broker=RedisBroker(redis_url, backoff_max=0.2))
    other = Hub(broker=RedisBroker(redis_url, backoff_max=0.2))
    async with running_hub(hub) as url, running_hub(other), Publisher(redis_url) as publisher:
        clients = Clients(url)
        await clients.open()
        await warm_up(hub, publisher)
        await restart_redis(redis_process, caplog, brokers=2)
        await OPS[first](hub, other, clients, publisher)
        for name, op in OPS.items():
            if name != first:
                await op(hub, other, clients, publisher)
        assert hub.stats.publish_failures == 0
        assert clients.dora is not None
        await clients.dora.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.asyncio
async def test_publish_after_redis_closed_the_idle_command_connections(
    redis_url: str, redis_process: RedisProcess
) -> None:
    """When Redis closes idle pooled connections (CLIENT KILL, an idle timeout), the next publish still succeeds."""
    hub = Hub(broker=redis_url)
    async with running_hub(hub) as url, Publisher(redis_url) as publisher:
        ws = await open_client(url, "?user=dora&topics=t")
        await warm_up(hub, publisher)
        await asyncio.to_thread(redis_process.command, "CLIENT", "KILL", "TYPE", "normal")
        # Let the event loop read the FIN of every killed connection.
        await eventually(lambda: _idle_closed(hub))
        await hub.publish("t", "after")
        assert await publisher.publish("t", "outside") == 1
        assert await hub.presence("t") == {"dora"}
        assert await receive(ws, 2) == ["after", "outside"]
        await ws.close()


def _idle_closed(hub: Hub) -> bool:
    """True once the pool noticed that every idle connection was closed by Redis."""
    broker = hub.broker
    assert isinstance(broker, RedisBroker) and broker._client is not None
    pool: Any = broker._client.connection_pool
    idle = pool._available_connections
    return bool(idle) and all(c._reader is not None and c._reader.at_eof() for c in idle)
