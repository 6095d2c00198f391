"""The Hub class: broadcast, one user, topics, presence, with backpressure.

Handlers and apps call one object, ``app.hub``::

    await app.hub.broadcast("server restarting")
    await app.hub.send_to_user("alice", "you have mail")
    await app.hub.subscribe(ws, "room:1")
    await app.hub.publish_json("room:1", {"type": "say", "text": "hi"})

The hub keeps local maps of connections (:mod:`.registry`), writes to them
with backpressure (:mod:`.delivery`) and shares messages between processes
through a broker (:mod:`.broker`: in memory by default, Redis for several
processes). From outside a server, :class:`Publisher` speaks the same wire
format as the Redis broker.

During a broker outage (Redis down: from the "lost Redis" warning to the "is
back" line) everything that needs other processes -- publishing, reading
``presence`` -- raises :class:`~wsroute.errors.BrokerUnavailable` at once,
and everything local keeps working: attaching, subscribing, local delivery
bookkeeping, :meth:`Hub.local_presence`. docs/hub.md has the table.

History (docs/history.md): topics declared with :meth:`Hub.history` number
their messages and keep the last ones, so that a client can subscribe
``since`` the position it last saw, on any process (:mod:`.history`,
:mod:`.recovery`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..errors import BrokerError, ConfigurationError, SubscriptionLimit
from ..jsonutil import encode_json
from .broker import Broker, HealthCheck, PresenceEvent, make_broker
from .delivery import Delivery
from .history import HistoryConfig, HistoryRules, Position, Recovery
from .policy import SlowConsumer, parse_policy
from .recovery import Recoveries
from .registry import MessageCallback, PresenceCallback, Registry
from .stats import HubStats
from .who import Who
from .wire import to_frame

__all__ = ["Hub"]


class Hub:
    """Connection registry and message fan-out for one server process.

    Args:
        broker: ``None`` or ``"memory://"`` for one process (the default);
            ``"redis://host:6379/0"`` to share messages between processes
            (needs ``pip install 'wsroute[redis]'``); or a :class:`Broker`.
        policy: the default slow-consumer policy, ``"disconnect"`` (close
            with 1013, the default), ``"drop_oldest"`` or ``"keep_latest"``;
            a route may override it per connection in :meth:`attach`.
        max_queue: frames a connection that fell behind may have waiting
            before the policy applies (default 64).
        max_buffer: bytes in a connection's transport write buffer above
            which it counts as behind (default 64 KiB). Below it, frames are
            written synchronously like ``websockets.broadcast()``.
        close_timeout: seconds a slow consumer gets to finish the closing
            handshake before its TCP connection is aborted (default 2).
        broker_options: keyword arguments for a broker built from a URL,
            e.g. ``{"wait": True, "connect_timeout": 30}`` to wait for Redis
            at start-up instead of failing at once, or ``{"prefix": "app2"}``.
        message_key: the type field the ``*_json`` methods add to message
            class instances (an App sets it to its ``message_key``).

    Memory per connection stays bounded by about ``max_buffer`` plus one
    frame in the transport and ``max_queue`` frames in the outbox, plus the
    kernel's socket buffer.
    """

    def __init__(
        self,
        *,
        broker: Broker | str | None = None,
        policy: SlowConsumer | str = SlowConsumer.DISCONNECT,
        max_queue: int = 64,
        max_buffer: int = 64 * 1024,
        close_timeout: float = 2.0,
        broker_options: Mapping[str, Any] | None = None,
        message_key: str = "type",
    ) -> None:
        for name, value in (("max_queue", max_queue), ("max_buffer", max_buffer)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"{name} must be a positive <int> (got {value!r} that is a "
                    f"<{type(value).__name__}>)"
                )
        self._broker_options = broker_options
        self.message_key = message_key
        self._started = False
        self.broker: Broker = make_broker(broker, broker_options)
        self.stats = HubStats()
        self._registry = Registry()
        self._delivery = Delivery(
            policy=parse_policy(policy),
            max_queue=max_queue,
            max_buffer=max_buffer,
            close_timeout=close_timeout,
            stats=self.stats,
        )
        self._history = HistoryRules()
        self._recoveries = Recoveries(self._delivery)
        self._sink = _HubSink(self)

    def count_traffic(self) -> None:
        """Count fan-out frames in each connection's ``traffic`` (see :meth:`wsroute.App.count_traffic`)."""
        self._delivery.count_traffic = True

    def __repr__(self) -> str:
        return f"<Hub {self.broker!r} connections={len(self._registry)}>"

    # Lifecycle

    def use_broker(self, broker: Broker | str | None) -> None:
        """Replace the broker before the hub starts (``wsroute run --broker``).

        The hub's policy and limits stay as configured; a URL is built with
        the ``broker_options`` given to the hub.

        Raises:
            RuntimeError: the hub is already started.
        """
        if self._started:
            raise RuntimeError("Hub.use_broker(): the hub is running; replace the broker before the app starts")
        self.broker = make_broker(broker, self._broker_options)

    async def start(self) -> None:
        """Connect the broker; call before the server listens.

        Raises:
            BrokerUnavailable: the broker cannot be reached (with the Redis
                option ``wait=True``: not within ``connect_timeout``).
            ConfigurationError: history is declared but the broker keeps none.
        """
        if self._history and not self.broker.keeps_history:
            globs = ", ".join(repr(pattern) for pattern, _ in self._history.describe())
            raise ConfigurationError(
                f"hub.history({globs}): the broker {self.broker!r} keeps no message history; "
                "use the memory broker, redis:// or redis+cluster://, or remove the history() call"
            )
        await self.broker.start(self._sink)
        self._started = True

    async def stop(self) -> None:
        """Flush the broker, disconnect it, stop pending slow-consumer work.

        Never raises for a broker outage: changes not yet written are
        dropped, and this process's presence entries expire in Redis after
        ``presence_ttl``.
        """
        self._started = False
        try:
            await self.broker.stop()
        finally:
            await self._delivery.aclose()

    def health_checks(self) -> dict[str, HealthCheck]:
        """Named readiness checks (the Redis broker contributes ``"redis"``)."""
        return self.broker.health_checks()

    # Connections

    def attach(self, conn: Connection, policy: SlowConsumer | str | None = None) -> None:
        """Register a connection after its handshake (synchronous and cheap).

        Args:
            conn: the connection; ``conn.ctx.user_id``, if set, is its user.
            policy: this route's slow-consumer policy; None uses the hub's.
        """
        self._registry.add(conn)
        if policy is not None:
            self._delivery.set_policy(conn, parse_policy(policy))

    def detach(self, conn: Connection) -> None:
        """Forget a connection everywhere; broker-side cleanup runs later."""
        left = self._registry.remove(conn)
        if left:
            broker = self.broker
            for topic, absent_user in left:
                broker.unsubscribe(topic)
                if absent_user is not None:
                    broker.set_presence(topic, absent_user, False)
        self._delivery.forget(conn)

    @property
    def connections(self) -> int:
        """How many connections are attached in this process."""
        return len(self._registry)

    def backlog(self, conn: Connection) -> int:
        """Frames waiting for ``conn`` because it fell behind (0 normally)."""
        return self._delivery.backlog(conn)

    # History

    def history(self, pattern: str, size: int = 1000, ttl: float = 300) -> None:
        """Keep the last ``size`` messages of topics matching ``pattern``, each for ``ttl`` seconds.

        ``app.hub.history("room:*", size=1000, ttl=300)``. Their messages
        get offsets and reach subscribers as JSON envelopes
        ``{"topic", "offset", "epoch", "data"}``; clients can come back
        with ``subscribe(topic, since=position)``. Declare it before the
        app starts, the same in every process; the settings belong to the
        hub, so they hold when ``--broker`` replaces the broker. A later
        call wins for topics two globs match; the same glob again replaces
        its settings.

        Args:
            pattern: an ``fnmatch`` glob of topic names (``*``, ``?``, ``[ab]``).
            size: messages kept per topic (default 1,000).
            ttl: seconds each message is kept (default 300).

        Raises:
            ConfigurationError: a bad glob, size or ttl, or the hub is running.
        """
        if self._started:
            raise ConfigurationError(f"hub.history({pattern!r}): the hub is running; declare history before it starts")
        self._history.add(pattern, HistoryConfig(size, ttl))

    def history_of(self, topic: str) -> HistoryConfig | None:
        """The history settings of ``topic``, or None when it keeps none."""
        return self._history.match(topic) if self._history else None

    async def read_history(
        self, topic: str, since: Position | None = None, limit: int = 100
    ) -> tuple[list[dict[str, Any]], Position]:
        """Read kept messages of a history topic; at most ``limit`` (bounded reads only).

        Args:
            since: None for the newest ``limit`` messages; a position for
                the messages after it still kept (none when its epoch is not
                the topic's: the history was lost).
            limit: 1 or more; more than the topic's ``size`` reads ``size``.

        Returns:
            ``(envelopes, position)``: the envelopes as dicts, oldest first,
            and the topic's current position.

        Raises:
            ValueError: ``topic`` keeps no history, or a bad ``limit``.
            BrokerUnavailable: the broker is down.
        """
        config = self._require_history(topic, "read_history")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"read_history(limit=...) must be a positive <int> (got {limit!r})")
        limit = min(limit, config.size)
        page = await self.broker.read_history(topic, None if since is None else since.offset, limit, config)
        if since is not None and page.position.epoch != since.epoch:
            return [], page.position
        return [json.loads(frame) for _, frame in page.entries], page.position

    def _require_history(self, topic: str, doing: str) -> HistoryConfig:
        config = self.history_of(topic)
        if config is None:
            raise ValueError(
                f"{doing}({topic!r}): this topic keeps no history; declare it with "
                f"app.hub.history({topic!r}) (or a glob matching it) before the app starts"
            )
        return config

    # Topics and presence

    async def subscribe(
        self,
        conn: Connection,
        topic: str,
        on_presence: PresenceCallback | None = None,
        on_message: MessageCallback | None = None,
        since: Position | None = None,
    ) -> Recovery | None:
        """Subscribe ``conn`` to ``topic``; return once messages flow.

        During a broker outage it returns at once and never raises: local
        bookkeeping is done, and the Redis subscription and presence entry
        are written when Redis is back (messages published elsewhere in the
        meantime are not received). On a history topic it returns
        ``Recovery(recovered=False, ...)`` then: nothing can be replayed.

        When it returns, :meth:`presence` in this process includes the
        connection's user, with every broker; with Redis, other processes'
        ``presence()`` include it too (unless Redis is down: then it is
        written when Redis is back).

        Args:
            on_presence: ``async (topic, "join" | "leave", user_id)`` called
                when a user joins or leaves the topic (in any process).
            on_message: ``(text, payload)`` called with each message published
                on ``topic`` *instead of* sending it to the client (what
                ``Handler.subscribe(topic, dispatch=True)`` uses). It runs in
                the delivery path, so it must only queue, never block.
            since: on a history topic, the position the client last saw:
                every kept message after it is sent first, in order, then
                live messages, with no gap and no duplicate. None: from now.

        Returns:
            On a history topic, a :class:`~.history.Recovery` (``recovered``
            is False for ``since=None``); on other topics, None.

        Raises:
            ValueError: ``since`` given for a topic that keeps no history.
            SubscriptionLimit: ``conn`` already has its ``max_subscriptions``
                topics (``App``/route option, default 1000) and ``topic`` is
                not one of them; nothing changes and the connection stays open.
        """
        if conn not in self._registry.conns:
            raise ValueError(f"subscribe({topic!r}): connection {conn!r} is not attached")
        limit = getattr(conn, "max_subscriptions", None)
        if limit is not None:
            self._check_subscription_limit(conn, topic, limit)
        config = self.history_of(topic)
        if config is None and since is not None:
            self._require_history(topic, "subscribe(since=...)")
        new, joined = self._registry.subscribe(conn, topic, on_presence, on_message)
        if not new:
            if config is None:
                return None
            try:
                return Recovery(False, 0, (await self.broker.read_history(topic, None, 0, config)).position)
            except BrokerError:
                return Recovery(False, 0, since or Position(0, ""))
        buffer = None if config is None else self._recoveries.start(conn, topic, config)
        try:
            user_id = self._registry.user_of(conn)
            if joined and user_id is not None:
                self.broker.set_presence(topic, user_id, True)
            await self.broker.subscribe(topic)
            if joined and user_id is not None:
                await self.broker.settle()
            if config is None or buffer is None:
                return None
            return await self._recoveries.replay(self.broker, conn, topic, since, config, buffer)
        except BaseException:
            if buffer is not None:
                self._recoveries.end(conn, topic)
                await self.unsubscribe(conn, topic)
            raise

    def _check_subscription_limit(self, conn: Connection, topic: str, limit: int) -> None:
        """Raise :class:`~wsroute.errors.SubscriptionLimit` when a new topic would pass ``limit``."""
        topics = self._registry.topics_of(conn)
        if len(topics) >= limit and topic not in topics:
            count_refusal = getattr(conn, "count_refusal", None)  # a wsroute Connection counts it in app.stats()
            if count_refusal is not None:
                count_refusal("max_subscriptions")
            raise SubscriptionLimit(
                f"subscribe({topic!r}): this connection is subscribed to {len(topics)} topics, its "
                f"max_subscriptions; unsubscribe from one first, or raise max_subscriptions (App or route option)"
            )

    async def unsubscribe(self, conn: Connection, topic: str) -> None:
        """Unsubscribe ``conn`` from ``topic`` (no error if it was not).

        When it returns, :meth:`presence` reflects a user who left, in this
        process and (with Redis, while it is up) in every other one. During
        an outage it returns at once; Redis is updated when it is back.
        """
        was, left = self._registry.unsubscribe(conn, topic)
        if not was:
            return
        self.broker.unsubscribe(topic)
        user_id = self._registry.user_of(conn)
        if left and user_id is not None:
            self.broker.set_presence(topic, user_id, False)
            await self.broker.settle()

    async def presence(self, topic: str) -> set[str]:
        """User ids subscribed to ``topic`` (in every process with Redis).

        Always includes this process's own joins and excludes its own leaves
        as soon as :meth:`subscribe`, :meth:`unsubscribe` or :meth:`detach`
        returned.

        Raises:
            BrokerUnavailable: the broker is down; :meth:`local_presence`
                still answers for this process.
        """
        return await self.broker.presence(topic)

    def local_presence(self, topic: str) -> set[str]:
        """User ids subscribed to ``topic`` in *this* process; no I/O, never raises.

        The degraded answer during a broker outage (with one process or the
        memory broker it equals :meth:`presence`)::

            try:
                users = await hub.presence(topic)
            except BrokerUnavailable:
                users = hub.local_presence(topic)  # this process only
        """
        return self._registry.present(topic)

    # Sending

    async def broadcast(self, message: str | bytes) -> None:
        """Send to every connection of every process.

        Raises:
            BrokerUnavailable: the broker is down; nothing is delivered, not
                even locally, and the failure is counted in
                ``stats.publish_failures``. Not retried: at most once.
        """
        text, payload = to_frame(message)
        try:
            await self.broker.publish_all(text, payload)
        except BrokerError:
            self.stats.publish_failures += 1
            raise

    async def send_to_user(self, user_id: str, message: str | bytes) -> int:
        """Send to every open connection of ``user_id``, in every process.

        Returns:
            How many connections of the user *this process* holds and
            delivered to (0: the user is not connected here). With a broker
            shared by several processes (Redis), connections in other
            processes also receive the message but are not counted: this
            process cannot know them without a round trip.

        Raises:
            BrokerUnavailable: as :meth:`broadcast`.
        """
        user_id = str(user_id)
        text, payload = to_frame(message)
        local = len(self._registry.users.get(user_id, ()))
        try:
            await self.broker.publish_user(user_id, text, payload)
        except BrokerError:
            self.stats.publish_failures += 1
            raise
        return local

    async def publish(self, topic: str, message: str | bytes) -> None:
        """Send to every subscriber of ``topic``, in every process.

        On a history topic the text is kept and sent as the ``data`` of a
        JSON envelope (a JSON string).

        Raises:
            BrokerUnavailable: as :meth:`broadcast`.
            TypeError: ``bytes`` on a history topic: its messages are JSON
                envelopes, which cannot carry binary data.
        """
        if self._history:
            config = self._history.match(topic)
            if config is not None:
                if not isinstance(message, str):
                    raise TypeError(
                        f"publish({topic!r}, <{type(message).__name__}>): topic {topic!r} keeps history, so its "
                        "messages are JSON envelopes and cannot be binary; publish a str or use publish_json"
                    )
                await self._publish_history(topic, encode_json(message).encode(), config)
                return
        text, payload = to_frame(message)
        try:
            await self.broker.publish_topic(topic, text, payload)
        except BrokerError:
            self.stats.publish_failures += 1
            raise

    async def broadcast_json(self, obj: Any) -> None:
        """:meth:`broadcast` ``obj`` encoded once as compact JSON (a message class instance gains its type field)."""
        await self.broadcast(encode_json(obj, self.message_key))

    async def send_json_to_user(self, user_id: str, obj: Any) -> int:
        """:meth:`send_to_user` ``obj`` encoded once as compact JSON (a message class instance gains its
        type field); returns the local count."""
        return await self.send_to_user(user_id, encode_json(obj, self.message_key))

    async def publish_json(self, topic: str, obj: Any) -> None:
        """:meth:`publish` ``obj`` encoded once as compact JSON (a message class instance gains its type field).

        On a history topic ``obj`` is the envelope's ``data``, as a JSON value.
        """
        if self._history:
            config = self._history.match(topic)
            if config is not None:
                await self._publish_history(topic, encode_json(obj, self.message_key).encode(), config)
                return
        await self.publish(topic, encode_json(obj, self.message_key))

    async def _publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> None:
        try:
            await self.broker.publish_history(topic, data, config)
        except BrokerError:
            self.stats.publish_failures += 1
            raise


class _HubSink:
    """The hub's face towards its broker: local delivery only."""

    __slots__ = ("_delivery", "_recovering", "_registry")

    def __init__(self, hub: Hub) -> None:
        self._registry = hub._registry
        self._delivery = hub._delivery
        self._recovering = hub._recoveries.waiting

    def deliver_all(self, text: bool, payload: bytes) -> None:
        self._delivery.send(self._registry.conns, text, payload)

    def deliver_user(self, user_id: str, text: bool, payload: bytes) -> None:
        conns = self._registry.users.get(user_id)
        if conns:
            self._delivery.send(conns, text, payload)

    def deliver_topic(self, topic: str, text: bool, payload: bytes) -> None:
        conns = self._registry.topics.get(topic)
        if conns:
            dispatched = self._registry.dispatched.get(topic)
            if dispatched:  # these subscribers' handlers take the message, not their clients
                for callback in list(dispatched.values()):
                    callback(text, payload)
                conns = conns - dispatched.keys()
                if not conns:
                    return
            self._delivery.send(conns, text, payload)

    def deliver_history(self, topic: str, offset: int, epoch: str, envelope: bytes) -> None:
        conns = self._registry.topics.get(topic)
        if not conns:
            return
        dispatched = self._registry.dispatched.get(topic)
        if dispatched:  # handlers subscribed with dispatch=True take the envelope, not their clients
            for callback in list(dispatched.values()):
                callback(True, envelope)
            conns = conns - dispatched.keys()
            if not conns:
                return
        waiting = self._recovering.get(topic)
        if waiting is None:
            self._delivery.send(conns, True, envelope)
            return
        live = [conn for conn in conns if conn not in waiting]
        if live:
            self._delivery.send(live, True, envelope)
        for buffer in waiting.values():
            buffer.add(offset, epoch, envelope)

    def presence_event(self, topic: str, event: PresenceEvent, user_id: str) -> None:
        for conn, callback in self._registry.listeners(topic):
            if conn.protocol.state is State.OPEN:
                self._delivery.spawn(_call_listener(conn, callback, topic, event, user_id))


async def _call_listener(
    conn: Connection, callback: PresenceCallback, topic: str, event: PresenceEvent, user_id: str
) -> None:
    """Run the presence callback of ``conn``; an error is logged, never propagated.

    A callback aimed at a connection that is closing is dropped quietly: when
    people leave a room, the others' callbacks race their own departure, and
    a send to a closing connection is the normal end of a chat, not an error
    (issue 10, item 4). A ``ConnectionClosed`` while ``conn`` is still open
    came from *another* connection the callback used: that is a real failure.
    """
    if conn.protocol.state is not State.OPEN:
        return
    try:
        await callback(topic, event, user_id)
    except ConnectionClosed as exc:
        if conn.protocol.state is State.OPEN:
            conn.logger.error("presence callback of %s for %r failed: another connection was "
                              "closed (use hub.send_to_user to reach a user)", Who(conn), topic,
                              exc_info=exc)
        else:
            conn.logger.debug("presence event for %r dropped: %s is closing", topic, Who(conn))
    except Exception as exc:
        conn.logger.error("presence callback of %s for %r failed", Who(conn), topic, exc_info=exc)
