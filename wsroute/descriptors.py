"""File descriptors: raise the soft limit at start-up, and keep EMFILE from flooding the log.

Every connection holds one descriptor. When the process runs out, asyncio's
accept loop logs ``socket.accept() out of system resource`` with a traceback
for every failed ``accept()`` — thousands of lines a second (measured: 6,874
tracebacks, 3 MB, in 10 s with ``ulimit -n 256`` and 400 clients) — and
retries on its own a moment later. uvloop logs nothing and retries too.

wsroute answers that twice:

* at start-up :func:`raise_nofile_limit` raises the soft ``RLIMIT_NOFILE`` to
  the hard limit, and the default ``max_connections`` is that limit minus a
  reserve, so the server answers 503 before ``accept()`` can fail;
* :class:`AcceptErrorThrottle` is the event loop's exception handler for
  those accept errors: at most one line per :data:`INTERVAL` seconds while
  they last, saying how many there were; every other error goes to the
  handler that was there before. asyncio keeps retrying the accept, so
  service resumes by itself when descriptors free up.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

__all__ = ["INTERVAL", "AcceptErrorThrottle", "install_accept_throttle", "raise_nofile_limit"]

logger = logging.getLogger("wsroute.server")

#: Seconds between two log lines about failing ``accept()`` calls.
INTERVAL = 10.0
#: The message asyncio's accept loop logs on EMFILE, ENFILE, ENOBUFS, ENOMEM.
ACCEPT_MESSAGE = "socket.accept() out of system resource"
#: Never ask for more descriptors than this, even when the hard limit is unlimited.
NOFILE_CEILING = 1 << 20

Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def raise_nofile_limit() -> tuple[int, int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit, and log both.

    Returns:
        ``(soft before, soft now, hard)``. When the kernel refuses, the soft
        limit stays as it was and a warning says so.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NOFILE_CEILING if hard == resource.RLIM_INFINITY else hard
    now = soft
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            now = target
        except (ValueError, OSError) as exc:
            logger.warning("file descriptors: could not raise the soft limit %d to %d: %s", soft, target, exc)
    logger.info("file descriptors: soft limit %d (was %d), hard limit %s", now, soft, _shown(hard))
    return soft, now, hard


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


class AcceptErrorThrottle:
    """An event-loop exception handler that logs accept errors at most once per interval.

    Args:
        previous: the handler to pass every other error to (``None``: the
            loop's default handler).
        interval: seconds between two lines.
        clock: ``time.monotonic`` (tests pass their own).
    """

    def __init__(
        self, previous: Handler | None, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.previous = previous
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self.next_line = float("-inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_MESSAGE:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = self.clock()
        if now < self.next_line:
            self.suppressed += 1
            return
        self.next_line = now + self.interval
        exc = context.get("exception")
        more = f" ({self.suppressed} more since the last line)" if self.suppressed else ""
        self.suppressed = 0
        logger.error(
            "accept() failed: %s%s; new connections wait until descriptors free up (this line repeats at most "
            "every %g s); raise the descriptor limit (ulimit -n) or lower --max-connections",
            exc if exc is not None else "out of system resource", more, self.interval,
        )


def install_accept_throttle(loop: asyncio.AbstractEventLoop, interval: float = INTERVAL) -> None:
    """Make ``loop`` log accept errors through an :class:`AcceptErrorThrottle` (once per loop)."""
    current = loop.get_exception_handler()
    if isinstance(current, AcceptErrorThrottle):
        return
    loop.set_exception_handler(AcceptErrorThrottle(current, interval))
