"""Presence across processes, kept in Redis.

Layout: one hash per topic, ``{prefix}:present:{topic}``, whose fields are
``{process_id}:{user_id}``; and one key per live process,
``{prefix}:alive:{process_id}``, set with a TTL that a heartbeat renews. A
reader keeps the fields of live processes and deletes the others, so the
entries of a process that died without cleaning up stop counting within
``ttl`` seconds and disappear at the next read; a hash nobody refreshes
expires on its own.

This process's part is *reconciled*: :meth:`RedisPresence.set_local`
updates the local truth synchronously, :meth:`RedisPresence.sync` writes the
difference (and publishes one join/leave event per change on the presence
channel). After a reconnection :meth:`RedisPresence.rewrite` makes the next
sync write everything again, since a restarted Redis lost it all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import Channels, encode_presence

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisPresence"]


class RedisPresence:
    """This process's presence entries and how to read everyone's."""

    def __init__(self, client: Redis, channels: Channels, process_id: str, ttl: float) -> None:
        self._client = client
        self._channels = channels
        self._pid = process_id
        self._ttl = max(1, int(ttl))
        self._local: dict[str, set[str]] = {}
        self._remote: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._rewrite = False

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
        """After a reconnection: write every local entry again on next sync."""
        self._rewrite = True
        self._dirty.update(self._local)
        self._dirty.update(self._remote)

    def pending(self) -> bool:
        """True while some change is not in Redis yet."""
        return bool(self._dirty) or self._rewrite

    def _field(self, user_id: str) -> str:
        return f"{self._pid}:{user_id}"

    async def sync(self) -> None:
        """Write the difference between local truth and Redis, in one pipeline.

        On failure nothing is marked done, so the next sync retries it all.
        """
        if not self._dirty:
            self._rewrite = False
            return
        rewrite = self._rewrite
        topics = list(self._dirty)
        pipe = self._client.pipeline(transaction=False)
        # Entries count only while the alive key exists: write it with them,
        # so that a Redis that restarted empty (or a key that expired while
        # the loop was blocked) never makes readers prune fresh entries.
        pipe.set(self._channels.alive_key(self._pid), b"1", ex=self._ttl)
        after: dict[str, set[str]] = {}
        for topic in topics:
            local = self._local.get(topic, set())
            remote = self._remote.get(topic, set())
            key = self._channels.presence_key(topic)
            write = local if rewrite else local - remote
            if write:
                pipe.hset(key, mapping={self._field(u): b"1" for u in write})
            if local:
                pipe.expire(key, self._ttl * 3)
            gone = remote - local
            if gone:
                pipe.hdel(key, *[self._field(u) for u in gone])
            for user_id in local - remote:
                pipe.publish(self._channels.presence, encode_presence(topic, "join", user_id))
            for user_id in gone:
                pipe.publish(self._channels.presence, encode_presence(topic, "leave", user_id))
            after[topic] = set(local)
        self._rewrite = False
        try:
            await pipe.execute()
        except BaseException:
            self._rewrite = self._rewrite or rewrite
            raise
        for topic, users in after.items():
            if users:
                self._remote[topic] = users
            else:
                self._remote.pop(topic, None)
            if self._local.get(topic, set()) == users:
                self._dirty.discard(topic)

    async def heartbeat(self) -> bool:
        """Renew this process's alive key and the TTL of its topics' hashes.

        Returns:
            True when the alive key had vanished (Redis restarted or the key
            expired): readers may have pruned this process's entries, so
            they are marked for a rewrite and the caller must sync.
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.exists(self._channels.alive_key(self._pid))
        pipe.set(self._channels.alive_key(self._pid), b"1", ex=self._ttl)
        for topic in self._remote:
            pipe.expire(self._channels.presence_key(topic), self._ttl * 3)
        existed = (await pipe.execute())[0]
        if existed or not self._remote:
            return False
        self.rewrite()
        return True

    async def forget_process(self) -> None:
        """On shutdown: remove this process's entries and alive key."""
        pipe = self._client.pipeline(transaction=False)
        for topic, users in self._remote.items():
            pipe.hdel(self._channels.presence_key(topic), *[self._field(u) for u in users])
        pipe.delete(self._channels.alive_key(self._pid))
        await pipe.execute()
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
        key = self._channels.presence_key(topic)
        fields = [f.decode() if isinstance(f, bytes) else f for f in await self._client.hkeys(key)]
        users = self.local(topic)
        if not fields:
            return users
        pids = sorted({f.partition(":")[0] for f in fields})
        flags = await self._client.mget([self._channels.alive_key(p) for p in pids])
        alive = {p for p, flag in zip(pids, flags, strict=True) if flag is not None}
        dead: list[str] = []
        for field in fields:
            pid, _, user_id = field.partition(":")
            if pid == self._pid:
                continue
            if pid in alive:
                users.add(user_id)
            else:
                dead.append(field)
        if dead:
            await self._client.hdel(key, *dead)
        return users
