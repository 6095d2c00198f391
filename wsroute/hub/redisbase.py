"""What the Redis and Redis Cluster brokers share: wanted state, reconciled in the background.

:class:`~.redis.RedisBroker` (one Redis, ``PUBLISH``/``SUBSCRIBE``) and
:class:`~.cluster.ClusterBroker` (sharded pub/sub on a cluster) differ in
how they reach Redis -- one pub/sub connection that reconnects, or one link
per master that follows failovers -- and in little else. This base class
is that rest, written once:

- **Wanted state, applied later.** ``subscribe``/``unsubscribe`` count
  local subscribers per channel (:mod:`.channelrefs`) and ``set_presence``
  records the local truth (:mod:`.presence`); both are synchronous, so
  ``Hub.detach`` can call them in a ``finally``. One background task, the
  reconciler, applies the difference to Redis whenever something changed;
  a change made during an outage is applied when Redis is back, and churn
  is coalesced. :meth:`settle` and :meth:`flush` wait (bounded) for it.
- **Commands that fail fast and say why.** Every command goes through
  :meth:`RedisBrokerBase._command`: during an outage it raises
  :class:`~wsroute.errors.BrokerUnavailable` at once instead of waiting
  for a socket timeout; a command safe to repeat is retried once on a
  closed connection (:func:`~.redisconn.idempotent`); a publication never
  is, so delivery stays at-most-once, never twice.
- **One warning per outage, one line on recovery.** The subclass says when
  the backend is lost (:meth:`RedisBrokerBase._went_offline`) and when
  every wanted channel is acknowledged again
  (:meth:`RedisBrokerBase._came_back`); this class counts reconnections,
  logs, and has the presence written again.
- **One reading of the wire format.** Frames from either backend reach the
  hub's sink through :meth:`RedisBrokerBase._deliver`.

A subclass supplies the connection: ``start()`` (connect, then
:meth:`~RedisBrokerBase._begin` and :meth:`~RedisBrokerBase._wait_online`),
:meth:`~RedisBrokerBase.client_for`, :meth:`~RedisBrokerBase._on_owner`,
:meth:`~RedisBrokerBase._reachable`, :meth:`~RedisBrokerBase._apply_subscriptions`,
:meth:`~RedisBrokerBase._acknowledged`, :meth:`~RedisBrokerBase._disconnect`
and its health check; it calls :meth:`~RedisBrokerBase._ack` and
:meth:`~RedisBrokerBase._deliver` from its reader.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import attrs

from ..errors import BrokerUnavailable
from .broker import Broker, Sink
from .channelrefs import add_ref, drop_ref, wait_for_ack
from .history import HistoryConfig, HistoryPage, Position
from .presence import RedisPresence
from .redisconn import FAULTS, Redis, idempotent, publication, unavailable
from .redishistory import RedisHistory
from .tasks import cancel_and_wait
from .wire import (
    HISTORY,
    PRESENCE,
    Channels,
    ClusterChannels,
    decode_frame,
    decode_history_frame,
    decode_presence,
    decode_user_frame,
    encode_frame,
    encode_user_frame,
)

__all__ = ["Backend", "RedisBrokerBase", "Timing"]

T = TypeVar("T")


@attrs.frozen
class Backend:
    """What a Redis broker says about its backend, in messages and logs.

    Attributes:
        name: ``"Redis"`` or ``"Redis Cluster"``.
        logger: where the broker logs; one logger per backend, so that users
            (and tests) can filter them.
        lost: the warning logged once per outage; ``%``-format of (where,
            URL, error, backoff cap in seconds).
        back: the line logged when the outage ends; ``%``-format of (URL,
            seconds).
    """

    name: str
    logger: logging.Logger
    lost: str
    back: str


@attrs.frozen
class Timing:
    """How long a Redis broker waits, and how often it retries: options both brokers take.

    Attributes:
        wait: at start, retry for ``connect_timeout`` seconds instead of
            failing at once (useful when Redis starts with the app).
        connect_timeout: seconds ``wait`` keeps trying, and the bound on
            waiting for subscriptions and for ``settle()``.
        backoff_max: cap of the reconnection backoff, in seconds.
        presence_ttl: seconds after which a dead process's presence entries
            stop counting; live processes refresh theirs every third of it.
    """

    wait: bool
    connect_timeout: float
    backoff_max: float
    presence_ttl: float


class RedisBrokerBase(Broker):
    """The shared half of the Redis brokers (see the module docstring).

    Args:
        url: the broker URL, as given.
        backend: its name, logger and outage lines.
        timing: the waits and backoff.
        shown_url: the URL for messages and logs, without its password.
        channels: the deployment's channel and key names (which also give
            the pub/sub commands).
        base_channels: channels every process subscribes (broadcast, users…).
    """

    def __init__(self, url: str, backend: Backend, timing: Timing, *, shown_url: str,
                 channels: Channels | ClusterChannels, base_channels: frozenset[str]) -> None:
        self.url = url
        self.backend = backend
        self.logger = backend.logger
        self.timing = timing
        self.shown_url = shown_url
        self.channels = channels
        self.process_id = uuid.uuid4().hex
        self._base = base_channels
        # The users channel is one name (one Redis) or one per partition (a cluster);
        # presence events have their own channel only on one Redis.
        users = channels.users
        self._user_channels = frozenset([users] if isinstance(users, str) else users)
        self._events = channels.presence if isinstance(channels, Channels) else None
        self._started = False
        self._sink: Sink | None = None
        self._presence: RedisPresence | None = None
        self._history: RedisHistory | None = None
        self._refs: dict[str, int] = {}
        self._topic_of: dict[str, str] = {}
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._requested = 0  # changes recorded (subscriptions, presence)
        self._applied = 0  # changes known to be in Redis
        self._settling: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._online = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None
        self._last_error: BaseException | None = None

    # What a subclass supplies

    @abc.abstractmethod
    def client_for(self, name: str) -> Redis:
        """The command client of the server that holds key or channel ``name``."""

    @abc.abstractmethod
    async def _on_owner(self, name: str, run: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``run(client)`` on the server that holds ``name`` (a cluster follows one MOVED)."""

    def _reachable(self, name: str, doing: str) -> None:
        """Raise :class:`BrokerUnavailable` at once if ``name``'s server is known to be unreachable."""
        if not self._started:
            raise self._not_started()

    def _unavailable(self, exc: BaseException, doing: str) -> BrokerUnavailable:
        """A :class:`BrokerUnavailable` that names the URL, what failed and the fix."""
        return unavailable(self.url, exc, doing)

    def _failed(self, exc: BaseException, name: str, doing: str) -> BrokerUnavailable:
        """A command on ``name`` failed: the error to raise (a cluster also refreshes its map)."""
        return self._unavailable(exc, doing)

    @abc.abstractmethod
    async def _apply_subscriptions(self) -> None:
        """Make Redis subscriptions match :attr:`_base` plus the counted channels."""

    @abc.abstractmethod
    def _acknowledged(self, channel: str) -> bool:
        """True once Redis acknowledged the subscription of ``channel``."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Close every connection (background tasks are already stopped)."""

    async def _before_reconcile(self) -> None:
        """Wait until a round of reconciliation may run (default: at once)."""

    async def _reconcile_failed(self, exc: BaseException) -> None:
        """A round failed with ``exc``; it is retried (default: after 0.1 s)."""
        await asyncio.sleep(0.1)

    def _reconciled(self) -> None:
        """A round succeeded (the cluster checks here whether it is whole again)."""

    # Lifecycle

    def _begin(self, sink: Sink, tasks: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
        """Connected: make the presence and history stores, start ``tasks``, the reconciler and the heartbeat.

        The stores reach Redis through :meth:`client_for`, so they work
        unchanged on one Redis and on a cluster.
        """
        self._sink = sink
        self._presence = RedisPresence(self.client_for, self.channels, self.process_id, self.timing.presence_ttl)
        self._history = RedisHistory(self.client_for(self.channels.all), self.channels, self.channels.publish_command)
        self._started = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(task()) for task in (*tasks, self._reconciler, self._heartbeat)]

    async def _wait_online(self, timeout: float) -> None:
        """Wait until the shared channels are subscribed; on timeout stop and raise.

        Raises:
            BrokerUnavailable: not online within ``timeout`` seconds (names the
                last error, if any).
        """
        try:
            async with asyncio.timeout(timeout):
                await self._online.wait()
        except TimeoutError as exc:
            await self.stop()
            raise self._unavailable(self._last_error or exc, "subscribing") from exc

    async def stop(self) -> None:
        """Apply pending changes for up to 2 s, remove this process's presence, disconnect."""
        if not self._started:
            return
        self._started = False
        if self._online.is_set():
            await self.flush(timeout=2.0)
        self._settled(None)
        await cancel_and_wait(self._tasks)  # a plain cancel + gather could hang (see .tasks)
        self._tasks = []
        if self._presence is not None:
            with contextlib.suppress(*FAULTS, TimeoutError):
                async with asyncio.timeout(2.0):
                    await idempotent(self._presence.forget_process)
        await self._disconnect()
        self._online.clear()

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
            self.logger.debug("flush timed out; changes will be applied later")

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
            async with asyncio.timeout(self.timing.connect_timeout):
                await waiter
        except TimeoutError:
            self.logger.debug("changes not in Redis after %.1f s; they will apply later", self.timing.connect_timeout)

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

    def _not_started(self) -> BrokerUnavailable:
        return BrokerUnavailable(f"{self.backend.name} broker {self.shown_url} is not started")

    # Commands

    async def _command(self, name: str, doing: str, run: Callable[[Redis], Awaitable[T]],
                       *, repeatable: bool = False) -> T:
        """Run ``run(client)`` on the server that holds ``name``; every failure is :class:`BrokerUnavailable`.

        Args:
            name: the key or channel the command is about (picks the server).
            doing: what the command does, for the message ("publishing").
            run: sends the command on the client it is given.
            repeatable: the command is safe to repeat (a read, PING), so it is
                retried once on a closed connection. Never for a publication:
                a reply lost after Redis executed it would deliver twice.

        Raises:
            BrokerUnavailable: not started, known to be unreachable (at once),
                or the command failed.
        """
        self._reachable(name, doing)

        async def call() -> T:
            return await self._on_owner(name, run)

        try:
            return await (idempotent(call) if repeatable else call())
        except FAULTS as exc:
            raise self._failed(exc, name, doing) from exc

    # Publishing

    async def _publish(self, channel: str, data: bytes) -> None:
        """PUBLISH (SPUBLISH on a cluster) once, never retried: at-most-once, like Redis pub/sub."""
        await self._command(channel, "publishing", publication(self.channels.publish_command, channel, data))

    async def publish_all(self, text: bool, payload: bytes) -> None:
        """Publish on the broadcast channel."""
        await self._publish(self.channels.all, encode_frame(text, payload))

    async def publish_user(self, user_id: str, text: bool, payload: bytes) -> None:
        """Publish on the user's channel, tagged with the user id."""
        await self._publish(self.channels.user(user_id), encode_user_frame(user_id, text, payload))

    async def publish_topic(self, topic: str, text: bool, payload: bytes) -> None:
        """Publish on the topic's channel."""
        await self._publish(self.channels.topic(topic), encode_frame(text, payload))

    # History (docs/history.md): one Lua script on the server that holds the
    # topic's Stream, its meta Hash and its channel (.redishistory).

    def _require_history(self) -> RedisHistory:
        if self._history is None or not self._started:
            raise self._not_started()
        return self._history

    async def publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> Position:
        """One Lua script: next offset, XADD with MAXLEN, publish the envelope. Never retried."""
        history = self._require_history()
        channel = self.channels.topic(topic)
        kept = await self._command(channel, "publishing", lambda client: history.publish(topic, data, config, client))
        return kept[0]

    async def read_history(self, topic: str, since: int | None, limit: int, config: HistoryConfig) -> HistoryPage:
        """One Lua script: epoch, newest offset and at most ``limit`` entries (retried once)."""
        history = self._require_history()
        return await self._command(
            self.channels.topic(topic), "reading history",
            lambda client: history.read(topic, since, limit, config, client), repeatable=True,
        )

    # Subscriptions and presence

    async def subscribe(self, topic: str) -> None:
        """Count a subscriber; on the first, subscribe in Redis and wait for the ack.

        While Redis (or the topic's shard) is down this returns at once: the
        channel is subscribed when it is back.
        """
        channel = self.channels.topic(topic)
        if add_ref(self._refs, channel):
            self._topic_of[channel] = topic
            self._changed()
        if self._acknowledged(channel) or not self._online.is_set():
            return
        await wait_for_ack(self._waiters, channel, self.timing.connect_timeout, self.channels.subscribe_command,
                           self.logger)

    def unsubscribe(self, topic: str) -> None:
        """Count one subscriber less; on the last, unsubscribe in Redis (later)."""
        channel = self.channels.topic(topic)
        if drop_ref(self._refs, channel):
            self._topic_of.pop(channel, None)
            self._changed()

    def set_presence(self, topic: str, user_id: str, present: bool) -> None:
        """Record a local join/leave; Redis is updated in the background."""
        if self._presence is None:
            raise RuntimeError(f"{type(self).__name__} used before Hub.start()")
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
        store = self._presence
        if store is None:
            raise self._not_started()
        return await self._command(self.channels.presence_key(topic), "reading presence",
                                   lambda _client: store.read(topic), repeatable=True)

    def _changed(self) -> None:
        self._requested += 1
        self._idle.clear()
        self._wake.set()

    # Background tasks

    async def _reconciler(self) -> None:
        """Apply subscription and presence changes whenever they happen; never die."""
        while True:
            await self._wake.wait()
            await self._before_reconcile()
            self._wake.clear()
            target = self._requested
            try:
                await self._apply_subscriptions()
                if self._online.is_set() and self._presence is not None:
                    await idempotent(self._presence.sync)
            except Exception as exc:  # any failure: retry later, never die
                if not isinstance(exc, FAULTS):
                    self.logger.exception("unexpected error while updating %s; retrying", self.backend.name)
                await self._reconcile_failed(exc)
                self._wake.set()
                continue
            self._reconciled()
            if self._online.is_set():
                self._settled(target)
            if not self._wake.is_set():
                self._idle.set()

    async def _heartbeat(self) -> None:
        """Keep this process's presence alive while it runs."""
        while self._presence is not None:
            try:
                if await idempotent(self._presence.heartbeat):
                    self.logger.debug("presence of this process had expired in Redis; rewriting it")
                    self._changed()
            except FAULTS as exc:
                self.logger.debug("presence heartbeat failed: %r", exc)
            await asyncio.sleep(self.timing.presence_ttl / 3)

    # Online / offline

    @property
    def online(self) -> bool:
        """True while every wanted channel is subscribed (False from "lost" to "back"). Read by metrics."""
        return self._online.is_set()

    def _went_offline(self, exc: BaseException, where: str = "") -> None:
        """Log once per outage, then stay quiet until recovery; nobody waits for Redis meanwhile."""
        self._last_error = exc
        self._online.clear()
        self._settled(None)
        if self._down_since is None and self._started:
            self._down_since = asyncio.get_running_loop().time()
            self.logger.warning(self.backend.lost, where, self.shown_url, exc or type(exc).__name__,
                                self.timing.backoff_max)

    def _came_back(self) -> None:
        """Every wanted channel is acknowledged: report online; after an outage, count and log it."""
        self._last_error = None
        if self._down_since is not None:
            outage = asyncio.get_running_loop().time() - self._down_since
            self._down_since = None
            self.reconnects += 1
            self.logger.warning(self.backend.back, self.shown_url, outage)
            if self._presence is not None:
                self._presence.rewrite()
        self._online.set()
        self._changed()

    def _ack(self, channel: str) -> None:
        """Redis acknowledged the subscription of ``channel``: wake who waits for it."""
        waiter = self._waiters.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Delivery

    def _deliver(self, channel: str, data: bytes) -> None:
        """Hand one pub/sub message to the sink; a bad frame is logged, never raised."""
        sink = self._sink
        if sink is None:
            return
        try:
            if channel in self._user_channels:
                sink.deliver_user(*decode_user_frame(data))
            elif channel == self.channels.all:
                sink.deliver_all(*decode_frame(data))
            elif channel == self._events:
                sink.presence_event(*decode_presence(data))
            else:
                topic = self._topic_of.get(channel)
                if topic is None:
                    return  # unsubscribed meanwhile
                if data[0] == HISTORY:
                    sink.deliver_history(topic, *decode_history_frame(data))
                elif data[0] == PRESENCE:
                    sink.presence_event(*decode_presence(data[1:]))
                else:
                    sink.deliver_topic(topic, *decode_frame(data))
        except Exception:
            self.logger.exception("cannot deliver a message from %s", channel)
