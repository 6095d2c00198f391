"""One event-loop timer for a per-connection timeout, instead of one timer (or task) per connection.

websockets arms a timer per connection for its handshake deadline
(``open_timeout``) and runs a task per connection for keepalive pings
(``ping_interval``). Each costs a timer-heap entry, a handle and, for the
task, a coroutine frame — created and cancelled again on every connection,
however short. Most connections never reach either deadline.

A :class:`TimerWheel` keeps connections in :data:`SLOTS` sets instead. One
timer fires every ``period / SLOTS`` seconds (a *tick*) and hands the next
set to :meth:`TimerWheel.visit`; a connection added now is in the set
visited last, one full period from the latest visit. Adding is a
``set.add``, forgetting a ``set.discard``: the slot is returned by
:meth:`TimerWheel.add` and kept on the connection. The price is precision:
a deadline lands within one tick (``period / SLOTS``) of its exact time,
which is what the subclasses document. The timer starts on the first
:meth:`~TimerWheel.add` (on that connection's event loop) and stops by itself
when every slot is empty, so an idle server has no timer at all. Each
visit comes at least a tick after the previous one, so a deadline is never
early, only late by up to a tick (or by however long the loop was blocked).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Generic, TypeGuard, TypeVar

__all__ = ["SLOTS", "TimerWheel"]

#: Ticks per period: a deadline is at most ``period / SLOTS`` from exact.
SLOTS = 16

Item = TypeVar("Item")


class TimerWheel(Generic[Item]):
    """Sets of items visited in turn, one every ``period / slots`` seconds.

    Args:
        slots: how many sets; an item added now is visited ``slots`` ticks
            after the latest visit.

    Subclasses define :meth:`visit` (what to do with a due set) and choose
    the period when they :meth:`start`.
    """

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots: list[set[Item]] = [set() for _ in range(slots)]
        self._index = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tick = 0.0
        self._next = 0.0

    def __len__(self) -> int:
        """How many items the slots hold now."""
        return sum(len(slot) for slot in self.slots)

    @property
    def running(self) -> bool:
        """Whether the timer is armed."""
        return self._timer is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the timer runs on, while it runs."""
        return self._loop

    def start(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        """Arm the timer on ``loop``, visiting the next slot every ``tick`` seconds."""
        self._loop, self._tick = loop, tick
        self._next = loop.time() + tick
        self._timer = loop.call_at(self._next, self._sweep)

    def add(self, item: Item) -> set[Item]:
        """Put ``item`` in the slot visited last; return that slot (``slot.discard(item)`` forgets it)."""
        slot = self.slots[self._index]
        slot.add(item)
        return slot

    def stop(self) -> None:
        """Disarm the timer and forget every item."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop = None
        for slot in self.slots:
            slot.clear()

    def forget_closed_loop(self) -> None:
        """Start over if the loop the timer was armed on is closed (an app served again on a new loop)."""
        if self._loop is not None and self._loop.is_closed():
            self._timer = self._loop = None  # its handle died with its loop: nothing to cancel
            for slot in self.slots:
                slot.clear()

    def visit(self, slot: set[Item]) -> None:
        """Handle the items of a slot whose turn came (run by the timer)."""
        raise NotImplementedError

    def _sweep(self) -> None:
        """Visit the next slot; re-arm first (a fixed grid: no drift), or stop when nothing is left."""
        loop = self._loop
        assert loop is not None
        self._index = (self._index + 1) % len(self.slots)
        try:
            self.visit(self.slots[self._index])
        finally:
            if self._timer is not None:  # visit() did not stop the wheel
                if self.idle():
                    self._timer = self._loop = None
                else:
                    # At least a tick after this visit, however late it ran: a
                    # deadline is never early, and a blocked loop skips rather than bursts.
                    self._next = max(self._next, loop.time()) + self._tick
                    self._timer = loop.call_at(self._next, self._sweep)

    def idle(self) -> bool:
        """Whether the timer may stop: nothing left to visit (subclasses add their own work)."""
        return not any(self.slots)


def positive_seconds(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is a finite number of seconds > 0 (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
