"""cancel_and_wait stops a task that swallows its first cancellation, as redis-py can make one do."""

from __future__ import annotations

import asyncio

import pytest

from wsroute.hub.tasks import cancel_and_wait


@pytest.mark.asyncio
async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    """A loop that turns one CancelledError into a fault and sleeps on is still stopped, and its loop ran twice."""
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if rounds == 1:
                    continue  # like a TimeoutError caught as a Redis fault
                raise

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await cancel_and_wait([task], wait=0.05)
    assert task.cancelled()
    assert rounds == 2


@pytest.mark.asyncio
async def test_a_task_that_never_stops_is_left_with_a_warning(caplog) -> None:  # type: ignore[no-untyped-def]
    """A task that ignores every cancellation is logged and left behind after the bounded attempts."""

    deafness = True

    async def deaf() -> None:
        while deafness:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.get_running_loop().create_task(deaf(), name="deaf")
    await asyncio.sleep(0)
    await cancel_and_wait([task], attempts=3, wait=0.01)
    assert not task.done()
    assert "background task deaf ignored 3 cancellations" in caplog.text
    deafness = False  # let it end, so the test leaves no task behind
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.done()
