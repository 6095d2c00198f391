"""Presence across processes on a Redis Cluster.

The same model as :mod:`.presence` (one hash per topic whose fields are
``{process}:{user}``, one alive key per process renewed by a heartbeat,
dead processes' fields pruned on read, local truth reconciled into Redis),
laid out for a cluster (names in :class:`~.wire.ClusterChannels`):

- a topic's presence hash carries the topic's partition hash tag, so its
  writes and its join/leave events (``SPUBLISH`` of a ``P`` frame on the
  topic channel) go to one master in one pipeline;
- every alive key carries the ``{alive}`` tag, so one ``MGET`` on one
  master tells which processes are alive.

Writes are grouped by master: one pipeline per master per sync. A master
that is down fails its part; the rest is written, and the failed topics
stay dirty until the next sync.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .redisconn import Redis
from .wire import ClusterChannels, encode_presence_frame

__all__ = ["ClusterPresence"]


class ClusterPresence:
    """This process's presence entries on a cluster and how to read everyone's.

    Args:
        client_for: the client of the master that owns a key or channel.
        channels: the deployment's names.
        process_id: this process's unique id.
        ttl: seconds after which a dead process's entries stop counting.
    """

    def __init__(self, client_for: Callable[[str], Redis], channels: ClusterChannels,
                 process_id: str, ttl: float) -> None:
        self._client_for = client_for
        self._channels = channels
        self._pid = process_id
        self._ttl = max(1, int(ttl))
        self._local: dict[str, set[str]] = {}
        self._remote: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._rewrite: set[str] = set()

    def set_local(self, topic: str, user_id: str, present: bool) -> None:
        """Record a change of local truth; :meth:`sync` applies it."""
        users = self._local.get(topic)
        if present:
            if users is None:
                users = self._local[topic] = set()
            users.add(user_id)
        elif users is not None:
            users.discard(user_id)
            if not users:
                del self._local[topic]
        self._dirty.add(topic)

    def rewrite(self) -> None:
        """After an outage: write every local entry again (a promoted replica may lack them)."""
        self._rewrite.update(self._local)
        self._dirty.update(self._local)
        self._dirty.update(self._remote)

    def pending(self) -> bool:
        """True while some change is not in Redis yet."""
        return bool(self._dirty)

    def _field(self, user_id: str) -> str:
        return f"{self._pid}:{user_id}"

    async def sync(self) -> None:
        """Write the difference between local truth and Redis, one pipeline per master.

        Raises:
            redis.exceptions.RedisError, OSError: some master failed; its
            topics stay dirty and the other masters' writes are kept.
        """
        if not self._dirty:
            return
        # Entries count only while the alive key exists: write it with them, so
        # a master that restarted empty never makes readers prune fresh entries.
        alive = self._channels.alive_key(self._pid)
        await self._client_for(alive).set(alive, b"1", ex=self._ttl)
        groups: defaultdict[int, list[str]] = defaultdict(list)
        clients: dict[int, Redis] = {}
        for topic in self._dirty:
            client = self._client_for(self._channels.presence_key(topic))
            clients[id(client)] = client
            groups[id(client)].append(topic)
        results = await asyncio.gather(
            *[self._sync_topics(clients[key], topics) for key, topics in groups.items()],
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _sync_topics(self, client: Redis, topics: list[str]) -> None:
        pipe = client.pipeline(transaction=False)
        after: dict[str, set[str]] = {}
        for topic in topics:
            local = self._local.get(topic, set())
            remote = self._remote.get(topic, set())
            key = self._channels.presence_key(topic)
            channel = self._channels.topic(topic)
            write = local if topic in self._rewrite else local - remote
            if write:
                pipe.hset(key, mapping={self._field(u): b"1" for u in write})
            if local:
                pipe.expire(key, self._ttl * 3)
            gone = remote - local
            if gone:
                pipe.hdel(key, *[self._field(u) for u in gone])
            for user_id in local - remote:
                pipe.execute_command("SPUBLISH", channel, encode_presence_frame(topic, "join", user_id))
            for user_id in gone:
                pipe.execute_command("SPUBLISH", channel, encode_presence_frame(topic, "leave", user_id))
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

    async def heartbeat(self) -> bool:
        """Renew this process's alive key and the TTL of its topics' hashes.

        Returns:
            True when the alive key had vanished (its master restarted empty,
            a replica without it took over, or it expired): readers may have
            pruned this process's entries, so they are marked for a rewrite
            and the caller must sync.
        """
        alive = self._channels.alive_key(self._pid)
        existed = await self._client_for(alive).set(alive, b"1", ex=self._ttl, get=True)
        pipes: dict[int, Any] = {}
        for topic in self._remote:
            key = self._channels.presence_key(topic)
            client = self._client_for(key)
            pipe = pipes.get(id(client))
            if pipe is None:
                pipe = pipes[id(client)] = client.pipeline(transaction=False)
            pipe.expire(key, self._ttl * 3)
        await asyncio.gather(*[pipe.execute() for pipe in pipes.values()])
        if existed is not None or not self._remote:
            return False
        self.rewrite()
        return True

    async def forget_process(self) -> None:
        """On shutdown: remove this process's entries and alive key."""
        for topic in list(self._remote):
            self._local.pop(topic, None)
            self._dirty.add(topic)
        await self.sync()
        alive = self._channels.alive_key(self._pid)
        await self._client_for(alive).delete(alive)

    def local(self, topic: str) -> set[str]:
        """This process's users in ``topic``: the local truth, no I/O."""
        return set(self._local.get(topic, ()))

    async def read(self, topic: str) -> set[str]:
        """User ids in ``topic`` for every live process; prune dead entries.

        This process's part is its local truth (:meth:`local`), never what
        Redis holds for it, which lags by one background write.
        """
        key = self._channels.presence_key(topic)
        client = self._client_for(key)
        fields = [f.decode() if isinstance(f, bytes) else f for f in await client.hkeys(key)]
        users = self.local(topic)
        fields = [f for f in fields if f.partition(":")[0] != self._pid]
        if not fields:
            return users
        pids = sorted({f.partition(":")[0] for f in fields})
        alive_keys = [self._channels.alive_key(p) for p in pids]
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
