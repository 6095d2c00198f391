"""The Redis broker: every process receives what any process publishes.

Each process holds one pub/sub connection (channels in :mod:`.wire`) and one
small pool for commands. Topic channels are reference-counted: the first
local subscriber makes the process SUBSCRIBE, the last one UNSUBSCRIBE --
never one Redis subscription per connection. A publish goes to Redis only;
the message comes back on the subscription and is delivered from there,
exactly once, in the order Redis received it.

Faults: if Redis goes away while running, connections stay open, publishes
raise :class:`~wsroute.errors.BrokerUnavailable` (the hub counts them), and
the subscriber reconnects with capped exponential backoff, re-subscribes
every channel and rewrites this process's presence. One warning is logged
per outage and one line on recovery. Messages published during an outage
are lost: Redis pub/sub is at-most-once.

Recovery: once the broker reports itself back, every command it issues
succeeds (until the next outage). Before saying so it drops the idle pooled
command connections, which may be half-open towards the Redis that died;
redis-py replaces a pooled connection the server closed when handing it out
(see :func:`~.redisconn.client_options`); and commands that are safe to
repeat (presence reads and writes, PING) are retried once on a closed
connection (:func:`~.redisconn.idempotent`). PUBLISH is never retried:
delivery stays at-most-once, never twice.

Subscriptions and presence are *reconciled*: ``unsubscribe`` and
``set_presence`` only update the wanted state (synchronously, so
``Hub.detach`` can call them in a ``finally``), and one background task
applies the difference to Redis. A change made while Redis is down is
applied when it is back, so nothing is lost and churn is coalesced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .broker import HealthCheck, Sink
from .redisbase import Backend, RedisBrokerBase, Timing
from .redisconn import FAULTS, Redis, connect_redis, redact
from .wire import Channels

__all__ = ["RedisBroker"]

logger = logging.getLogger("wsroute.hub.redis")

REDIS = Backend(
    "Redis", logger,
    lost="lost Redis%s at %s (%s); connections stay open, publishes fail, reconnecting with backoff up to %.1f s",
    back="Redis at %s is back after %.1f s; resubscribed",
)

T = TypeVar("T")


class RedisBroker(RedisBrokerBase):
    """A broker backed by Redis pub/sub.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        prefix: prefix of every channel and key, to share one Redis.
        wait: at start, retry for ``connect_timeout`` seconds instead of
            failing at once (useful when Redis starts with the app).
        connect_timeout: seconds ``wait`` keeps trying.
        backoff_max: cap of the reconnection backoff, in seconds.
        presence_ttl: seconds after which a dead process's presence entries
            stop counting; live processes refresh theirs every third of it.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "wsroute",
        wait: bool = False,
        connect_timeout: float = 10.0,
        backoff_max: float = 5.0,
        presence_ttl: float = 30.0,
    ) -> None:
        channels = Channels(prefix)
        super().__init__(url, REDIS, Timing(wait, connect_timeout, backoff_max, presence_ttl),
                         shown_url=redact(url), channels=channels,
                         base_channels=frozenset([channels.all, channels.users, channels.presence]))
        self._client: Redis | None = None
        self._pubsub: Any = None
        self._sent: set[str] = set()
        self._confirmed: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisBroker({self.shown_url!r})"

    # Lifecycle

    async def start(self, sink: Sink) -> None:
        """Connect, subscribe the shared channels, start background tasks.

        Raises:
            BrokerUnavailable: Redis cannot be reached (names the URL).
        """
        self._client = await connect_redis(self.url, timeout=self.timing.connect_timeout, wait=self.timing.wait)
        self._begin(sink, [self._subscriber])
        await self._wait_online(self.timing.connect_timeout)

    async def _disconnect(self) -> None:
        await self._close_pubsub()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def health_checks(self) -> dict[str, HealthCheck]:
        """One check, ``"redis"``: PING works and the subscriber is online."""
        return {"redis": self._check}

    async def _check(self) -> None:
        await self._command(self.channels.all, "health check", lambda client: client.ping(), repeatable=True)

    # Commands: one client; fail at once during an outage

    def client_for(self, name: str) -> Redis:
        """The command client (one Redis holds every key and channel)."""
        if self._client is None:
            raise self._not_started()
        return self._client

    def _reachable(self, name: str, doing: str) -> None:
        """Raise :class:`BrokerUnavailable` when not started, or at once during an outage.

        An outage lasts from the "lost Redis" warning to the "is back" line.
        Failing at once then, instead of trying, keeps a handler from
        waiting for the socket timeout (5 s) when Redis is unreachable
        rather than refusing connections.
        """
        self.client_for(name)
        if not self._online.is_set():
            since = self._down_since
            ago = 0.0 if since is None else asyncio.get_running_loop().time() - since
            lost = ConnectionError(f"connection lost {ago:.1f} s ago; reconnecting")
            raise self._unavailable(lost, doing)

    async def _on_owner(self, name: str, run: Callable[[Redis], Awaitable[T]]) -> T:
        return await run(self.client_for(name))

    # Subscriptions: one pub/sub connection

    def _acknowledged(self, channel: str) -> bool:
        return channel in self._confirmed

    async def _before_reconcile(self) -> None:
        await self._online.wait()  # subscriptions are sent on (re)connection meanwhile

    async def _apply_subscriptions(self) -> None:
        """SUBSCRIBE what is wanted and not sent; UNSUBSCRIBE the reverse."""
        pubsub = self._pubsub
        if pubsub is None:
            return
        wanted = set(self._base)
        wanted.update(self._refs)
        add = wanted - self._sent
        remove = self._sent - wanted
        self._sent = wanted
        if add:
            await pubsub.subscribe(*add)
        if remove:
            self._confirmed.difference_update(remove)
            await pubsub.unsubscribe(*remove)

    async def _subscriber(self) -> None:
        """Read the pub/sub connection forever, reconnecting with backoff."""
        delay = 0.05
        while True:
            try:
                await self._listen()
            except Exception as exc:  # the subscriber must never die
                if not isinstance(exc, FAULTS):
                    logger.exception("unexpected error in the Redis subscriber; reconnecting")
                if self._online.is_set():
                    delay = 0.05  # it worked until now: a new outage
                self._went_offline(exc)
            await self._close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.timing.backoff_max)

    async def _listen(self) -> None:
        """Open a pub/sub connection, subscribe everything, dispatch messages."""
        pubsub = self.client_for(self.channels.all).pubsub()
        self._pubsub = pubsub
        self._confirmed = set()
        wanted = set(self._base)
        wanted.update(self._refs)
        self._sent = wanted
        await pubsub.subscribe(*wanted)
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None:
                self._dispatch(message)
                if not self._online.is_set() and self._confirmed.issuperset(self._base):
                    await self._came_online()

    async def _came_online(self) -> None:
        """The shared channels are confirmed: report the broker online.

        After an outage, the idle command connections are dropped first:
        they were opened to the Redis that went away and may be half-open
        (no FIN ever arrives when a host or a proxy in between dies), so
        the first command after "is back" would fail on them.
        """
        if self._down_since is not None and self._client is not None:
            with contextlib.suppress(*FAULTS):
                await self._client.connection_pool.disconnect(inuse_connections=False)
        self._came_back()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*FAULTS):
                await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        """Route one pub/sub message to the sink or to a subscribe waiter."""
        kind = message["type"]
        channel = message["channel"].decode()
        if kind == "message":
            self._deliver(channel, message["data"])
        elif kind == "subscribe":
            self._confirmed.add(channel)
            self._ack(channel)
