"""The broker interface: how hubs in several processes share messages.

A :class:`Broker` carries three kinds of messages -- to everyone, to one
user, to one topic -- plus presence (which users are in a topic). The hub
calls the broker to publish and to say which topics it needs; the broker
calls back the hub's :class:`Sink` with every message this process must
deliver to its own connections.

The rule that keeps delivery exactly-once: a message published by this
process reaches its local connections *through the sink only*. The memory
broker calls the sink synchronously inside ``publish``; the Redis broker
never delivers locally and lets Redis echo the message back, once, on the
subscription. Never both.

Three implementations: :class:`~wsroute.hub.memory.MemoryBroker` (one process,
the default), :class:`~wsroute.hub.redis.RedisBroker` (``redis://``) and
:class:`~wsroute.hub.cluster.ClusterBroker` (``redis+cluster://``).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from .history import HistoryConfig, HistoryPage, Position

__all__ = ["Broker", "Sink", "PresenceEvent", "HealthCheck", "make_broker"]

PresenceEvent = Literal["join", "leave"]
HealthCheck = Callable[[], Awaitable[None]]


class Sink(Protocol):
    """What a broker calls to deliver to this process's connections.

    Every method is synchronous and must not block: it runs the fan-out.
    """

    def deliver_all(self, text: bool, payload: bytes) -> None:
        """Deliver a broadcast frame to every local connection."""

    def deliver_user(self, user_id: str, text: bool, payload: bytes) -> None:
        """Deliver a frame to every local connection of ``user_id``."""

    def deliver_topic(self, topic: str, text: bool, payload: bytes) -> None:
        """Deliver a frame to every local subscriber of ``topic``."""

    def presence_event(self, topic: str, event: PresenceEvent, user_id: str) -> None:
        """Tell local presence listeners of ``topic`` that a user joined or left."""

    def deliver_history(self, topic: str, offset: int, epoch: str, envelope: bytes) -> None:
        """Deliver the JSON envelope of a history topic's message (a text frame).

        Brokers call it once per message, in offset order, on every process
        that has subscribers of ``topic``; the hub uses ``offset`` to merge
        live messages with a replay (``subscribe(topic, since=...)``).
        """


class Broker(abc.ABC):
    """Moves messages between the hubs of all processes.

    Subscriptions are reference-counted per process: the hub calls
    :meth:`subscribe` / :meth:`unsubscribe` once per local connection and the
    broker only talks to its backend on the first and the last one.
    Synchronous methods are safe to call from ``Hub.detach`` (a ``finally``):
    they record the change and apply it in the background, never losing it.

    Attributes:
        reconnects: how many times the broker came back after losing its
            backend (0 for a broker that cannot lose it); read by metrics.
    """

    reconnects: int = 0

    @property
    def online(self) -> bool:
        """Whether the backend is reachable now; always True in memory. Read by metrics."""
        return True

    @abc.abstractmethod
    async def start(self, sink: Sink) -> None:
        """Connect; raise :class:`~wsroute.errors.BrokerUnavailable` if unreachable."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Apply pending changes (best effort) and disconnect."""

    @abc.abstractmethod
    async def publish_all(self, text: bool, payload: bytes) -> None:
        """Send a frame to every connection of every process."""

    @abc.abstractmethod
    async def publish_user(self, user_id: str, text: bool, payload: bytes) -> None:
        """Send a frame to every connection of ``user_id`` in every process."""

    @abc.abstractmethod
    async def publish_topic(self, topic: str, text: bool, payload: bytes) -> None:
        """Send a frame to every subscriber of ``topic`` in every process."""

    @abc.abstractmethod
    async def subscribe(self, topic: str) -> None:
        """Count one more local subscriber; return once messages flow."""

    @abc.abstractmethod
    def unsubscribe(self, topic: str) -> None:
        """Count one less local subscriber (synchronous, applied later)."""

    @abc.abstractmethod
    def set_presence(self, topic: str, user_id: str, present: bool) -> None:
        """Record that ``user_id`` is (or no longer is) in ``topic`` here."""

    @abc.abstractmethod
    async def presence(self, topic: str) -> set[str]:
        """Return the user ids present in ``topic`` in every process."""

    async def flush(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Wait until pending subscription and presence changes are applied."""

    async def settle(self) -> None:  # noqa: B027 - an optional hook, no-op by default
        """Wait (bounded) until the changes recorded so far reach the backend.

        ``Hub.subscribe``/``unsubscribe`` await it after a presence change,
        so that other processes see the change once they return. Must return
        at once when the backend is unreachable. A broker that applies
        changes synchronously keeps this no-op.
        """

    def health_checks(self) -> dict[str, HealthCheck]:
        """Named readiness checks; each raises when the broker is not ready."""
        return {}

    # History (docs/history.md). A broker that keeps history overrides both
    # methods; the hub refuses to start with history rules on one that does not.

    @property
    def keeps_history(self) -> bool:
        """True when this broker implements :meth:`publish_history` and :meth:`read_history`."""
        cls = type(self)
        return cls.publish_history is not Broker.publish_history and cls.read_history is not Broker.read_history

    async def publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> Position:
        """Append a message to ``topic``'s history and deliver it, atomically.

        In one step that no other publication of ``topic`` can interleave
        with (one Lua script in Redis): take the topic's next offset (1 for
        the first message of an epoch), keep ``data`` in the history,
        trimmed to the last ``config.size`` messages (approximately is
        fine: the hub never replays more than ``size``) and forgotten after
        ``config.ttl`` seconds, and publish the envelope
        (:func:`~.history.envelope`) so that every process with subscribers
        calls ``Sink.deliver_history(topic, offset, epoch, envelope)`` once,
        in offset order. When the topic has no epoch yet (first use, or its
        history was lost), create a new one (:func:`~.history.new_epoch`)
        and start again at offset 1; keep the offset and epoch for
        ``config.meta_ttl`` seconds after the last publication.

        Args:
            topic: the topic.
            data: the message as JSON (a JSON string for published text).
            config: the topic's settings (from ``hub.history()``).

        Returns:
            The message's position.

        Raises:
            BrokerUnavailable: the backend cannot be reached; the message
                was neither kept nor delivered, or may have been (a lost
                reply): never retried.
        """
        raise NotImplementedError(f"{type(self).__name__} does not keep message history")

    async def read_history(self, topic: str, since: int | None, limit: int, config: HistoryConfig) -> HistoryPage:
        """Read at most ``limit`` kept messages of ``topic``; never unbounded.

        With ``since`` an offset: the kept messages whose offset is above
        it and at most ``config.size`` below the newest, oldest first (a
        message trimmed or older than ``config.ttl`` is simply absent: the
        hub sees the gap). With ``since`` None: the newest ``limit``
        messages, oldest first. ``limit`` 0 reads only the position. A topic
        without an epoch gets one (offset 0), so that a client that
        subscribed before anything was published can recover later.

        Returns:
            The topic's current position and ``(offset, envelope)`` pairs,
            each envelope byte-for-byte what subscribers received.

        Raises:
            BrokerUnavailable: the backend cannot be reached.
        """
        raise NotImplementedError(f"{type(self).__name__} does not keep message history")


def make_broker(spec: Broker | str | None, options: Mapping[str, Any] | None = None) -> Broker:
    """Build a broker from ``App(broker=...)`` / ``--broker``.

    Args:
        spec: ``None`` or ``"memory://"`` (one process), ``"redis://…"`` /
            ``"rediss://…"`` / ``"unix://…"`` (one Redis),
            ``"redis+cluster://host:port,host:port/"`` /
            ``"rediss+cluster://…"`` (Redis Cluster, sharded pub/sub), or a
            :class:`Broker` instance.
        options: keyword arguments for the Redis or cluster broker (``wait``,
            ``connect_timeout``, ``prefix``, ``backoff_max``, ``presence_ttl``;
            the cluster broker also takes ``partitions``, ``node_timeout``,
            ``ping_interval``).

    Raises:
        ValueError: an unknown URL scheme; the message lists the known ones.
        ImportError: ``redis://`` or ``redis+cluster://`` without the optional
            ``redis`` package.
    """
    if spec is None or isinstance(spec, Broker):
        if spec is None:
            from .memory import MemoryBroker

            return MemoryBroker()
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"broker must be None, a URL <str> or a Broker (got {spec!r} that is "
            f"a <{type(spec).__name__}>)"
        )
    scheme = spec.partition("://")[0].lower()
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker()
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBroker

        return RedisBroker(spec, **dict(options or {}))
    if scheme in ("redis+cluster", "rediss+cluster"):
        from .cluster import ClusterBroker

        return ClusterBroker(spec, **dict(options or {}))
    raise ValueError(
        f"broker {spec!r}: unknown scheme {scheme!r} "
        "(known: memory://, redis://, rediss://, unix://, redis+cluster://, rediss+cluster://)"
    )
