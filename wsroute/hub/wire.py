"""The wire format of the Redis broker, shared with :class:`Publisher`.

Channels (``prefix`` defaults to ``"wsroute"``)::

    {prefix}:all            broadcast: every process delivers to every connection
    {prefix}:users          one user: every process delivers to that user's connections
    {prefix}:topic:{topic}  one topic: subscribed only by processes that have subscribers
    {prefix}:presence       join/leave events, JSON {"topic", "event", "user"}

A message is one opcode byte, ``T`` (text frame) or ``B`` (binary frame),
followed by the frame payload, encoded once by the publisher. On the users
channel the opcode is followed by the user id's length (2 bytes, big
endian) and the UTF-8 user id. One users channel rather than one channel per
user keeps ``Hub.attach`` free of any Redis round trip, and a user's message
can never race its connection's subscription.
"""

from __future__ import annotations

import json
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
]

DEFAULT_PREFIX: Final = "wsroute"
TEXT: Final = b"T"[0]
BINARY: Final = b"B"[0]


class Channels:
    """Channel and key names for one prefix, computed once."""

    __slots__ = (
        "alive_prefix",
        "all",
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

    def topic(self, topic: str) -> str:
        """The channel of ``topic``."""
        return self.topic_prefix + topic

    def presence_key(self, topic: str) -> str:
        """The hash of ``topic``'s presence: field ``{process}:{user}``."""
        return self.presence_key_prefix + topic

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
