"""A time unit for tests that scales on slow machines (websockets' tests/utils.py).

Every wait in a test is a multiple of :data:`MS`, as in websockets'
``tests/utils.py``: on a slow or loaded CI machine set
``WSROUTE_TESTS_TIMEOUT_FACTOR=5`` and every timeout grows five-fold instead
of flaking. Nothing asserts on durations; ``MS`` only bounds waits.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable

__all__ = ["MS", "TIMEOUT_FACTOR", "timeout", "until"]

#: Multiplier for every wait; from ``WSROUTE_TESTS_TIMEOUT_FACTOR`` (default 1).
TIMEOUT_FACTOR = float(os.environ.get("WSROUTE_TESTS_TIMEOUT_FACTOR", "1"))

#: One millisecond, scaled by :data:`TIMEOUT_FACTOR`; larger under a tracer
#: (coverage, a debugger) which slows every line, and never below the
#: monotonic clock's resolution.
MS = 0.001 * TIMEOUT_FACTOR
if sys.gettrace() is not None:  # pragma: no cover - only under coverage/debuggers
    MS *= 2
MS = max(MS, 2.5 * time.get_clock_info("monotonic").resolution)


def timeout(seconds: float) -> float:
    """``seconds`` scaled by the timeout factor (``timeout(5)`` is ``5000 * MS``)."""
    return seconds * 1000 * MS


async def until(predicate: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait until ``predicate()`` is true, polling every ``5 * MS``, for at most ``timeout(seconds)``.

    Raises:
        AssertionError: the predicate stayed false (the wait is bounded).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout(seconds)
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition still false after {timeout(seconds):.2f} s")
        await asyncio.sleep(5 * MS)
