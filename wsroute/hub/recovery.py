"""Subscribing to a history topic ``since`` a position: replay, then live, no gap, no duplicate.

The order of operations is what makes it exact (as in Centrifugo):

1. the connection joins the topic locally, marked *recovering*: live
   messages for it are buffered (:class:`Buffer`), not sent;
2. the broker subscription is confirmed, so every later publication
   reaches this process;
3. the topic's position is read, then the history after ``since`` up to
   that position, page by page; each message is sent with ``await
   conn.send()`` (the client's own pace, no slow-consumer policy);
4. the buffered live messages are sent, skipping offsets already sent;
5. when the buffer is empty -- checked with no ``await`` in between --
   the mark is removed and live messages flow through the normal fan-out.

Any message published after step 2 is in the buffer, any published before
step 3 is in the history read: together they cover every offset, and
offsets say which ones were sent already. The buffer is bounded by
``max(size, max_queue)``: a client that cannot take its replay while more
new messages arrive is closed with 1013 at once, like any slow consumer
(the replay's pending ``send`` then fails), and recovers from its last
position when it reconnects.

During a broker outage nothing can be read: the connection stays
subscribed, like a plain topic's (live messages resume when the broker is
back), and the :class:`~.history.Recovery` says ``recovered=False``.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..errors import BrokerError
from .broker import Broker
from .delivery import Delivery
from .history import HistoryConfig, Position, Recovery
from .who import Who

__all__ = ["Buffer", "Recoveries"]

#: Messages read from the broker per round trip while replaying.
PAGE = 500


class Buffer:
    """Live messages that arrived for one connection while it was recovering."""

    __slots__ = ("items", "limit", "on_overflow", "overflow")

    def __init__(self, limit: int, on_overflow: Callable[[], None]) -> None:
        self.items: collections.deque[tuple[int, str, bytes]] = collections.deque()
        self.limit = limit
        self.overflow = False
        self.on_overflow = on_overflow

    def add(self, offset: int, epoch: str, frame: bytes) -> None:
        """Keep a live message for later; past ``limit`` the connection is too slow: close it."""
        if self.overflow:
            return
        if len(self.items) >= self.limit:
            self.overflow = True
            self.items.clear()
            self.on_overflow()
            return
        self.items.append((offset, epoch, frame))


class Recoveries:
    """The connections currently recovering, per topic, and the replay itself.

    Args:
        delivery: the hub's fan-out: its ``max_queue`` (buffers hold at
            least that many), its 1013 close for slow consumers, its stats.
    """

    __slots__ = ("_delivery", "waiting")

    def __init__(self, delivery: Delivery) -> None:
        self.waiting: dict[str, dict[Any, Buffer]] = {}
        self._delivery = delivery

    def start(self, conn: Any, topic: str, config: HistoryConfig) -> Buffer:
        """Mark ``conn`` as recovering ``topic``: its live messages go to the returned buffer."""
        delivery = self._delivery

        def too_slow() -> None:
            delivery.stats.slow_disconnects += 1
            delivery.close_slow(conn, f"more than {buffer.limit} new messages while recovering {topic!r}")

        buffer = Buffer(max(config.size, delivery.max_queue), too_slow)
        self.waiting.setdefault(topic, {})[conn] = buffer
        return buffer

    def end(self, conn: Any, topic: str) -> None:
        """Unmark ``conn``: live messages flow normally again."""
        buffers = self.waiting.get(topic)
        if buffers is not None:
            buffers.pop(conn, None)
            if not buffers:
                del self.waiting[topic]

    async def replay(
        self, broker: Broker, conn: Any, topic: str, since: Position | None, config: HistoryConfig,
        buffer: Buffer,
    ) -> Recovery:
        """Steps 3 to 5 of the module docstring; returns what was done.

        Raises:
            ConnectionClosed: the client left, or was closed for being slow.
        """
        try:
            top = (await broker.read_history(topic, None, 0, config)).position
        except BrokerError as exc:
            return await self._degrade(conn, topic, buffer, since, 0, exc)
        last = top
        missed = 0
        recovered = since is not None and since.epoch == top.epoch and 0 <= top.offset - since.offset <= config.size
        if recovered and since is not None and since.offset < top.offset:
            last = since
            while last.offset < top.offset:
                try:
                    page = await broker.read_history(topic, last.offset, min(PAGE, top.offset - last.offset), config)
                except BrokerError as exc:
                    return await self._degrade(conn, topic, buffer, last, missed, exc)
                entries = page.entries
                if page.position.epoch != since.epoch or not entries or entries[0][0] != last.offset + 1:
                    if missed:  # lost under our feet after a partial replay: too slow
                        await self._too_slow(conn, topic)
                    recovered, last = False, top
                    break
                for offset, frame in entries:
                    if offset > top.offset:
                        break
                    await conn.send(frame, text=True)
                    missed += 1
                    last = Position(offset, top.epoch)
                if buffer.overflow:
                    await self._too_slow(conn, topic)
        last = await self._drain(conn, topic, buffer, last)
        return Recovery(recovered, missed, last)

    async def _degrade(
        self, conn: Any, topic: str, buffer: Buffer, last: Position | None, missed: int, exc: BrokerError
    ) -> Recovery:
        """The broker is down: stay subscribed (live resumes when it is back), report ``recovered=False``.

        The position is the last one the client has (``since``, or the last
        message replayed); with neither it is ``Position(0, "")``, whose
        empty epoch matches no real one.
        """
        conn.logger.debug("recovery of %r for %s skipped: %s", topic, Who(conn), exc)
        position = Position(0, "") if last is None else last
        position = await self._drain(conn, topic, buffer, position)
        return Recovery(False, missed, position)

    async def _drain(self, conn: Any, topic: str, buffer: Buffer, last: Position) -> Position:
        """Send the buffered live messages after ``last``; unmark when empty (no await in between)."""
        items = buffer.items
        while True:
            if buffer.overflow:
                await self._too_slow(conn, topic)
            if not items:
                self.end(conn, topic)
                return last
            offset, epoch, frame = items.popleft()
            if epoch == last.epoch and offset <= last.offset:
                continue  # already replayed from history
            await conn.send(frame, text=True)
            last = Position(offset, epoch)

    async def _too_slow(self, conn: Any, topic: str) -> None:
        """The connection is being closed with 1013 (overflow) or must be: wait for it, raise its ConnectionClosed."""
        buffer = self.waiting.get(topic, {}).get(conn)
        if buffer is not None and not buffer.overflow:  # else its overflow already closes it
            buffer.overflow = True
            self._delivery.stats.slow_disconnects += 1
            self._delivery.close_slow(conn, f"its history of {topic!r} was trimmed during its replay")
        await conn.wait_closed()
        exc = conn.protocol.close_exc
        raise exc if isinstance(exc, ConnectionClosed) else ConnectionClosed(None, None)
