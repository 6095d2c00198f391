"""Channel subscriptions shared by the Redis brokers: ref counts and waiting for the ack.

Both :class:`~wsroute.hub.redis.RedisBroker` and
:class:`~wsroute.hub.cluster.ClusterBroker` hold one Redis subscription per
channel however many local connections want it, and ``subscribe()`` returns
once Redis has acknowledged it (or after a bounded wait, when the
subscription applies later). These helpers are that logic, once.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["add_ref", "drop_ref", "wait_for_ack"]


def add_ref(refs: dict[str, int], channel: str) -> bool:
    """Count one more subscriber of ``channel``; True when it is the first."""
    count = refs.get(channel, 0)
    refs[channel] = count + 1
    return count == 0


def drop_ref(refs: dict[str, int], channel: str) -> bool:
    """Count one subscriber less; True when it was the last (the channel is forgotten)."""
    count = refs.get(channel, 0) - 1
    if count > 0:
        refs[channel] = count
        return False
    refs.pop(channel, None)
    return True


async def wait_for_ack(
    waiters: dict[str, asyncio.Future[None]], channel: str, timeout: float, command: str, logger: logging.Logger
) -> None:
    """Wait up to ``timeout`` seconds for Redis to acknowledge ``command`` on ``channel``.

    Every subscriber of the channel shares one future, which the broker's
    reader resolves on the ack. Past the timeout a warning is logged and the
    subscription applies when the ack comes.
    """
    waiter = waiters.get(channel)
    if waiter is None:
        waiter = waiters[channel] = asyncio.get_running_loop().create_future()
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(waiter)
    except TimeoutError:
        logger.warning("no %s ack for %s yet; it will apply later", command, channel)
