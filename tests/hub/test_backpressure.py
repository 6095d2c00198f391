"""Slow consumers: bounded memory, fast clients unaffected, policies applied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hubtest import eventually, running_hub
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsroute.hub import Hub

FILLER = bytes(64 * 1024 - 4)
MiB = 1024 * 1024


def rss() -> int:
    """This process's resident set size in bytes, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def frame(seq: int) -> bytes:
    """A 64 KiB binary message carrying its sequence number."""
    return seq.to_bytes(4, "big") + FILLER


class Reader:
    """A fast client: reads everything and records the sequence numbers."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[int] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for message in self.ws:
            assert isinstance(message, bytes)
            self.seen.append(int.from_bytes(message[:4], "big"))


async def open_client(url: str, query: str = "") -> ClientConnection:
    """Connect (no compression, like most browsers' peers) and wait for "ready"."""
    ws = await connect(url + query, compression=None, max_size=None)
    assert await ws.recv() == "ready"
    return ws


async def publish_paced(hub: Hub, readers: list[Reader], count: int) -> AsyncIterator[int]:
    """Broadcast ``count`` frames in batches of 10, letting fast readers catch up."""
    for start in range(0, count, 10):
        for seq in range(start, min(start + 10, count)):
            await hub.broadcast(frame(seq))
        last = min(start + 10, count)
        await eventually(lambda last=last: all(len(r.seen) >= last for r in readers))  # type: ignore[misc]
        yield last


async def never_reads_scenario() -> None:
    """3 fast clients and one that never reads; 1,500 frames of 64 KiB; policy 'disconnect'."""
    hub = Hub(policy="disconnect", max_queue=16, close_timeout=0.5)
    async with running_hub(hub, compression=None) as url:
        readers = [Reader(await open_client(url)) for _ in range(3)]
        slow = await open_client(url)  # never calls recv(): its reads pause
        before = rss()
        peak = before
        async for _ in publish_paced(hub, readers, 1500):  # 94 MiB for the slow client
            peak = max(peak, rss())
        assert peak - before < 40 * MiB, f"RSS grew by {(peak - before) / MiB:.1f} MiB"
        for reader in readers:
            assert reader.seen == list(range(1500))
        assert hub.stats.slow_disconnects == 1
        await eventually(lambda: hub.connections == 3)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await slow.recv()
        for reader in readers:
            await reader.ws.close()
            await reader.task


@pytest.mark.asyncio
async def test_client_that_never_reads_is_closed_and_memory_stays_bounded() -> None:
    """With 'disconnect', a client that never reads is closed, RSS stays bounded, fast clients get all."""
    await never_reads_scenario()


def test_client_that_never_reads_under_uvloop() -> None:
    """The same guarantees hold on uvloop, whose transports implement flow control themselves."""
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(never_reads_scenario())


@pytest.mark.asyncio
async def test_drop_oldest_keeps_the_newest_frames_in_order() -> None:
    """With 'drop_oldest', a slow client stays connected and later reads an ordered tail ending with the last frame."""
    hub = Hub(policy="drop_oldest", max_queue=8)
    async with running_hub(hub, compression=None) as url:
        readers = [Reader(await open_client(url))]
        slow = await open_client(url)
        async for _ in publish_paced(hub, readers, 400):
            pass
        assert hub.stats.dropped > 0 and hub.stats.slow_disconnects == 0
        slow_reader = Reader(slow)
        await eventually(lambda: slow_reader.seen[-1:] == [399])
        seen = slow_reader.seen
        assert seen == sorted(set(seen)) and len(seen) < 400
        assert readers[0].seen == list(range(400))
        for ws in (slow, readers[0].ws):
            await ws.close()


@pytest.mark.asyncio
async def test_keep_latest_per_route_override_delivers_the_last_frame() -> None:
    """A route-level 'keep_latest' override makes a slow client skip to the newest frame."""
    hub = Hub(policy="disconnect", max_queue=8)
    async with running_hub(hub, compression=None) as url:
        readers = [Reader(await open_client(url))]
        slow = await open_client(url, "?policy=keep_latest")
        async for _ in publish_paced(hub, readers, 400):
            pass
        assert hub.stats.slow_disconnects == 0 and hub.stats.dropped > 0
        slow_reader = Reader(slow)
        await eventually(lambda: slow_reader.seen[-1:] == [399])
        assert slow_reader.seen == sorted(set(slow_reader.seen))
        for ws in (slow, readers[0].ws):
            await ws.close()


@pytest.mark.asyncio
async def test_a_client_that_catches_up_returns_to_the_fast_path() -> None:
    """Once its outbox drained, a connection has no outbox left and gets every later frame."""
    hub = Hub(policy="drop_oldest", max_queue=1000)
    async with running_hub(hub, compression=None) as url:
        slow = await open_client(url)
        for seq in range(300):
            await hub.broadcast(frame(seq))
        assert hub.stats.queued > 0
        reader = Reader(slow)
        await eventually(lambda: len(reader.seen) == 300)
        await eventually(lambda: hub._delivery._behind == {})
        await hub.broadcast(frame(300))
        await eventually(lambda: len(reader.seen) == 301)
        assert reader.seen == list(range(301))
        await slow.close()
