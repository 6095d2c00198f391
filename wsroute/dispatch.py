"""Routing by message content: the first message of a connection and the
``@on("type")`` methods of handler classes.

Messages are JSON objects with a type field (``"type"`` unless
``App(message_key=...)`` says otherwise)::

    {"type": "join", "room": "lobby"}

This module is pure: it decodes and chooses, it never touches a socket, so
every bad input is tested without a server. A bad first message is reported
as a :class:`Rejection` carrying the close code and a reason short enough for
a close frame (123 bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
from websockets.frames import CloseCode

__all__ = ["Rejection", "choose_by_first_message", "close_reason", "decode_typed", "encode_json"]

T = TypeVar("T")

#: Compact JSON, with one encoder built once: ``json.dumps()`` with
#: non-default arguments builds a new ``JSONEncoder`` on every call.
encode_json: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode

_MAX_REASON_BYTES = 123
_OBJECT_START = frozenset("{ \t\r\n")


def close_reason(text: str) -> str:
    """Cut ``text`` so it fits in a close frame (123 bytes of UTF-8)."""
    encoded = text.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return text
    return encoded[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


@attrs.frozen
class Rejection(Exception):
    """The first message cannot choose a route; the connection closes with it."""

    code: int
    reason: str


def decode_typed(message: str | bytes, key: str) -> tuple[str, dict[str, Any]] | None:
    """Return ``(type, data)`` when ``message`` is a JSON object with a str ``key``.

    Anything else (binary, not JSON, not an object, no type) gives ``None``:
    per-message dispatch then hands the raw message to ``on_message``.
    """
    # Looking at the first character avoids json.loads() on text that cannot
    # be an object, without copying the message as lstrip() would.
    if not isinstance(message, str) or not message or message[0] not in _OBJECT_START:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if type(data) is not dict:
        return None
    kind = data.get(key)
    if type(kind) is not str:
        return None
    return kind, data


def choose_by_first_message(
    message: str | bytes, key: str, choices: Mapping[str, T]
) -> tuple[T, dict[str, Any]]:
    """Pick the route named by the first message's type.

    Raises:
        Rejection: 1003 for a binary message, 1008 for anything that is not a
            JSON object with a known type; the reason says what was expected.
    """
    if not isinstance(message, str):
        binary = f"first message must be JSON text with a {key!r} field, got binary"
        raise _rejection(CloseCode.UNSUPPORTED_DATA, binary)
    try:
        data = json.loads(message)
    except ValueError:
        raise _rejection(CloseCode.POLICY_VIOLATION, "first message is not valid JSON") from None
    if type(data) is not dict:
        raise _rejection(CloseCode.POLICY_VIOLATION, f"first message must be a JSON object with a {key!r} field")
    kind = data.get(key)
    if type(kind) is not str:
        raise _rejection(CloseCode.POLICY_VIOLATION, f"first message has no string {key!r} field")
    target = choices.get(kind)
    if target is None:
        expected = ", ".join(sorted(choices))
        raise _rejection(CloseCode.POLICY_VIOLATION, f"unknown message type {kind!r} (expected: {expected})")
    return target, data


def _rejection(code: int, reason: str) -> Rejection:
    return Rejection(int(code), close_reason(reason))
