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
import uuid
from typing import Any

from ..errors import BrokerUnavailable
from .broker import Broker, HealthCheck, Sink
from .channelrefs import add_ref, drop_ref, wait_for_ack
from .history import HistoryConfig, HistoryPage, Position
from .presence import RedisPresence
from .redisconn import FAULTS, Redis, connect_redis, idempotent, redact, unavailable
from .redishistory import RedisHistory
from .tasks import cancel_and_wait
from .wire import (
    HISTORY,
    Channels,
    decode_frame,
    decode_history_frame,
    decode_presence,
    decode_user_frame,
    encode_frame,
    encode_user_frame,
)

__all__ = ["RedisBroker"]

logger = logging.getLogger("wsroute.hub.redis")


class RedisBroker(Broker):
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
        self.url = url
        self.channels = Channels(prefix)
        self.process_id = uuid.uuid4().hex
        self.wait = wait
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self.presence_ttl = presence_ttl
        self._sink: Sink | None = None
        self._client: Redis | None = None
        self._presence: RedisPresence | None = None
        self._history: RedisHistory | None = None
        self._refs: dict[str, int] = {}
        self._base = (self.channels.all, self.channels.users, self.channels.presence)
        self._pubsub: Any = None
        self._sent: set[str] = set()
        self._confirmed: set[str] = set()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._requested = 0  # changes recorded (subscriptions, presence)
        self._applied = 0  # changes known to be in Redis
        self._settling: list[tuple[int, asyncio.Future[None]]] = []
        self._online = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None

    def __repr__(self) -> str:
        return f"RedisBroker({redact(self.url)!r})"

    # Lifecycle

    async def start(self, sink: Sink) -> None:
        """Connect, subscribe the shared channels, start background tasks.

        Raises:
            BrokerUnavailable: Redis cannot be reached (names the URL).
        """
        self._sink = sink
        self._client = await connect_redis(
            self.url, timeout=self.connect_timeout, wait=self.wait
        )
        self._presence = RedisPresence(self._client, self.channels, self.process_id,
                                       self.presence_ttl)
        self._history = RedisHistory(self._client, self.channels)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._subscriber()),
            loop.create_task(self._reconciler()),
            loop.create_task(self._heartbeat()),
        ]
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._online.wait()
        except TimeoutError as exc:
            await self.stop()
            raise unavailable(self.url, exc, "subscribing") from exc

    async def stop(self) -> None:
        """Apply pending changes for up to 2 s, then disconnect."""
        if self._client is None:
            return
        if self._online.is_set():
            await self.flush(timeout=2.0)
        self._settled(None)
        await cancel_and_wait(self._tasks)  # a plain cancel + gather could hang (see .tasks)
        self._tasks = []
        if self._presence is not None:
            with contextlib.suppress(*FAULTS):
                await idempotent(self._presence.forget_process)
        await self._close_pubsub()
        await self._client.aclose()
        self._client = None

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until Redis reflects local subscriptions and presence."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._idle.wait()
                    await self._online.wait()
                    if self._idle.is_set():
                        return
        except TimeoutError:
            logger.debug("flush timed out; changes will be applied later")

    async def settle(self) -> None:
        """Wait until the changes recorded so far are in Redis, then return.

        Used by ``Hub.subscribe``/``Hub.unsubscribe`` so that, when they
        return, every process's ``presence()`` reflects the change. Unlike
        :meth:`flush` it does not wait for changes made later by other
        connections, so it returns after one round trip even under churn.
        Returns at once during an outage (the change is applied when Redis
        is back), and after ``connect_timeout`` seconds at most.
        """
        target = self._requested
        if self._applied >= target or not self._online.is_set():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._settling.append((target, waiter))
        try:
            async with asyncio.timeout(self.connect_timeout):
                await waiter
        except TimeoutError:
            logger.debug("changes not in Redis after %.1f s; they will apply later",
                         self.connect_timeout)

    def _settled(self, applied: int | None) -> None:
        """Wake :meth:`settle` callers whose changes are applied (all if None)."""
        if applied is not None:
            self._applied = applied
        keep = []
        for target, waiter in self._settling:
            if applied is None or target <= applied:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((target, waiter))
        self._settling = keep

    def health_checks(self) -> dict[str, HealthCheck]:
        """One check, ``"redis"``: PING works and the subscriber is online."""
        return {"redis": self._check}

    async def _check(self) -> None:
        if self._client is None:
            raise BrokerUnavailable(f"Redis broker {redact(self.url)} is not started")
        client = self._online_client("health check")
        try:
            await idempotent(client.ping)
        except FAULTS as exc:
            raise unavailable(self.url, exc, "health check") from exc

    # Publishing

    def _require(self) -> Redis:
        if self._client is None:
            raise BrokerUnavailable(f"Redis broker {redact(self.url)} is not started")
        return self._client

    def _online_client(self, doing: str) -> Redis:
        """The client, or :class:`BrokerUnavailable` at once during an outage.

        An outage lasts from the "lost Redis" warning to the "is back" line.
        Failing at once then, instead of trying, keeps a handler from
        waiting for the socket timeout (5 s) when Redis is unreachable
        rather than refusing connections.
        """
        client = self._require()
        if not self._online.is_set():
            since = self._down_since
            ago = 0.0 if since is None else asyncio.get_running_loop().time() - since
            lost = ConnectionError(f"connection lost {ago:.1f} s ago; reconnecting")
            raise unavailable(self.url, lost, doing)
        return client

    async def _publish(self, channel: str, data: bytes) -> None:
        """PUBLISH once, never retried: at-most-once, like Redis pub/sub.

        A retry after a lost reply could deliver the message twice (Redis
        may have executed the first PUBLISH). A stale pooled connection is
        replaced before the command is sent, so right after a recovery the
        first publish succeeds without a retry.
        """
        client = self._online_client("publishing")
        try:
            await client.publish(channel, data)
        except FAULTS as exc:
            raise unavailable(self.url, exc, "publishing") from exc

    async def publish_all(self, text: bool, payload: bytes) -> None:
        """PUBLISH on the broadcast channel."""
        await self._publish(self.channels.all, encode_frame(text, payload))

    async def publish_user(self, user_id: str, text: bool, payload: bytes) -> None:
        """PUBLISH on the users channel, tagged with the user id."""
        await self._publish(self.channels.users, encode_user_frame(user_id, text, payload))

    async def publish_topic(self, topic: str, text: bool, payload: bytes) -> None:
        """PUBLISH on the topic's channel."""
        await self._publish(self.channels.topic(topic), encode_frame(text, payload))

    # History (docs/history.md; keys and scripts in .redishistory)

    def _require_history(self, doing: str) -> RedisHistory:
        self._online_client(doing)
        if self._history is None:  # pragma: no cover - _online_client raised before start()
            raise BrokerUnavailable(f"Redis broker {redact(self.url)} is not started")
        return self._history

    async def publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> Position:
        """One Lua script: next offset, XADD with MAXLEN, PUBLISH the envelope. Never retried."""
        history = self._require_history("publishing")
        try:
            return (await history.publish(topic, data, config))[0]
        except FAULTS as exc:
            raise unavailable(self.url, exc, "publishing") from exc

    async def read_history(self, topic: str, since: int | None, limit: int, config: HistoryConfig) -> HistoryPage:
        """One Lua script: epoch, newest offset and at most ``limit`` entries (retried once)."""
        history = self._require_history("reading history")
        try:
            return await idempotent(lambda: history.read(topic, since, limit, config))
        except FAULTS as exc:
            raise unavailable(self.url, exc, "reading history") from exc

    # Subscriptions

    async def subscribe(self, topic: str) -> None:
        """Count a subscriber; on the first, SUBSCRIBE and wait for the ack.

        While Redis is down this returns at once: the channel is subscribed
        when the connection comes back.
        """
        channel = self.channels.topic(topic)
        if add_ref(self._refs, channel):
            self._changed()
        if channel in self._confirmed or not self._online.is_set():
            return
        await wait_for_ack(self._waiters, channel, self.connect_timeout, "SUBSCRIBE", logger)

    def unsubscribe(self, topic: str) -> None:
        """Count one subscriber less; on the last, UNSUBSCRIBE (later)."""
        if drop_ref(self._refs, self.channels.topic(topic)):
            self._changed()

    def set_presence(self, topic: str, user_id: str, present: bool) -> None:
        """Record a local join/leave; Redis is updated in the background."""
        if self._presence is None:
            raise RuntimeError("RedisBroker used before Hub.start()")
        self._presence.set_local(topic, user_id, present)
        self._changed()

    async def presence(self, topic: str) -> set[str]:
        """User ids in ``topic`` across live processes.

        This process's own users come from its local truth, not from Redis:
        a join or leave made here is visible to this process's reads as soon
        as ``Hub.subscribe``/``unsubscribe``/``detach`` returns. Other
        processes' users are read from Redis.

        Raises:
            BrokerUnavailable: during an outage, at once (``Hub.local_presence``
                still answers for this process).
        """
        presence = self._presence
        if presence is None:
            raise BrokerUnavailable(f"Redis broker {redact(self.url)} is not started")
        self._online_client("reading presence")
        try:
            return await idempotent(lambda: presence.read(topic))
        except FAULTS as exc:
            raise unavailable(self.url, exc, "reading presence") from exc

    def _changed(self) -> None:
        self._requested += 1
        self._idle.clear()
        self._wake.set()

    # Background tasks

    async def _reconciler(self) -> None:
        """Apply subscription and presence changes whenever they happen."""
        while True:
            await self._wake.wait()
            await self._online.wait()
            self._wake.clear()
            target = self._requested
            try:
                await self._sync_channels()
                if self._presence is not None:
                    await idempotent(self._presence.sync)
            except Exception as exc:  # any failure: retry later, never die
                if not isinstance(exc, FAULTS):
                    logger.exception("unexpected error while updating Redis; retrying")
                self._wake.set()
                await asyncio.sleep(0.1)
                continue
            self._settled(target)
            if not self._wake.is_set():
                self._idle.set()

    async def _sync_channels(self) -> None:
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

    async def _heartbeat(self) -> None:
        """Keep this process's presence alive while it runs."""
        while self._presence is not None:
            try:
                if await idempotent(self._presence.heartbeat):
                    logger.debug("presence of this process had expired in Redis; rewriting it")
                    self._changed()
            except FAULTS as exc:
                logger.debug("presence heartbeat failed: %r", exc)
            await asyncio.sleep(self.presence_ttl / 3)

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
            delay = min(delay * 2, self.backoff_max)

    async def _listen(self) -> None:
        """Open a pub/sub connection, subscribe everything, dispatch messages."""
        pubsub = self._require().pubsub()
        self._pubsub = pubsub
        self._sent = set()
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

    @property
    def online(self) -> bool:
        """True while the shared channels are subscribed (between "lost" and "is back" it is False)."""
        return self._online.is_set()

    def _went_offline(self, exc: BaseException) -> None:
        """Log once per outage, then stay quiet until recovery."""
        self._online.clear()
        self._settled(None)  # nobody waits for Redis during an outage
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            logger.warning(
                "lost Redis at %s (%s); connections stay open, publishes fail, "
                "reconnecting with backoff up to %.1f s",
                redact(self.url), exc or type(exc).__name__, self.backoff_max,
            )

    async def _came_online(self) -> None:
        """The shared channels are confirmed: report the broker online.

        After an outage, the idle command connections are dropped first:
        they were opened to the Redis that went away and may be half-open
        (no FIN ever arrives when a host or a proxy in between dies), so
        the first command after "is back" would fail on them.
        """
        if self._down_since is not None:
            if self._client is not None:
                with contextlib.suppress(*FAULTS):
                    await self._client.connection_pool.disconnect(inuse_connections=False)
            outage = asyncio.get_running_loop().time() - self._down_since
            self._down_since = None
            self.reconnects += 1
            logger.warning("Redis at %s is back after %.1f s; resubscribed",
                           redact(self.url), outage)
            if self._presence is not None:
                self._presence.rewrite()
        self._online.set()
        self._changed()

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
            waiter = self._waiters.pop(channel, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _deliver(self, channel: str, data: bytes) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            if channel == self.channels.all:
                sink.deliver_all(*decode_frame(data))
            elif channel == self.channels.users:
                sink.deliver_user(*decode_user_frame(data))
            elif channel == self.channels.presence:
                sink.presence_event(*decode_presence(data))
            elif channel.startswith(self.channels.topic_prefix):
                topic = channel[len(self.channels.topic_prefix):]
                if data[0] == HISTORY:
                    sink.deliver_history(topic, *decode_history_frame(data))
                else:
                    sink.deliver_topic(topic, *decode_frame(data))
        except Exception:
            logger.exception("cannot deliver a message from %s", channel)
