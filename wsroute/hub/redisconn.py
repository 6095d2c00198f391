"""Connecting to Redis: the optional import, the client, errors that say what to do.

Shared by :class:`~wsroute.hub.redis.RedisBroker` and
:class:`~wsroute.hub.publisher.Publisher`. ``redis`` is an optional extra;
importing this module without it raises an :class:`ImportError` that says
``pip install 'wsroute[redis]'`` -- and only the Redis features import it.
"""

from __future__ import annotations

import asyncio
import urllib.parse

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Redis broker needs the redis package: pip install 'wsroute[redis]'"
    ) from exc


from ..errors import BrokerUnavailable

__all__ = ["FAULTS", "Redis", "connect_redis", "redact", "unavailable"]

#: What a dead or unreachable Redis raises: redis-py errors and socket errors.
FAULTS = (RedisError, OSError, asyncio.TimeoutError)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def unavailable(url: str, exc: BaseException, doing: str) -> BrokerUnavailable:
    """A :class:`BrokerUnavailable` that names the URL and the fix."""
    return BrokerUnavailable(
        f"Redis at {redact(url)} is unavailable ({doing}: {exc or type(exc).__name__}); "
        "start Redis or pass the right --broker URL"
    )


async def connect_redis(url: str, *, timeout: float, wait: bool) -> Redis:
    """A client for ``url`` whose first PING succeeded.

    redis-py's own retries are off: the broker decides when to retry, so a
    publish during an outage fails at once instead of blocking the handler.

    Args:
        timeout: seconds to keep trying when ``wait`` is true.
        wait: retry until ``timeout`` instead of failing at the first error.

    Raises:
        BrokerUnavailable: Redis could not be reached.
    """
    client = Redis.from_url(
        url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=min(timeout, 5.0),
        socket_timeout=5.0,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.ping()
            return client
        except FAULTS as exc:
            if not wait or loop.time() >= deadline:
                await client.aclose()
                raise unavailable(url, exc, "connecting") from exc
            await asyncio.sleep(0.2)
