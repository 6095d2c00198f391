"""Presence across processes, kept in Redis (one server or a Redis Cluster).

Layout (names from :class:`~.wire.Channels` or :class:`~.wire.ClusterChannels`):
one hash per topic whose fields are ``{process_id}:{user_id}``, and one key
per live process, set with a TTL that a heartbeat renews. A reader keeps
the fields of live processes and deletes the others, so the entries of a
process that died without cleaning up stop counting within ``ttl`` seconds
and disappear at the next read; a hash nobody refreshes expires on its own.

One store serves both brokers because the model is the same; only where a
key lives differs. The store asks ``client_for(key)`` for the client of the
server that holds a key: with one Redis that is always the same client, so
a sync is one pipeline; on a cluster, a topic's hash carries the topic's
partition tag and every alive key the ``{alive}`` tag, so writes are grouped
into one pipeline per master and one ``MGET`` on one master tells which
processes are alive. A master that is down fails its part; the rest is
written, and the failed topics stay dirty until the next sync. Join and
leave events are sent in the same pipeline as the write, with the command
the deployment's names give (``PUBLISH`` on the presence channel, or
``SPUBLISH`` of a ``P`` frame on the topic's channel on a cluster).

This process's part is *reconciled*: :meth:`RedisPresence.set_local`
updates the local truth synchronously, :meth:`RedisPresence.sync` writes the
difference. After a reconnection (or a failover) :meth:`RedisPresence.rewrite`
makes the next sync write everything again, since a restarted Redis or a
promoted replica may have lost it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from .broker import PresenceEvent
from .members import set_member

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["PresenceNames", "RedisPresence"]


class PresenceNames(Protocol):
    """Where presence lives: :class:`~.wire.Channels` or :class:`~.wire.ClusterChannels`."""

    def presence_key(self, topic: str) -> str: ...
    def alive_key(self, process: str) -> str: ...
    def presence_event(self, topic: str, event: PresenceEvent, user_id: str) -> tuple[str, str, bytes]: ...


class RedisPresence:
    """This process's presence entries and how to read everyone's.

    Args:
        client_for: the client of the server (the cluster master) that holds
            a key or channel.
        names: the deployment's key and channel names.
        process_id: this process's unique id.
        ttl: seconds after which a dead process's entries stop counting
            (whole seconds, at least 1).
    """

    def __init__(self, client_for: Callable[[str], Redis], names: PresenceNames,
                 process_id: str, ttl: float) -> None:
        self._client_for = client_for
        self._names = names
        self._pid = process_id
        self._ttl = max(1, int(ttl))
        self._local: dict[str, set[str]] = {}
        self._remote: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._rewrite: set[str] = set()

    def set_local(self, topic: str, user_id: str, present: bool) -> None:
        """Record a change of local truth; :meth:`sync` applies it."""
        set_member(self._local, topic, user_id, present)
        self._dirty.add(topic)

    def rewrite(self) -> None:
        """After a reconnection: write every entry again on next sync (Redis may have lost them)."""
        for topics in (self._local, self._remote):
            self._rewrite.update(topics)
            self._dirty.update(topics)

    def _field(self, user_id: str) -> str:
        return f"{self._pid}:{user_id}"

    def _by_client(self, topics: Iterable[str]) -> list[tuple[Redis, list[str]]]:
        """``topics`` grouped by the client that holds their presence hash."""
        groups: dict[int, tuple[Redis, list[str]]] = {}
        for topic in topics:
            client = self._client_for(self._names.presence_key(topic))
            groups.setdefault(id(client), (client, []))[1].append(topic)
        return list(groups.values())

    async def sync(self) -> None:
        """Write the difference between local truth and Redis, one pipeline per server.

        Entries count only while the alive key exists, so it is written with
        them -- in the same pipeline when one server holds everything (one
        Redis), or first and alone when the entries live on other masters --
        and a Redis that restarted empty never makes readers prune fresh
        entries.

        Raises:
            redis.exceptions.RedisError, OSError: some server failed; its
            topics stay dirty (nothing of theirs is marked done) and the
            other servers' writes are kept.
        """
        if not self._dirty:
            return
        alive = self._names.alive_key(self._pid)
        alive_client = self._client_for(alive)
        groups = self._by_client(self._dirty)
        together = len(groups) == 1 and groups[0][0] is alive_client
        if not together:
            await alive_client.set(alive, b"1", ex=self._ttl)
        results = await asyncio.gather(
            *[self._sync_topics(client, topics, alive if together else None) for client, topics in groups],
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _sync_topics(self, client: Redis, topics: list[str], alive: str | None) -> None:
        """One pipeline: the writes of ``topics`` (and the alive key first, if given)."""
        pipe = client.pipeline(transaction=False)
        if alive is not None:
            pipe.set(alive, b"1", ex=self._ttl)
        after: dict[str, set[str]] = {}
        for topic in topics:
            local = self._local.get(topic, set())
            remote = self._remote.get(topic, set())
            key = self._names.presence_key(topic)
            write = local if topic in self._rewrite else local - remote
            if write:
                pipe.hset(key, mapping={self._field(u): b"1" for u in write})
            if local:
                pipe.expire(key, self._ttl * 3)
            gone = remote - local
            if gone:
                pipe.hdel(key, *[self._field(u) for u in gone])
            for user_id in local - remote:
                pipe.execute_command(*self._names.presence_event(topic, "join", user_id))
            for user_id in gone:
                pipe.execute_command(*self._names.presence_event(topic, "leave", user_id))
            after[topic] = set(local)
        await pipe.execute()
        for topic, users in after.items():
            self._rewrite.discard(topic)
            if users:
                self._remote[topic] = users
            else:
                self._remote.pop(topic, None)
            if self._local.get(topic, set()) == users:
                self._dirty.discard(topic)

    def _pipelines(self, keys: Iterable[str]) -> dict[int, tuple[Redis, Any]]:
        """An empty pipeline per server that holds one of ``keys``, in their order."""
        pipes: dict[int, tuple[Redis, Any]] = {}
        for key in keys:
            client = self._client_for(key)
            if id(client) not in pipes:
                pipes[id(client)] = (client, client.pipeline(transaction=False))
        return pipes

    async def heartbeat(self) -> bool:
        """Renew this process's alive key and the TTL of its topics' hashes, one pipeline per server.

        Returns:
            True when the alive key had vanished (Redis restarted empty, a
            replica without it took over, or it expired): readers may have
            pruned this process's entries, so they are marked for a rewrite
            and the caller must sync.
        """
        alive = self._names.alive_key(self._pid)
        keys = {topic: self._names.presence_key(topic) for topic in self._remote}
        pipes = self._pipelines([alive, *keys.values()])
        alive_pipe = pipes[id(self._client_for(alive))][1]
        alive_pipe.exists(alive)
        alive_pipe.set(alive, b"1", ex=self._ttl)
        for key in keys.values():
            pipes[id(self._client_for(key))][1].expire(key, self._ttl * 3)
        replies = await asyncio.gather(*[pipe.execute() for _, pipe in pipes.values()])
        existed = replies[0][0]  # the alive key's pipeline comes first
        if existed or not self._remote:
            return False
        self.rewrite()
        return True

    async def forget_process(self) -> None:
        """On shutdown: remove this process's entries and alive key (no leave events)."""
        alive = self._names.alive_key(self._pid)
        keys = {topic: self._names.presence_key(topic) for topic in self._remote}
        pipes = self._pipelines([alive, *keys.values()])
        for topic, key in keys.items():
            pipes[id(self._client_for(key))][1].hdel(key, *[self._field(u) for u in self._remote[topic]])
        pipes[id(self._client_for(alive))][1].delete(alive)
        await asyncio.gather(*[pipe.execute() for _, pipe in pipes.values()])
        self._remote.clear()

    def local(self, topic: str) -> set[str]:
        """This process's users in ``topic``: the local truth, no I/O."""
        return set(self._local.get(topic, ()))

    async def read(self, topic: str) -> set[str]:
        """User ids in ``topic`` for every live process; prune dead entries.

        This process's part is its local truth (:meth:`local`), never what
        Redis holds for it, which lags by one background write: so a process
        always reads its own joins and leaves.
        """
        key = self._names.presence_key(topic)
        client = self._client_for(key)
        fields = [f.decode() if isinstance(f, bytes) else f for f in await client.hkeys(key)]
        users = self.local(topic)
        fields = [f for f in fields if f.partition(":")[0] != self._pid]
        if not fields:
            return users
        pids = sorted({f.partition(":")[0] for f in fields})
        alive_keys = [self._names.alive_key(p) for p in pids]
        flags = await self._client_for(alive_keys[0]).mget(alive_keys)
        alive = {p for p, flag in zip(pids, flags, strict=True) if flag is not None}
        dead: list[str] = []
        for field in fields:
            pid, _, user_id = field.partition(":")
            if pid in alive:
                users.add(user_id)
            else:
                dead.append(field)
        if dead:
            await client.hdel(key, *dead)
        return users
