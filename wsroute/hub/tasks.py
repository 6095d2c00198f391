"""Stopping a broker's background tasks for sure.

``task.cancel()`` followed by ``gather`` can wait forever: a cancellation
that lands inside a redis-py command can come out of it as an ordinary
fault (a ``TimeoutError`` or ``RedisError``; on Python 3.11 an expiring
``asyncio.timeout()`` and a cancellation can race), which a reconnecting
loop catches, and the loop goes on (then sleeps). Seen here:
``RedisBroker.stop()`` hung in about one run in seven under load, with the
heartbeat task "cancelling" but asleep in its ``sleep`` after a caught fault. :func:`cancel_and_wait` cancels
again until every task is done, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

__all__ = ["cancel_and_wait"]

logger = logging.getLogger("wsroute.hub")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]], *, attempts: int = 10,
                          wait: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until they are done, cancelling again if one survives.

    Args:
        attempts: how many times to cancel the tasks still running.
        wait: seconds to wait after each cancellation.

    A task still running after every attempt is logged and left behind
    rather than hanging the caller (a shutdown).
    """
    pending = [task for task in tasks if not task.done()]
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=wait)
        pending = [task for task in pending if not task.done()]
    for task in pending:
        logger.warning("background task %s ignored %d cancellations; leaving it", task.get_name(), attempts)
