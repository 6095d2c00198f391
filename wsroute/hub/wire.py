"""The wire format of the Redis broker, shared with :class:`Publisher`.

Channels (``prefix`` defaults to ``"wsroute"``)::

    {prefix}:all            broadcast: every process delivers to every connection
    {prefix}:users          one user: every process delivers to that user's connections
    {prefix}:topic:{topic}  one topic: subscribed only by processes that have subscribers
    {prefix}:presence       join/leave events, JSON {"topic", "event", "user"}

History keys (a Stream and a Hash per topic, hash-tagged) are described in
:mod:`.redishistory`.

A message is one opcode byte, ``T`` (text frame) or ``B`` (binary frame),
followed by the frame payload, encoded once by the publisher. On the users
channel the opcode is followed by the user id's length (2 bytes, big
endian) and the UTF-8 user id. One users channel rather than one channel per
user keeps ``Hub.attach`` free of any Redis round trip, and a user's message
can never race its connection's subscription. A history topic's channel
carries ``H`` frames: ``H<offset> <epoch>\n`` then the JSON envelope
(built by a Lua script, see :mod:`.redishistory`).
"""

from __future__ import annotations

import json
import zlib
from typing import Final

from .broker import PresenceEvent

__all__ = [
    "DEFAULT_PREFIX",
    "Channels",
    "encode_frame",
    "encode_user_frame",
    "decode_frame",
    "decode_user_frame",
    "encode_presence",
    "decode_presence",
    "to_frame",
    "ClusterChannels",
    "DEFAULT_PARTITIONS",
    "encode_presence_frame",
    "decode_history_frame",
]

DEFAULT_PREFIX: Final = "wsroute"
TEXT: Final = b"T"[0]
HISTORY: Final = b"H"[0]
BINARY: Final = b"B"[0]


class Channels:
    """Channel and key names for one prefix, computed once, and the pub/sub commands for them."""

    #: Plain pub/sub: every message reaches every node (there is one).
    publish_command: Final = "PUBLISH"
    subscribe_command: Final = "SUBSCRIBE"

    __slots__ = (
        "alive_prefix",
        "all",
        "history_prefix",
        "prefix",
        "presence",
        "presence_key_prefix",
        "topic_prefix",
        "users",
    )

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self.all = f"{prefix}:all"
        self.users = f"{prefix}:users"
        self.presence = f"{prefix}:presence"
        self.topic_prefix = f"{prefix}:topic:"
        self.presence_key_prefix = f"{prefix}:present:"
        self.alive_prefix = f"{prefix}:alive:"
        self.history_prefix = f"{prefix}:history:"

    def topic(self, topic: str) -> str:
        """The channel of ``topic``."""
        return self.topic_prefix + topic

    def user(self, user_id: str) -> str:
        """The channel that carries messages to ``user_id``: the one users channel."""
        return self.users

    def presence_key(self, topic: str) -> str:
        """The hash of ``topic``'s presence: field ``{process}:{user}``."""
        return self.presence_key_prefix + topic

    def presence_event(self, topic: str, event: PresenceEvent, user_id: str) -> tuple[str, str, bytes]:
        """The command that announces a join or leave: PUBLISH on the presence channel."""
        return "PUBLISH", self.presence, encode_presence(topic, event, user_id)

    def history_key(self, topic: str) -> str:
        """The Stream of ``topic``'s history, hash-tagged: ``wsroute:history:{h:room:1}``."""
        return f"{self.history_prefix}{{h:{topic}}}"

    def history_meta_key(self, topic: str) -> str:
        """The Hash of ``topic``'s epoch and newest offset, in the same slot as its Stream."""
        return f"{self.history_prefix}{{h:{topic}}}:meta"

    def alive_key(self, process: str) -> str:
        """The key that exists (with a TTL) while ``process`` is alive."""
        return self.alive_prefix + process


def to_frame(message: str | bytes) -> tuple[bool, bytes]:
    """Encode a message once: ``str`` is a text frame, bytes a binary one.

    Raises:
        TypeError: the message is neither.
    """
    if isinstance(message, str):
        return True, message.encode()
    if isinstance(message, (bytes, bytearray, memoryview)):
        return False, bytes(message)
    raise TypeError(
        f"message must be <str> or <bytes> (got {message!r:.40} that is a "
        f"<{type(message).__name__}>)"
    )


def encode_frame(text: bool, payload: bytes) -> bytes:
    """Prefix the payload with its opcode byte."""
    return (b"T" if text else b"B") + payload


def decode_frame(data: bytes) -> tuple[bool, bytes]:
    """Split a message into (is_text, payload)."""
    return data[0] == TEXT, data[1:]


def encode_user_frame(user_id: str, text: bool, payload: bytes) -> bytes:
    """Opcode, user id length and user id, then the payload."""
    uid = user_id.encode()
    if len(uid) > 0xFFFF:
        raise ValueError(f"user id too long ({len(uid)} bytes, max 65535)")
    return (b"T" if text else b"B") + len(uid).to_bytes(2, "big") + uid + payload


def decode_user_frame(data: bytes) -> tuple[str, bool, bytes]:
    """Split a users-channel message into (user_id, is_text, payload)."""
    size = int.from_bytes(data[1:3], "big")
    return data[3 : 3 + size].decode(), data[0] == TEXT, data[3 + size :]


def encode_presence(topic: str, event: PresenceEvent, user_id: str) -> bytes:
    """A join/leave event as compact JSON."""
    return json.dumps({"topic": topic, "event": event, "user": user_id},
                      separators=(",", ":")).encode()


def decode_presence(data: bytes) -> tuple[str, PresenceEvent, str]:
    """Parse a join/leave event."""
    obj = json.loads(data)
    event: PresenceEvent = "join" if obj["event"] == "join" else "leave"
    return str(obj["topic"]), event, str(obj["user"])


def decode_history_frame(data: bytes) -> tuple[int, str, bytes]:
    """Split an ``H`` frame into (offset, epoch, envelope)."""
    end = data.index(b"\n")
    offset, _, epoch = data[1:end].partition(b" ")
    return int(offset), epoch.decode(), data[end + 1 :]


# Redis Cluster (``redis+cluster://``): the same frames on hash-tagged channels.

PRESENCE: Final = b"P"[0]
#: Default number of partitions of the cluster broker's channels and keys.
DEFAULT_PARTITIONS: Final = 64


class ClusterChannels:
    """Channel and key names of the Redis Cluster broker, hash-tagged by partition.

    A topic or user is hashed (CRC-32 of its UTF-8 name, modulo
    ``partitions``) into one of a fixed number of partitions; each partition
    is a Redis Cluster hash tag, ``{p17}``, so everything about one topic --
    its channel, its presence hash -- lives in one hash slot, on one shard::

        {prefix}:{p17}:topic:{topic}    one topic (subscribed only where it has subscribers)
        {prefix}:{p17}:users            the users of partition 17 (every process subscribes all)
        {prefix}:{all}                  broadcast (every process)
        {prefix}:{p17}:present:{topic}  presence hash, fields ``{process}:{user}``
        {prefix}:{p17}:history:{topic}  history Stream; ``history-meta:{topic}`` its epoch and offset
        {prefix}:{alive}:{process}      exists (with a TTL) while the process lives

    Frames are those of :mod:`wsroute.hub.wire` (``T``/``B`` + payload; the
    users channel adds the user id). A topic channel also carries that
    topic's presence events, opcode ``P`` followed by the JSON of
    :func:`encode_presence`, so they reach exactly the processes that have
    subscribers, in order with the topic's messages.

    Args:
        prefix: shared by every process of one deployment; must not contain
            ``{`` or ``}`` (they would change the hash tag).
        partitions: how many partitions (1 to 16384); every process of a
            deployment must use the same number.

    Raises:
        ValueError: a prefix with braces, or a partition count out of range.
    """

    __slots__ = ("_tags", "alive_prefix", "all", "partitions", "prefix", "users")

    #: Sharded pub/sub: a message stays on the shard that owns its channel.
    publish_command: Final = "SPUBLISH"
    subscribe_command: Final = "SSUBSCRIBE"

    def __init__(self, prefix: str = DEFAULT_PREFIX, partitions: int = DEFAULT_PARTITIONS) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix {prefix!r} must not contain '{{' or '}}' (they are Redis hash tags)")
        if not isinstance(partitions, int) or isinstance(partitions, bool) or not 1 <= partitions <= 16384:
            raise ValueError(f"partitions must be an <int> from 1 to 16384 (got {partitions!r})")
        self.prefix = prefix
        self.partitions = partitions
        self._tags = [f"{prefix}:{{p{i}}}:" for i in range(partitions)]
        self.users = [tag + "users" for tag in self._tags]
        self.all = f"{prefix}:{{all}}"
        self.alive_prefix = f"{prefix}:{{alive}}:"

    def partition(self, name: str) -> int:
        """The partition of a topic or user id: CRC-32 of its UTF-8 bytes modulo the count."""
        return zlib.crc32(name.encode()) % self.partitions

    def topic(self, topic: str) -> str:
        """The channel of ``topic``."""
        return self._tags[self.partition(topic)] + "topic:" + topic

    def user(self, user_id: str) -> str:
        """The users channel that carries messages to ``user_id``."""
        return self.users[self.partition(user_id)]

    def presence_key(self, topic: str) -> str:
        """The hash of ``topic``'s presence, in the topic's slot."""
        return self._tags[self.partition(topic)] + "present:" + topic

    def presence_event(self, topic: str, event: PresenceEvent, user_id: str) -> tuple[str, str, bytes]:
        """The command that announces a join or leave: SPUBLISH of a ``P`` frame on the topic's channel."""
        return "SPUBLISH", self.topic(topic), encode_presence_frame(topic, event, user_id)

    def history_key(self, topic: str) -> str:
        """The Stream of ``topic``'s history, in the topic's slot (see :mod:`.redishistory`)."""
        return self._tags[self.partition(topic)] + "history:" + topic

    def history_meta_key(self, topic: str) -> str:
        """The Hash of ``topic``'s epoch and newest offset, in the topic's slot."""
        return self._tags[self.partition(topic)] + "history-meta:" + topic

    def alive_key(self, process: str) -> str:
        """The key that exists (with a TTL) while ``process`` is alive."""
        return self.alive_prefix + process


def encode_presence_frame(topic: str, event: PresenceEvent, user_id: str) -> bytes:
    """A presence event as a topic-channel frame (opcode ``P``)."""
    return b"P" + encode_presence(topic, event, user_id)
