"""One sharded pub/sub connection to one Redis Cluster master.

A :class:`ShardLink` owns a single plain redis-py ``PubSub`` on one master
and the set of shard channels this process wants from that master. It
opens its connection *before* anyone may subscribe (so two coroutines can
never each open one and lose a subscription -- a pitfall of a fresh
asyncio ``PubSub``), sends every ``SSUBSCRIBE`` / ``SUNSUBSCRIBE`` under
one lock, one command per hash slot (a command may not span slots), and
reads messages until the connection fails. It never reconnects by itself:
when it fails it reports to its owner (the broker), which refreshes the
cluster map and opens a new link wherever the channels now live.

A silent peer (a network partition rather than a closed socket) is
detected by a PING every ``ping_interval`` seconds without traffic; no
reply within two intervals counts as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from redis.crc import key_slot

from .redisconn import FAULTS, Redis
from .tasks import cancel_and_wait

__all__ = ["LinkOwner", "ShardLink"]

logger = logging.getLogger("wsroute.hub.cluster")


class LinkOwner(Protocol):
    """What a link calls back; every method is synchronous and cheap."""

    def link_message(self, channel: str, data: bytes) -> None:
        """A message arrived on ``channel``."""

    def link_confirmed(self, link: ShardLink, channel: str) -> None:
        """Redis acknowledged ``SSUBSCRIBE channel``."""

    def link_evicted(self, link: ShardLink, channel: str) -> None:
        """Redis unsubscribed ``channel`` on its own: its slot moved elsewhere."""

    def link_lost(self, link: ShardLink, exc: BaseException) -> None:
        """The connection failed; the link is finished."""


def by_slot(channels: Iterable[str]) -> list[list[str]]:
    """Group channel names by hash slot (one SSUBSCRIBE may not span slots)."""
    groups: defaultdict[int, list[str]] = defaultdict(list)
    for channel in channels:
        groups[key_slot(channel.encode())].append(channel)
    return list(groups.values())


class ShardLink:
    """The sharded subscription connection of this process to one master.

    Args:
        address: ``(host, port)`` of the master.
        client: a client of that master; the link takes one connection from its pool.
        owner: told about messages, acks, evictions and the failure.
        ping_interval: seconds without traffic before a PING.
    """

    def __init__(self, address: tuple[str, int], client: Redis, owner: LinkOwner,
                 ping_interval: float = 5.0) -> None:
        self.address = address
        self.want: set[str] = set()
        self.confirmed: set[str] = set()
        self.up = False
        self.dead = False
        self._sent: set[str] = set()
        self._client = client
        self._owner = owner
        self._ping_interval = ping_interval
        self._lock = asyncio.Lock()
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"ShardLink({self.address[0]}:{self.address[1]}, {len(self.want)} channels)"

    def start(self) -> None:
        """Start the reading task (connects, subscribes ``want``, reads)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop reading and close the connection."""
        self.dead = True
        if self._task is not None:
            await cancel_and_wait([self._task])
        await self._close_pubsub()

    async def apply(self) -> None:
        """Send SSUBSCRIBE / SUNSUBSCRIBE so Redis matches ``want`` (no-op until up).

        Raises:
            redis.exceptions.RedisError, OSError: the connection failed; the
            reading task reports it to the owner as well.
        """
        if not self.up:
            return
        async with self._lock:
            await self._apply_locked()

    async def _apply_locked(self) -> None:
        pubsub = self._pubsub
        if pubsub is None or self.dead:
            return
        add = self.want - self._sent
        remove = self._sent - self.want
        self._sent |= add
        for group in by_slot(add):
            await pubsub.ssubscribe(*group)
        if remove:
            self._sent -= remove
            self.confirmed -= remove
            for group in by_slot(remove):
                await pubsub.sunsubscribe(*group)

    async def _run(self) -> None:
        try:
            self._pubsub = pubsub = self._client.pubsub()
            async with self._lock:
                await pubsub.connect()  # type: ignore[no-untyped-call]  # one connection, before any subscribe
                await self._apply_locked()
            self.up = True
            await self._read(pubsub)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the owner decides what to do; never die silently
            if not isinstance(exc, FAULTS):
                logger.exception("unexpected error on the sharded subscription to %s:%s", *self.address)
            self.up = False
            self.dead = True
            await self._close_pubsub()
            self._owner.link_lost(self, exc)

    async def _read(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            now = loop.time()
            if message is None:
                if now - heard > 2 * self._ping_interval:
                    raise ConnectionError(f"no reply to PING in {2 * self._ping_interval:.0f} s")
                if self._sent:
                    async with self._lock:
                        await pubsub.ping()
                continue
            heard = now
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pong":
            return
        channel = message["channel"].decode()
        if kind == "smessage":
            self._owner.link_message(channel, message["data"])
        elif kind == "ssubscribe":
            if channel in self._sent:
                self.confirmed.add(channel)
                self._owner.link_confirmed(self, channel)
        elif kind == "sunsubscribe" and channel in self._sent and channel in self.want:
            # Not asked for: Redis drops shard subscriptions of a slot that moved.
            self._sent.discard(channel)
            self.confirmed.discard(channel)
            self._owner.link_evicted(self, channel)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*FAULTS, RuntimeError):
                await pubsub.aclose()

