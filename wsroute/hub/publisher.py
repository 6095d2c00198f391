"""Publish to a running wsroute deployment from anywhere: a script, a web app.

A :class:`Publisher` speaks the Redis broker's wire format (see
:mod:`.wire`) without a server or a hub::

    async with wsroute.hub.Publisher("redis://127.0.0.1:6379/0") as pub:
        await pub.publish("room:1", "hi")
        await pub.send_json_to_user("alice", {"type": "notice"})
        await pub.broadcast(b"\\x00binary")

Every process of the deployment delivers the message to its own
connections, exactly as if a handler had called ``app.hub``. On a Redis
Cluster, pass the servers' ``redis+cluster://`` URL (and the same
``prefix`` and partition count): each message is sent with ``SPUBLISH`` to
the master that owns its channel (:mod:`.clusternodes`), as the cluster
broker does. Topics with
history must be declared here too, as on the servers' hub, so that their
messages get offsets and are kept (docs/history.md)::

    pub = wsroute.hub.Publisher("redis://127.0.0.1:6379/0")
    pub.history("room:*", size=1000, ttl=300)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import BrokerUnavailable
from ..jsonutil import encode_json
from .history import HistoryConfig, HistoryRules
from .wire import DEFAULT_PARTITIONS, Channels, ClusterChannels, encode_frame, encode_user_frame, to_frame

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .clusternodes import ClusterNodes
    from .redishistory import RedisHistory
    from .topology import ClusterURL

__all__ = ["Publisher"]

T = TypeVar("T")

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


class Publisher:
    """A publish-only client of the Redis broker.

    Args:
        url: the same URL the servers use with ``--broker``: ``redis://…``
            (``rediss://``, ``unix://``) or ``redis+cluster://host:port[,…]/``
            (``rediss+cluster://``).
        prefix: the same prefix as the servers' broker.
        connect_timeout: seconds to wait for Redis at :meth:`connect`.
        wait: keep retrying for ``connect_timeout`` instead of failing at once.
        message_key: the type field the ``*_json`` methods add to message
            class instances (the servers' ``App(message_key=...)``).
        partitions: on a cluster, the servers' partition count (default 64;
            ``?partitions=`` in the URL wins).
        node_timeout: on a cluster, seconds for connecting to a node and for
            each reply.

    Raises:
        ValueError: a malformed cluster URL, a prefix with braces on a
            cluster, a partition count out of 1..16384.
        ImportError: a cluster URL without the ``redis`` package.
    """

    def __init__(
        self, url: str, *, prefix: str = "wsroute", connect_timeout: float = 5.0,
        wait: bool = False, message_key: str = "type", partitions: int = DEFAULT_PARTITIONS,
        node_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.message_key = message_key
        self.connect_timeout = connect_timeout
        self.wait = wait
        self.node_timeout = node_timeout
        self.channels: Channels | ClusterChannels
        self._cluster: ClusterURL | None = None
        if url.partition("://")[0].lower() in CLUSTER_SCHEMES:
            from .topology import parse_cluster_url

            self._cluster = parse_cluster_url(url)
            self.channels = ClusterChannels(prefix, self._cluster.partitions or partitions)
        else:
            self.channels = Channels(prefix)
        self._client: Redis | None = None
        self._nodes: ClusterNodes | None = None
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
        from .redishistory import RedisHistory

        if self._cluster is None:
            from .redisconn import connect_redis

            client = self._client = await connect_redis(self.url, timeout=self.connect_timeout, wait=self.wait)
        else:
            from .clusternodes import ClusterNodes

            nodes = ClusterNodes(self._cluster, self.node_timeout)
            await nodes.connect(timeout=self.connect_timeout, wait=self.wait)
            self._nodes = nodes
            client = nodes.client_for(self.channels.all)
        self._kept = RedisHistory(client, self.channels, self.channels.publish_command)

    async def aclose(self) -> None:
        """Close the connection (on a cluster: every master's)."""
        client, self._client = self._client, None
        nodes, self._nodes = self._nodes, None
        self._kept = None
        if client is not None:
            await client.aclose()
        if nodes is not None:
            await nodes.close()

    async def __aenter__(self) -> Publisher:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, name: str, run: Callable[[Redis], Awaitable[T]]) -> T:
        """``run(client)`` once on the server that holds ``name``; never retried (at most once).

        On a cluster a ``MOVED`` reply (nothing ran) is followed once, and
        after any failure the next call reads a new map first, so publishing
        resumes once a replica has taken over a failed master.

        Raises:
            BrokerUnavailable: not connected, or Redis failed (names the URL and the fix).
        """
        from .redisconn import FAULTS, unavailable

        client, nodes = self._client, self._nodes
        try:
            if client is not None:
                return await run(client)
            if nodes is None:
                raise BrokerUnavailable("Publisher is not connected: use `async with Publisher(...)`")
            if nodes.stale and (error := await nodes.fetch()) is not None:
                raise error
            return await nodes.on_owner(name, run)
        except FAULTS as exc:
            if nodes is None or self._cluster is None:
                raise unavailable(self.url, exc, "publishing") from exc
            from .clusternodes import cluster_unavailable

            nodes.mark_stale()
            raise cluster_unavailable(self._cluster, exc, "publishing") from exc

    async def _publish(self, channel: str, data: bytes) -> int:
        from .redisconn import publication

        return await self._send(channel, publication(self.channels.publish_command, channel, data))

    async def broadcast(self, message: str | bytes) -> int:
        """Send to every connection; returns how many processes received it."""
        return await self._publish(self.channels.all, encode_frame(*to_frame(message)))

    async def send_to_user(self, user_id: str, message: str | bytes) -> int:
        """Send to every connection of ``user_id``."""
        text, payload = to_frame(message)
        user_id = str(user_id)
        return await self._publish(self.channels.user(user_id), encode_user_frame(user_id, text, payload))

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
        kept = self._kept
        if kept is None:
            raise BrokerUnavailable("Publisher is not connected: use `async with Publisher(...)`")
        return (await self._send(self.channels.topic(topic), lambda client: kept.publish(topic, data, config,
                                                                                          client)))[1]

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
