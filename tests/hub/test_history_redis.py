"""Recovery across real server processes on a real Redis (issue 15).

Every server is ``wsroute run history_app:app --broker redis://...``: the
app declares its history on the memory broker it is built with, and the
CLI replaces the broker, so these tests also show that history settings
belong to the hub. Clients are websockets clients; they keep the position
of the last envelope they saw and reconnect with ``?since=``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clitest import Server
from historytest import Subscriber, publish, start_server
from hubtest import RedisProcess
from timing import timeout


@pytest.fixture
def servers(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Server]]:
    """A factory of ``wsroute run`` processes on the test's Redis, all killed at the end."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = start_server(tmp_path, redis_url, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def texts(first: int, last: int) -> list[str]:
    """The messages m<first> .. m<last>."""
    return [f"m{i}" for i in range(first, last + 1)]


@pytest.mark.asyncio
async def test_client_recovers_on_another_process_exactly_what_it_missed(servers: Callable[..., Server]) -> None:
    """10 received on A, 50 published via B while away, back on B: recovered, missed=50, then live, no duplicate."""
    a, b = servers(), servers()
    client = Subscriber("room")
    replayed, recovery = await client.connect(a.url)
    assert (replayed, recovery["recovered"], recovery["missed"]) == ([], False, 0)
    assert recovery["position"].startswith("0:")
    await publish(a.url, "room", texts(1, 10))
    assert [m["data"] for m in await client.receive(10)] == texts(1, 10)
    await client.close()
    await publish(b.url, "room", texts(11, 60))
    replayed, recovery = await client.connect(b.url)
    assert [m["data"] for m in replayed] == texts(11, 60)
    assert [m["offset"] for m in replayed] == list(range(11, 61))
    assert (recovery["recovered"], recovery["missed"]) == (True, 50)
    assert recovery["position"] == client.position and client.position.startswith("60:")
    await publish(a.url, "room", texts(61, 65))
    assert [m["data"] for m in await client.receive(5)] == texts(61, 65)
    assert client.offsets == list(range(1, 66))
    await client.close()


@pytest.mark.asyncio
async def test_repeated_recoveries_advance_the_position(servers: Callable[..., Server]) -> None:
    """Each recovery starts where the previous connection stopped, alternating processes."""
    a, b = servers(), servers()
    client = Subscriber("again")
    await client.connect(a.url)
    sent = 0
    for round_ in range(1, 5):
        await client.close()
        await publish((a, b)[round_ % 2].url, "again", texts(sent + 1, sent + round_))
        sent += round_
        replayed, recovery = await client.connect((b, a)[round_ % 2].url)
        assert [m["offset"] for m in replayed] == list(range(sent - round_ + 1, sent + 1))
        assert (recovery["recovered"], recovery["missed"]) == (True, round_)
        assert recovery["position"].startswith(f"{sent}:")
    assert client.offsets == list(range(1, sent + 1))
    await client.close()


@pytest.mark.asyncio
async def test_recovery_when_nothing_was_published_yet(servers: Callable[..., Server]) -> None:
    """A client that subscribed to an empty topic recovers the first messages published after it left."""
    a, b = servers(), servers()
    client = Subscriber("empty")
    _, recovery = await client.connect(a.url)
    assert recovery["position"].startswith("0:")
    await client.close()
    await publish(b.url, "empty", texts(1, 3))
    replayed, recovery = await client.connect(b.url)
    assert [m["data"] for m in replayed] == texts(1, 3)
    assert (recovery["recovered"], recovery["missed"]) == (True, 3)
    await client.close()


@pytest.mark.asyncio
async def test_since_the_current_position_misses_nothing(servers: Callable[..., Server]) -> None:
    """Reconnecting with the current position recovers with 0 missed and the same position."""
    a, b = servers(), servers()
    client = Subscriber("current")
    await client.connect(a.url)
    await publish(a.url, "current", texts(1, 4))
    await client.receive(4)
    await client.close()
    last = client.position
    replayed, recovery = await client.connect(b.url)
    assert (replayed, recovery) == ([], {"recovered": True, "missed": 0, "position": last})
    await client.close()


@pytest.mark.asyncio
async def test_more_missed_than_size_is_not_recovered(servers: Callable[..., Server]) -> None:
    """With size=5, six missed messages give recovered=False and no replay, though the stream still holds them."""
    a = servers(HISTORY_TEST_SIZE="5")
    client = Subscriber("trim")
    await client.connect(a.url)
    await publish(a.url, "trim", texts(1, 2))
    await client.receive(2)
    await client.close()
    await publish(a.url, "trim", texts(3, 8))
    replayed, recovery = await client.connect(a.url)
    assert (replayed, recovery["recovered"], recovery["missed"]) == ([], False, 0)
    assert recovery["position"].startswith("8:")
    await client.close()
    await publish(a.url, "trim", texts(9, 13))  # exactly size missed: recovered
    replayed, recovery = await client.connect(a.url)
    assert [m["data"] for m in replayed] == texts(9, 13)
    assert (recovery["recovered"], recovery["missed"]) == (True, 5)
    await client.close()


@pytest.mark.asyncio
async def test_expired_history_is_not_recovered(servers: Callable[..., Server]) -> None:
    """With ttl=0.5 s, messages missed longer ago than that are gone: recovered=False."""
    a = servers(HISTORY_TEST_TTL="0.5")
    client = Subscriber("ttl")
    await client.connect(a.url)
    await client.close()
    await publish(a.url, "ttl", texts(1, 3))
    await asyncio.sleep(0.5 + timeout(0.5))
    replayed, recovery = await client.connect(a.url)
    assert (replayed, recovery["recovered"], recovery["missed"]) == ([], False, 0)
    await client.close()


@pytest.mark.asyncio
async def test_redis_restarted_empty_starts_a_new_epoch(
    servers: Callable[..., Server], redis_process: RedisProcess
) -> None:
    """After Redis restarts without persistence, the epoch changes and an old position is not recovered."""
    a = servers()
    client = Subscriber("epoch")
    await client.connect(a.url)
    await publish(a.url, "epoch", texts(1, 3))
    await client.receive(3)
    await client.close()
    old_epoch = client.position.partition(":")[2]
    await asyncio.to_thread(redis_process.stop)
    await asyncio.to_thread(redis_process.start)
    await publish(a.url, "epoch", texts(4, 5), retry_for=20)
    replayed, recovery = await client.connect(a.url)
    assert (replayed, recovery["recovered"], recovery["missed"]) == ([], False, 0)
    offset, _, epoch = recovery["position"].partition(":")
    assert (offset, epoch != old_epoch) == ("2", True)
    await client.close()


@pytest.mark.asyncio
async def test_reconnecting_100_times_under_steady_publishing_sees_every_offset_once(
    servers: Callable[..., Server],
) -> None:
    """Publishing every 5 ms while a client reconnects 100 times to either process: every offset once, in order."""
    a, b = servers(), servers()
    client = Subscriber("steady")
    await client.connect(a.url)
    stop = asyncio.Event()
    published = 0

    async def publisher() -> None:
        nonlocal published
        while not stop.is_set():
            await publish(b.url, "steady", [f"m{published + 1}"])
            published += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(publisher())
    rng = random.Random(15)
    try:
        for i in range(100):
            for _ in range(rng.randint(0, 3)):
                await client.recv()
            await client.close()
            _, recovery = await client.connect((a, b)[i % 2].url)
            assert recovery["recovered"] is True
    finally:
        stop.set()
        await task
    while not client.offsets or client.offsets[-1] < published:
        await client.recv()
    await client.close()
    assert client.offsets == list(range(1, published + 1))
    assert client.data == texts(1, published)


@pytest.mark.asyncio
async def test_process_killed_while_connected_then_recover_on_another(servers: Callable[..., Server]) -> None:
    """Process A is SIGKILLed under a connected client; on B the client recovers what was published meanwhile."""
    a, b = servers(), servers()
    client = Subscriber("kill")
    await client.connect(a.url)
    await publish(b.url, "kill", texts(1, 5))
    await client.receive(5)
    a.kill()
    assert client.ws is not None
    await client.ws.wait_closed()
    await publish(b.url, "kill", texts(6, 20))
    replayed, recovery = await client.connect(b.url)
    assert [m["data"] for m in replayed] == texts(6, 20)
    assert (recovery["recovered"], recovery["missed"]) == (True, 15)
    assert client.offsets == list(range(1, 21))
    await client.close()
