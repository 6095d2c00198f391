"""The event-loop lag monitor behind ``wsroute run --debug``.

The websockets FAQ's "why can only one client connect at a time?" is a
handler that blocks the event loop. This monitor says so while it happens,
and names the route whose connection task was running.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

__all__ = ["LagMonitor"]

logger = logging.getLogger("wsroute.server")


class LagMonitor:
    """Warn when the event loop is blocked, naming the route whose task blocks it.

    The loop beats every ``threshold / 2`` seconds (one ``call_later``). A
    daemon thread wakes at the same pace; when the last beat is older than
    ``threshold`` the loop is stuck in some callback, so the thread reads
    ``asyncio.current_task(loop)`` — connection tasks are named
    ``wsroute <route>`` — and the loop thread's current frame, and warns
    *while* the loop is still blocked. When the loop beats again it reports
    how long the block lasted. Cost when nothing blocks: one timer callback
    per half threshold and one thread wake-up; works with uvloop too.

    ``lag`` is the lateness of the last beat, in seconds (0.0 when the loop
    ran the beat on time): what a metrics plugin exports as the event-loop
    lag. A monitor made with ``warn=False`` only measures (no thread, no log
    lines), so a metrics plugin can run one without ``--debug``.

    Args:
        loop: the event loop to watch.
        threshold: seconds of blocked loop that count as blocked (> 0).
        warn: log while the loop is blocked (the ``--debug`` behaviour).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float = 0.1, *, warn: bool = True) -> None:
        self.loop = loop
        self.warn = warn
        self.lag = 0.0
        self.threshold = threshold
        self.interval = threshold / 2
        self._last = time.monotonic()
        self._blocked_by: str | None = None
        self._stopped = threading.Event()
        self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="wsroute-lag-monitor", daemon=True)
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._beat()
        if self.warn:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()

    def _beat(self) -> None:
        now = time.monotonic()
        if self._timer is not None:
            self.lag = max(0.0, now - self._last - self.interval)
        culprit, self._blocked_by = self._blocked_by, None
        if culprit is not None:
            logger.warning("event loop was blocked for %.3f s by %s", now - self._last - self.interval, culprit)
        self._last = now
        self._timer = self.loop.call_later(self.interval, self._beat)

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            last = self._last
            late = time.monotonic() - last - self.interval
            if late < self.threshold or self._blocked_by is not None:
                continue
            culprit = self._culprit()
            if last != self._last:  # the loop beat meanwhile: it was a short stall
                continue
            self._blocked_by = culprit
            logger.warning(
                "event loop blocked for more than %.3f s by %s; one slow handler stops every connection: "
                "use await, or run blocking code with asyncio.to_thread()",
                self.threshold,
                culprit,
            )

    def _culprit(self) -> str:
        task = asyncio.current_task(self.loop)
        frame = sys._current_frames().get(self._loop_thread)
        where = f" at {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}()" if frame else ""
        if task is None:
            return f"a callback outside any task{where}"
        name = task.get_name()
        if name.startswith("wsroute "):
            return f"route {name.removeprefix('wsroute ')}{where}"
        return f"task {name!r}{where}"
