"""Publish to a running wsroute deployment from anywhere: a script, a web app.

A :class:`Publisher` speaks the Redis broker's wire format (see
:mod:`.wire`) without a server or a hub::

    async with wsroute.hub.Publisher("redis://127.0.0.1:6379/0") as pub:
        await pub.publish("room:1", "hi")
        await pub.send_json_to_user("alice", {"type": "notice"})
        await pub.broadcast(b"\\x00binary")

Every process of the deployment delivers the message to its own
connections, exactly as if a handler had called ``app.hub``. Topics with
history must be declared here too, as on the servers' hub, so that their
messages get offsets and are kept (docs/history.md)::

    pub = wsroute.hub.Publisher("redis://127.0.0.1:6379/0")
    pub.history("room:*", size=1000, ttl=300)
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import BrokerUnavailable
from ..jsonutil import encode_json
from .history import HistoryConfig, HistoryRules
from .wire import Channels, encode_frame, encode_user_frame, to_frame

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .redishistory import RedisHistory

__all__ = ["Publisher"]


class Publisher:
    """A publish-only client of the Redis broker.

    Args:
        url: the same URL the servers use with ``--broker``.
        prefix: the same prefix as the servers' broker.
        connect_timeout: seconds to wait for Redis at :meth:`connect`.
        wait: keep retrying for ``connect_timeout`` instead of failing at once.
        message_key: the type field the ``*_json`` methods add to message
            class instances (the servers' ``App(message_key=...)``).
    """

    def __init__(
        self, url: str, *, prefix: str = "wsroute", connect_timeout: float = 5.0,
        wait: bool = False, message_key: str = "type",
    ) -> None:
        self.url = url
        self.message_key = message_key
        self.channels = Channels(prefix)
        self.connect_timeout = connect_timeout
        self.wait = wait
        self._client: Redis | None = None
        self._history = HistoryRules()
        self._kept: RedisHistory | None = None

    def history(self, pattern: str, size: int = 1000, ttl: float = 300) -> None:
        """Declare history topics as the servers' ``app.hub.history()`` does (same arguments).

        Raises:
            ConfigurationError: a bad glob, size or ttl.
        """
        self._history.add(pattern, HistoryConfig(size, ttl))

    async def connect(self) -> None:
        """Open the connection (done by ``async with``).

        Raises:
            BrokerUnavailable: Redis cannot be reached.
            ImportError: the ``redis`` package is missing.
        """
        from .redisconn import connect_redis
        from .redishistory import RedisHistory

        self._client = await connect_redis(self.url, timeout=self.connect_timeout,
                                           wait=self.wait)
        self._kept = RedisHistory(self._client, self.channels)

    async def aclose(self) -> None:
        """Close the connection."""
        client, self._client = self._client, None
        self._kept = None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Publisher:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _publish(self, channel: str, data: bytes) -> int:
        from .redisconn import FAULTS, unavailable

        if self._client is None:
            raise BrokerUnavailable("Publisher is not connected: use `async with Publisher(...)`")
        try:
            return int(await self._client.publish(channel, data))
        except FAULTS as exc:
            raise unavailable(self.url, exc, "publishing") from exc

    async def broadcast(self, message: str | bytes) -> int:
        """Send to every connection; returns how many processes received it."""
        return await self._publish(self.channels.all, encode_frame(*to_frame(message)))

    async def send_to_user(self, user_id: str, message: str | bytes) -> int:
        """Send to every connection of ``user_id``."""
        text, payload = to_frame(message)
        return await self._publish(self.channels.users,
                                   encode_user_frame(str(user_id), text, payload))

    async def publish(self, topic: str, message: str | bytes) -> int:
        """Send to every subscriber of ``topic``; returns processes reached.

        Raises:
            TypeError: ``bytes`` on a history topic (see :meth:`history`).
        """
        config = self._history.match(topic) if self._history else None
        if config is not None:
            if not isinstance(message, str):
                raise TypeError(
                    f"publish({topic!r}, <{type(message).__name__}>): topic {topic!r} keeps history, so its "
                    "messages are JSON envelopes and cannot be binary; publish a str or use publish_json"
                )
            return await self._publish_history(topic, encode_json(message).encode(), config)
        return await self._publish(self.channels.topic(topic),
                                   encode_frame(*to_frame(message)))

    async def _publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> int:
        from .redisconn import FAULTS, unavailable

        if self._kept is None:
            raise BrokerUnavailable("Publisher is not connected: use `async with Publisher(...)`")
        try:
            return (await self._kept.publish(topic, data, config))[1]
        except FAULTS as exc:
            raise unavailable(self.url, exc, "publishing") from exc

    async def broadcast_json(self, obj: Any) -> int:
        """:meth:`broadcast` compact JSON (a message class instance gains its type field)."""
        return await self.broadcast(encode_json(obj, self.message_key))

    async def send_json_to_user(self, user_id: str, obj: Any) -> int:
        """:meth:`send_to_user` compact JSON (a message class instance gains its type field)."""
        return await self.send_to_user(user_id, encode_json(obj, self.message_key))

    async def publish_json(self, topic: str, obj: Any) -> int:
        """:meth:`publish` compact JSON (a message class instance gains its type field; on a history
        topic: the envelope's ``data``)."""
        config = self._history.match(topic) if self._history else None
        if config is not None:
            return await self._publish_history(topic, encode_json(obj, self.message_key).encode(), config)
        return await self.publish(topic, encode_json(obj, self.message_key))
