"""Who is connected to this process: connections, users, topics, presence.

Pure bookkeeping, no I/O, so it is tested without sockets. Every map is
keyed so that attaching is one set add (plus one dict add for a known user)
and detaching removes the connection everywhere in time proportional to its
own subscriptions; empty sets are deleted so that churn leaves nothing
behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .broker import PresenceEvent

__all__ = ["MessageCallback", "PresenceCallback", "Registry"]

#: ``async (topic, "join" | "leave", user_id) -> None``
PresenceCallback = Callable[[str, PresenceEvent, str], Awaitable[None]]

#: ``(text, payload) -> None``: takes a topic's messages instead of the client (must not block).
MessageCallback = Callable[[bool, bytes], None]


class Registry:
    """Local maps of connections; the hub's single source of truth.

    Connections are any hashable objects here (websockets connections in
    practice); the user id is read once, at attach time, from
    ``conn.ctx.user_id``.
    """

    __slots__ = ("_listeners", "_present", "_subs", "_user_of", "conns", "dispatched", "topics", "users")

    def __init__(self) -> None:
        self.conns: set[Any] = set()
        self.users: dict[str, set[Any]] = {}
        self.topics: dict[str, set[Any]] = {}
        self._user_of: dict[Any, str] = {}
        self._subs: dict[Any, set[str]] = {}
        self._present: dict[str, dict[str, int]] = {}
        self._listeners: dict[str, dict[Any, PresenceCallback]] = {}
        #: topic → {conn: callback} for subscriptions whose messages go to the handler, not the client.
        self.dispatched: dict[str, dict[Any, MessageCallback]] = {}

    def __len__(self) -> int:
        return len(self.conns)

    def is_empty(self) -> bool:
        """True when no map holds anything: the check for leaks."""
        return not (
            self.conns or self.users or self.topics or self._user_of
            or self._subs or self._present or self._listeners or self.dispatched
        )

    def add(self, conn: Any) -> None:
        """Register a connection and, if it has one, its user id."""
        self.conns.add(conn)
        user_id = getattr(getattr(conn, "ctx", None), "user_id", None)
        if user_id is not None:
            user_id = str(user_id)
            self._user_of[conn] = user_id
            users = self.users.get(user_id)
            if users is None:
                self.users[user_id] = {conn}
            else:
                users.add(conn)

    def user_of(self, conn: Any) -> str | None:
        """The user id recorded at attach time, or None."""
        return self._user_of.get(conn)

    def remove(self, conn: Any) -> list[tuple[str, str | None]]:
        """Forget a connection everywhere.

        Returns:
            For each topic it was subscribed to: ``(topic, user_id)`` where
            ``user_id`` is its user when that user has no other connection in
            the topic now (absent from it), else None.
        """
        self.conns.discard(conn)
        user_id = self._user_of.pop(conn, None)
        if user_id is not None:
            users = self.users[user_id]
            users.discard(conn)
            if not users:
                del self.users[user_id]
        topics = self._subs.pop(conn, None)
        if not topics:
            return []
        return [(topic, user_id if self._leave(conn, topic, user_id) else None) for topic in topics]

    def topics_of(self, conn: Any) -> set[str] | frozenset[str]:
        """The topics ``conn`` is subscribed to (do not modify)."""
        return self._subs.get(conn, frozenset())

    def subscribe(
        self, conn: Any, topic: str, on_presence: PresenceCallback | None, on_message: MessageCallback | None = None
    ) -> tuple[bool, bool]:
        """Add ``conn`` to ``topic``; with ``on_message``, its messages go to that callback instead.

        Returns:
            ``(new, user_joined)``: whether the connection was not subscribed
            yet, and whether its user just became present in the topic.
        """
        if on_presence is not None:
            self._listeners.setdefault(topic, {})[conn] = on_presence
        if on_message is not None:
            self.dispatched.setdefault(topic, {})[conn] = on_message
        subs = self._subs.get(conn)
        if subs is None:
            subs = self._subs[conn] = set()
        elif topic in subs:
            return False, False
        subs.add(topic)
        members = self.topics.get(topic)
        if members is None:
            self.topics[topic] = {conn}
        else:
            members.add(conn)
        user_id = self._user_of.get(conn)
        if user_id is None:
            return True, False
        counts = self._present.setdefault(topic, {})
        count = counts.get(user_id, 0)
        counts[user_id] = count + 1
        return True, count == 0

    def unsubscribe(self, conn: Any, topic: str) -> tuple[bool, bool]:
        """Remove ``conn`` from ``topic``.

        Returns:
            ``(was_subscribed, user_left)``.
        """
        subs = self._subs.get(conn)
        if subs is None or topic not in subs:
            return False, False
        subs.discard(topic)
        if not subs:
            del self._subs[conn]
        return True, self._leave(conn, topic, self._user_of.get(conn))

    def _leave(self, conn: Any, topic: str, user_id: str | None) -> bool:
        members = self.topics[topic]
        members.discard(conn)
        if not members:
            del self.topics[topic]
        for callbacks in (self._listeners, self.dispatched):
            registered = callbacks.get(topic)
            if registered is not None:
                registered.pop(conn, None)
                if not registered:
                    del callbacks[topic]
        if user_id is None:
            return False
        counts = self._present[topic]
        count = counts[user_id] - 1
        if count:
            counts[user_id] = count
            return False
        del counts[user_id]
        if not counts:
            del self._present[topic]
        return True

    def present(self, topic: str) -> set[str]:
        """The user ids with a connection subscribed to ``topic`` here."""
        counts = self._present.get(topic)
        return set() if counts is None else set(counts)

    def listeners(self, topic: str) -> list[tuple[Any, PresenceCallback]]:
        """The ``(connection, callback)`` pairs listening to ``topic``'s presence."""
        listeners = self._listeners.get(topic)
        return [] if listeners is None else list(listeners.items())
