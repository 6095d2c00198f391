"""Routing by message content: the first message of a connection and the
``@on("type")`` methods of handler classes.

Messages are JSON objects with a type field (``"type"`` unless
``App(message_key=...)`` says otherwise)::

    {"type": "join", "room": "lobby"}

This module is pure: it decodes and chooses, it never touches a socket, so
every bad input is tested without a server. A bad first message is reported
as a :class:`Rejection` carrying the close code and a reason short enough for
a close frame (123 bytes, :func:`wsroute.reasons.fit_close_reason`).

Client JSON is decoded by :func:`decode_json` only — msgspec's decoder, in
C, about five times faster than ``json.loads`` on a small message — which
turns every way a decoder can fail into one exception,
:class:`UndecodableMessage`:

* text that is not JSON (RFC 8259), including ``NaN``, ``Infinity`` and
  ``-Infinity``, which Python's ``json`` module would otherwise accept;
* an integer longer than Python's int/str conversion limit (4300 digits by
  default, ``sys.set_int_max_str_digits``), or a number too large for a
  float (``1e999``, which ``json.loads`` turns into ``inf``);
* arrays and objects nested deeper than :data:`MAX_JSON_DEPTH` levels. The
  limit is fixed, rather than "whatever Python's recursion limit allows
  here", so the same message gives the same answer wherever it is decoded,
  and a handler can walk, ``repr()`` or re-encode whatever it receives
  without a ``RecursionError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import attrs
import msgspec
from websockets.frames import CloseCode

from .reasons import fit_close_reason

__all__ = [
    "MAX_JSON_DEPTH",
    "Rejection",
    "UndecodableMessage",
    "choose_by_first_message",
    "decode_json",
    "decode_typed",
    "maybe_too_deep",
]

T = TypeVar("T")

#: The deepest nesting of arrays and objects accepted in client JSON:
#: ``[[1]]`` has depth 2. Deeper messages are refused as a whole.
MAX_JSON_DEPTH = 256

_OBJECT_START = frozenset("{ \t\r\n")


class UndecodableMessage(ValueError):
    """Client text that :func:`decode_json` refuses.

    Attributes:
        problem: what is wrong, phrased to follow "the message", e.g.
            ``"is not valid JSON"``; first-message rejections use it as
            their close reason.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"message {problem}")
        self.problem = problem


def _refuse_constant(name: str) -> NoReturn:
    raise UndecodableMessage(f"has {name}, which is not JSON")


#: The fast decoder (msgspec, in C): about 8x faster than ``json.loads`` on a
#: small message. It is strict already: ``NaN``, ``Infinity`` and numbers it
#: cannot represent are errors, not floats.
_fast_decode: Callable[[str | bytes], Any] = msgspec.json.Decoder().decode

# Only on the failure path, to name the problem: Python's decoder says where
# ``NaN`` is, msgspec only that the text is malformed.
_explain_decode: Callable[[str], Any] = json.JSONDecoder(parse_constant=_refuse_constant).decode


def decode_json(text: str | bytes) -> Any:
    """Decode client JSON ``text``, or refuse it with one exception.

    Args:
        text: a text message as received (``bytes`` are read as UTF-8).

    Returns:
        The decoded value: dict, list, str, int, float, bool or None, nested at
        most :data:`MAX_JSON_DEPTH` levels.

    Raises:
        UndecodableMessage: for every input that is not such a value — never
            ``RecursionError``, never another ``ValueError``.
    """
    try:
        value = _fast_decode(text)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.ValidationError as exc:  # a number msgspec cannot represent
        problem = "has a number too long to decode" if str(exc).startswith("Integer") else "has a number out of range"
        raise UndecodableMessage(problem) from None
    except Exception:
        raise _explain(text) from None
    if maybe_too_deep(text) and _deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


def maybe_too_deep(text: str | bytes) -> bool:
    """Whether ``text`` is long and bracket-heavy enough that it could nest too deeply.

    A message shorter than the limit, or with fewer brackets, cannot be too
    deep, so only those pay for the walk over the decoded value.
    """
    if len(text) <= MAX_JSON_DEPTH:
        return False
    if isinstance(text, str):
        return text.count("[") + text.count("{") > MAX_JSON_DEPTH
    return text.count(b"[") + text.count(b"{") > MAX_JSON_DEPTH


def _explain(text: str | bytes) -> UndecodableMessage:
    """The problem with text the fast decoder refused (the failure path only)."""
    try:
        _explain_decode(text if isinstance(text, str) else text.decode())
    except UndecodableMessage as exc:
        return exc
    except RecursionError:
        return _too_deep()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, or an integer too long
        if not isinstance(exc, (json.JSONDecodeError, UnicodeError)):
            return UndecodableMessage("has a number too long to decode")
    return UndecodableMessage("is not valid JSON")


def _too_deep() -> UndecodableMessage:
    return UndecodableMessage(f"is nested deeper than {MAX_JSON_DEPTH} levels")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays/objects in ``value`` nest more than ``limit`` levels (iterative)."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            for item in container.values() if type(container) is dict else container:
                if type(item) is dict or type(item) is list:
                    below.append(item)
        level = below
    return False


@attrs.frozen
class Rejection(Exception):
    """The first message cannot choose a route; the connection closes with it.

    Attributes:
        code: the close code (1003 or 1008).
        reason: the close reason, for the client.
        kind: a fixed name for metrics (never client data): ``binary``,
            ``undecodable``, ``not_object``, ``no_type``, ``unknown_type``,
            or ``invalid`` when unspecified.
    """

    code: int
    reason: str
    kind: str = "invalid"


def decode_typed(message: str | bytes, key: str) -> tuple[str, dict[str, Any]] | None:
    """Return ``(type, data)`` when ``message`` is a JSON object with a str ``key``.

    Anything else gives ``None``, and per-message dispatch then hands the raw
    message to ``on_message``: binary, text that :func:`decode_json` refuses
    (not JSON, too deep, NaN...), JSON that is not an object, an object
    without a str ``key``. This function never raises.
    """
    # Looking at the first character avoids decoding text that cannot be an
    # object, without copying the message as lstrip() would.
    if not isinstance(message, str) or not message or message[0] not in _OBJECT_START:
        return None
    try:
        data = decode_json(message)
    except UndecodableMessage:
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
            JSON object with a known type (including everything
            :func:`decode_json` refuses); the reason says what was expected.
            Nothing else is raised.
    """
    if not isinstance(message, str):
        binary = f"first message must be JSON text with a {key!r} field, got binary"
        raise _rejection(CloseCode.UNSUPPORTED_DATA, binary, "binary")
    try:
        data = decode_json(message)
    except UndecodableMessage as exc:
        raise _rejection(CloseCode.POLICY_VIOLATION, f"first message {exc.problem}", "undecodable") from None
    if type(data) is not dict:
        raise _rejection(
            CloseCode.POLICY_VIOLATION, f"first message must be a JSON object with a {key!r} field", "not_object"
        )
    kind = data.get(key)
    if type(kind) is not str:
        raise _rejection(CloseCode.POLICY_VIOLATION, f"first message has no string {key!r} field", "no_type")
    target = choices.get(kind)
    if target is None:
        expected = ", ".join(sorted(choices))
        raise _rejection(
            CloseCode.POLICY_VIOLATION, f"unknown message type {kind!r} (expected: {expected})", "unknown_type"
        )
    return target, data


def _rejection(code: int, reason: str, kind: str) -> Rejection:
    return Rejection(int(code), fit_close_reason(reason), kind)
