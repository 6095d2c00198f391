"""The in-process broker: the default when there is one server process.

Publishing calls the hub's sink synchronously, so ``await hub.publish()``
has delivered (or queued) the frame to every local subscriber when it
returns, with no task and no copy. Presence is a dict of sets.
"""

from __future__ import annotations

from .broker import Broker, Sink

__all__ = ["MemoryBroker"]


class MemoryBroker(Broker):
    """A broker for a single process; nothing leaves it."""

    def __init__(self) -> None:
        self._sink: Sink | None = None
        self._present: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return "MemoryBroker()"

    def _get_sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("MemoryBroker used before Hub.start()")
        return self._sink

    async def start(self, sink: Sink) -> None:
        """Remember the sink; there is nothing to connect to."""
        self._sink = sink

    async def stop(self) -> None:
        """Forget the sink and presence."""
        self._sink = None
        self._present.clear()

    async def publish_all(self, text: bool, payload: bytes) -> None:
        """Deliver to every local connection, now."""
        self._get_sink().deliver_all(text, payload)

    async def publish_user(self, user_id: str, text: bool, payload: bytes) -> None:
        """Deliver to the local connections of ``user_id``, now."""
        self._get_sink().deliver_user(user_id, text, payload)

    async def publish_topic(self, topic: str, text: bool, payload: bytes) -> None:
        """Deliver to the local subscribers of ``topic``, now."""
        self._get_sink().deliver_topic(topic, text, payload)

    async def subscribe(self, topic: str) -> None:
        """Nothing to do: the hub's topic map is the subscription."""

    def unsubscribe(self, topic: str) -> None:
        """Nothing to do: the hub's topic map is the subscription."""

    def set_presence(self, topic: str, user_id: str, present: bool) -> None:
        """Update the topic's set and emit the join/leave event."""
        users = self._present.get(topic)
        if present:
            if users is None:
                users = self._present[topic] = set()
            users.add(user_id)
        elif users is not None:
            users.discard(user_id)
            if not users:
                del self._present[topic]
        if self._sink is not None:
            self._sink.presence_event(topic, "join" if present else "leave", user_id)

    async def presence(self, topic: str) -> set[str]:
        """Return a copy of the topic's user ids."""
        return set(self._present.get(topic, ()))
