"""Connecting to Redis: the optional import, the client, errors that say what to do.

Shared by :class:`~wsroute.hub.redis.RedisBroker` and
:class:`~wsroute.hub.publisher.Publisher`. ``redis`` is an optional extra;
importing this module without it raises an :class:`ImportError` that says
``pip install 'wsroute[redis]'`` -- and only the Redis features import it.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Redis broker needs the redis package: pip install 'wsroute[redis]'"
    ) from exc

try:  # redis-py >= 7: maintenance push notifications (Redis Enterprise / Cloud)
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # pragma: no cover - older redis-py has no such option
    MaintNotificationsConfig = None  # type: ignore[misc,assignment]


from ..errors import BrokerUnavailable

__all__ = ["FAULTS", "Redis", "connect_redis", "idempotent", "publication", "redact", "unavailable"]

logger = logging.getLogger("wsroute.hub.redis")

T = TypeVar("T")

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


async def idempotent(command: Callable[[], Awaitable[T]]) -> T:
    """Run a command that is safe to repeat; retry it once on a closed connection.

    A pooled connection can die between redis-py's check when it is handed
    out and the command (Redis restarted, or closed an idle client): the
    command then fails with ``ConnectionError`` although Redis is up, and a
    second attempt on a fresh connection succeeds. Only for commands whose
    repetition changes nothing (reads, PING, HSET/HDEL/EXPIRE of the same
    values). Never for PUBLISH: a reply lost after Redis executed it would
    deliver the message twice (see :meth:`~.redisbase.RedisBrokerBase._command`).

    Raises:
        whatever the second attempt raises (one of :data:`FAULTS`).
    """
    try:
        return await command()
    except RedisConnectionError as exc:
        logger.debug("Redis connection closed under a command (%s); retrying once", exc)
        return await command()


def publication(command: str, channel: str, data: bytes) -> Callable[[Redis], Awaitable[int]]:
    """``command`` (``PUBLISH`` or ``SPUBLISH``) of ``data`` on ``channel``, to send on a client given later.

    The brokers and :class:`~.publisher.Publisher` pick the client (on a
    cluster: the channel's owner) and never retry it (see :func:`idempotent`).
    The coroutine returns how many subscribers (processes) received it.
    """

    async def send(client: Redis) -> int:
        return int(await client.execute_command(command, channel, data))  # type: ignore[no-untyped-call]

    return send


def client_options(timeout: float) -> dict[str, Any]:
    """redis-py client options shared by the broker and :class:`Publisher`.

    * ``retry``: redis-py's own retries are off, so a PUBLISH is never sent
      twice and a command during an outage fails at once instead of
      blocking the handler; :func:`idempotent` retries what is safe.
    * ``maint_notifications_config``: off. With redis-py 8's default
      (``"auto"`` on RESP3 over TCP) the pool skips its check that replaces
      a pooled connection the server closed, so the first command after a
      Redis restart failed with "Connection closed by server"
      (redis/redis-py#4260). wsroute does not use maintenance notifications.
    """
    options: dict[str, Any] = {
        "retry": Retry(NoBackoff(), 0),
        "socket_connect_timeout": min(timeout, 5.0),
        "socket_timeout": 5.0,
    }
    if MaintNotificationsConfig is not None:
        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    return options


async def connect_redis(url: str, *, timeout: float, wait: bool) -> Redis:
    """A client for ``url`` whose first PING succeeded (options: :func:`client_options`).

    Args:
        timeout: seconds to keep trying when ``wait`` is true.
        wait: retry until ``timeout`` instead of failing at the first error.

    Raises:
        BrokerUnavailable: Redis could not be reached.
    """
    client = Redis.from_url(url, **client_options(timeout))
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
