"""The in-process broker: the default when there is one server process.

Publishing calls the hub's sink synchronously, so ``await hub.publish()``
has delivered (or queued) the frame to every local subscriber when it
returns, with no task and no copy. Presence is a dict of sets; history is
a ring buffer per topic (:class:`~.history.MemoryHistory`).
"""

from __future__ import annotations

from .broker import Broker, Sink
from .history import HistoryConfig, HistoryPage, MemoryHistory, Position
from .members import set_member

__all__ = ["MemoryBroker"]


class MemoryBroker(Broker):
    """A broker for a single process; nothing leaves it."""

    def __init__(self) -> None:
        self._sink: Sink | None = None
        self._present: dict[str, set[str]] = {}
        self._history = MemoryHistory()

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
        """Forget the sink, presence and history."""
        self._sink = None
        self._present.clear()
        self._history.clear()

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
        set_member(self._present, topic, user_id, present)
        if self._sink is not None:
            self._sink.presence_event(topic, "join" if present else "leave", user_id)

    async def presence(self, topic: str) -> set[str]:
        """Return a copy of the topic's user ids."""
        return set(self._present.get(topic, ()))

    async def publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> Position:
        """Append to the topic's ring buffer and deliver the envelope, now."""
        sink = self._get_sink()
        offset, epoch, frame = self._history.append(topic, data, config)
        sink.deliver_history(topic, offset, epoch, frame)
        return Position(offset, epoch)

    async def read_history(self, topic: str, since: int | None, limit: int, config: HistoryConfig) -> HistoryPage:
        """Read the topic's ring buffer (see :meth:`Broker.read_history`)."""
        return self._history.read(topic, since, limit, config)
