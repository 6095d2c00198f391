"""Message history in Redis: one Stream per topic, one Lua script per publication.

Keys (``prefix`` defaults to ``"wsroute"``; the braces are a Redis Cluster
hash tag, so both keys of a topic live in one slot and one script may touch
them; the ``h:`` keeps the tag non-empty for the empty topic)::

    {prefix}:history:{h:<topic>}        Stream: entry id "<offset>-0", fields d (JSON data), t (ms)
    {prefix}:history:{h:<topic>}:meta   Hash: e (epoch), o (newest offset)

:data:`PUBLISH_SCRIPT` does, atomically: create the epoch if the meta hash
is missing (and drop a stale stream), ``HINCRBY`` the offset, ``XADD ...
MAXLEN ~ size`` the entry, set the TTLs (the stream expires ``ttl`` after
the last publication, the meta hash ``meta_ttl`` after it), build the
envelope and ``PUBLISH`` it on the topic's channel as an ``H`` frame
(:func:`~.wire.encode_history_frame`). Because all of it is one script, the
offsets reach every subscriber in order, and a message is in the history
exactly when it was published.

:data:`READ_SCRIPT` returns the epoch, the newest offset and the entries
after ``since`` (or the newest ones), skipping entries older than ``ttl``
by Redis's clock and never reading more than ``limit`` or further back than
``size`` below the newest offset (``MAXLEN ~`` may keep a few more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .history import HistoryConfig, HistoryPage, Position, envelope, envelope_head, new_epoch

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["PUBLISH_SCRIPT", "READ_SCRIPT", "RedisHistory"]

#: KEYS: stream, meta. ARGV: channel, size, ttl_ms, meta_ttl_s, envelope head, data, new epoch,
#: the publish command (PUBLISH, or SPUBLISH on a Redis Cluster: the channel is in the keys' slot).
PUBLISH_SCRIPT = """
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[7]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
local t = redis.call('TIME')
local now = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
local id = string.format('%d', offset) .. '-0'
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id, 'd', ARGV[6], 't', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local o = string.format('%d', offset)
local frame = ARGV[5] .. o .. ',"epoch":"' .. epoch .. '","data":' .. ARGV[6] .. '}'
local receivers = redis.call(ARGV[8], ARGV[1], 'H' .. o .. ' ' .. epoch .. '\\n' .. frame)
return {offset, epoch, receivers}
"""

#: KEYS: stream, meta. ARGV: since (-1: the newest), limit, ttl_ms, meta_ttl_s, size, new epoch.
#: Returns {epoch, newest offset, offset1, data1, offset2, data2, ...}, oldest first.
READ_SCRIPT = """
local epoch = redis.call('HGET', KEYS[2], 'e')
local top = 0
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
else
  top = tonumber(redis.call('HGET', KEYS[2], 'o'))
end
local result = {epoch, top}
local limit = tonumber(ARGV[2])
if limit <= 0 or top == 0 then
  return result
end
local floor = math.max(top - tonumber(ARGV[5]), 0)
local since = tonumber(ARGV[1])
local t = redis.call('TIME')
local oldest = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[3])
-- With an offset: the entries above it, oldest first. Without: the newest
-- ``limit``, read newest first (XREVRANGE), so walked backwards. Either way
-- one loop keeps those not older than the ttl, oldest first.
local entries, first, last, step
if since >= 0 then
  local start = math.max(since, floor) + 1
  if start > top then
    return result
  end
  entries = redis.call('XRANGE', KEYS[1], string.format('%d', start) .. '-0', '+', 'COUNT', limit)
  first, last, step = 1, #entries, 1
else
  entries = redis.call('XREVRANGE', KEYS[1], '+', string.format('%d', floor + 1) .. '-0', 'COUNT', limit)
  first, last, step = #entries, 1, -1
end
for i = first, last, step do
  local fields = entries[i][2]
  if tonumber(fields[4]) >= oldest then
    result[#result + 1] = string.match(entries[i][1], '^(%d+)')
    result[#result + 1] = fields[2]
  end
end
return result
"""


class HistoryNames(Protocol):
    """Where a topic's history lives: :class:`~.wire.Channels` or :class:`~.wire.ClusterChannels`."""

    def topic(self, topic: str) -> str: ...
    def history_key(self, topic: str) -> str: ...
    def history_meta_key(self, topic: str) -> str: ...


class RedisHistory:
    """The history operations of the Redis brokers and :class:`~.publisher.Publisher`.

    Args:
        client: a connected redis-py asyncio client (scripts run on it
            unless a call passes another: the Cluster broker passes the
            owner of the topic's slot).
        channels: the deployment's channel and key names.
        publish_command: ``"PUBLISH"``, or ``"SPUBLISH"`` on a Redis Cluster.
    """

    def __init__(self, client: Redis, channels: HistoryNames, publish_command: str = "PUBLISH") -> None:
        self._channels = channels
        self._command = publish_command
        self._publish: Any = client.register_script(PUBLISH_SCRIPT)
        self._read: Any = client.register_script(READ_SCRIPT)
        self._heads: dict[str, bytes] = {}

    def _head(self, topic: str) -> bytes:
        head = self._heads.get(topic)
        if head is None:
            if len(self._heads) >= 10_000:
                self._heads.clear()
            head = self._heads[topic] = envelope_head(topic)
        return head

    async def publish(
        self, topic: str, data: bytes, config: HistoryConfig, client: Redis | None = None
    ) -> tuple[Position, int]:
        """Run :data:`PUBLISH_SCRIPT` once (never retried: at most once).

        Returns:
            The message's position, and how many processes received it.
        """
        channels = self._channels
        offset, epoch, receivers = await self._publish(
            keys=(channels.history_key(topic), channels.history_meta_key(topic)),
            args=(channels.topic(topic), config.size, int(config.ttl * 1000), config.meta_ttl,
                  self._head(topic), data, new_epoch(), self._command),
            client=client,
        )
        return Position(int(offset), epoch.decode() if isinstance(epoch, bytes) else str(epoch)), int(receivers)

    async def read(
        self, topic: str, since: int | None, limit: int, config: HistoryConfig, client: Redis | None = None
    ) -> HistoryPage:
        """Run :data:`READ_SCRIPT`; safe to repeat (see :func:`~.redisconn.idempotent`)."""
        channels = self._channels
        reply = await self._read(
            keys=(channels.history_key(topic), channels.history_meta_key(topic)),
            args=(-1 if since is None else since, limit, int(config.ttl * 1000), config.meta_ttl,
                  config.size, new_epoch()),
            client=client,
        )
        raw_epoch = reply[0]
        epoch = raw_epoch.decode() if isinstance(raw_epoch, bytes) else str(raw_epoch)
        head = self._head(topic)
        entries = []
        for i in range(2, len(reply), 2):
            offset = int(reply[i])
            entries.append((offset, envelope(head, offset, epoch, reply[i + 1])))
        return HistoryPage(Position(int(reply[1]), epoch), entries)
