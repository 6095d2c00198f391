"""Typed messages: attrs classes named on the wire, decoded and validated in one step.

A message class is an attrs class with a wire name::

    @wsroute.message("move")
    @attrs.frozen
    class Move:
        x: int
        y: int

On the wire it is a JSON object whose type field (``"type"`` unless
``App(message_key=...)`` says otherwise) holds the name, beside the fields:
``{"type": "move", "x": 1, "y": 2}``.

Decoding and validation are one call into `msgspec <https://jcristharif.com/msgspec/>`_,
which supports attrs classes natively: a :class:`MessageCodec` is built once
per route at start-up (one decoder per message class, plus a decoder that reads
only the type field), so a message costs two C-level passes and no Python
reflection. msgspec cannot put several attrs classes in one tagged union
(it allows one dataclass-like type per union), hence the short first pass that
reads the type field and skips the rest.

This module is pure: it never touches a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs
import msgspec

from .callbacks import describe
from .dispatch import UndecodableMessage, decode_json, maybe_too_deep
from .jsonutil import MESSAGE_NAME_ATTR, check_type_field, encode_json

__all__ = [
    "InvalidMessage",
    "MessageCodec",
    "MessageDecoder",
    "error_reply",
    "is_message_class",
    "message",
    "message_name",
]

C = TypeVar("C", bound=type)

_NAME_ATTR = MESSAGE_NAME_ATTR



def message(name: str) -> Callable[[C], C]:
    """Name an attrs class as a message type on the wire.

    Args:
        name: the value of the type field, e.g. ``"move"``.

    Returns:
        A class decorator; it returns the class unchanged (marked).

    Raises:
        TypeError: ``name`` is not a non-empty str, the class is not an attrs
            class (apply ``@attrs.frozen`` or ``@attrs.define`` first, i.e.
            *below* ``@wsroute.message``), or the class already has another name.

    Example::

        @wsroute.message("join")
        @attrs.frozen
        class Join:
            name: str
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"@wsroute.message() needs a non-empty str name (got {name!r})")

    def mark(cls: C) -> C:
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise TypeError(
                f"@wsroute.message({name!r}): {describe(cls)} is not an attrs class; put @attrs.frozen "
                "(or @attrs.define) below @wsroute.message so that it is applied first"
            )
        existing = cls.__dict__.get(_NAME_ATTR)
        if existing is not None and existing != name:
            raise TypeError(
                f"@wsroute.message({name!r}): {describe(cls)} is already the message {existing!r}; "
                "a class has one name on the wire"
            )
        setattr(cls, _NAME_ATTR, name)
        return cls  # type: ignore[return-value]  # attrs.has() narrows C to an attrs type

    return mark


def message_name(cls: Any) -> str | None:
    """The wire name given by :func:`message`, or ``None`` (subclasses do not inherit it)."""
    return cls.__dict__.get(_NAME_ATTR) if isinstance(cls, type) else None


def is_message_class(obj: Any) -> bool:
    """Whether ``obj`` is a class decorated with :func:`message`."""
    return message_name(obj) is not None


def check_message_class(cls: Any, key: str, where: str) -> str:
    """Return the wire name of ``cls``, refusing classes that cannot be sent as ``key``-tagged objects.

    Raises:
        TypeError: not a :func:`message` class, or one of its fields is named
            like the type field (the two would collide on the wire).
    """
    name = message_name(cls)
    if name is None:
        raise TypeError(f"{where}: {describe(cls)} is not a message class; decorate it with @wsroute.message('name')")
    check_type_field(cls, key, where)
    return name


@attrs.frozen
class InvalidMessage(Exception):
    """A message of a known type whose payload does not fit its class.

    Attributes:
        message_type: the wire name that was asked for (``"move"``).
        detail: what was wrong, with the field path (msgspec's wording:
            ``"Expected `int`, got `str` - at `$.x`"``).
    """

    message_type: str
    detail: str

    def __str__(self) -> str:
        return f"invalid {self.message_type!r} message: {self.detail}"


# -- encoding ------------------------------------------------------------------------------------


def error_reply(exc: InvalidMessage, key: str = "type") -> str:
    """The JSON text answering an invalid typed message, the connection staying open.

    ``{"type": "error", "for": "move", "detail": "Expected `int`, got `str` - at `$.x`"}``
    (``key`` replaces ``"type"``).
    """
    return encode_json({key: "error", "for": exc.message_type, "detail": exc.detail})


# -- decoding ------------------------------------------------------------------------------------


def _envelope_decoder(key: str) -> msgspec.json.Decoder[Any]:
    """A decoder that reads only the ``key`` field (as a str) and skips the rest."""
    envelope = msgspec.defstruct("Envelope", [("kind", str)], rename={"kind": key})
    return msgspec.json.Decoder(envelope)


@attrs.frozen
class MessageCodec:
    """Decode-and-validate for the message types one route knows; built at start-up.

    Attributes:
        key: the type field.
        typed: wire name → decoder of its attrs class.

    Every method returns a value or raises a documented exception; decoder
    failures of any kind (malformed JSON, recursion depth, numbers out of
    range) never escape as anything else.
    """

    key: str
    typed: Mapping[str, msgspec.json.Decoder[Any]]
    _envelope: msgspec.json.Decoder[Any]

    @classmethod
    def build(cls, classes: Iterable[type], key: str = "type", where: str = "route") -> MessageCodec:
        """One decoder per class; two classes with one wire name fail here.

        Raises:
            TypeError: a class is not a message class, collides with ``key``,
                or shares its wire name with another class.
        """
        typed: dict[str, msgspec.json.Decoder[Any]] = {}
        owners: dict[str, type] = {}
        for klass in classes:
            name = check_message_class(klass, key, where)
            other = owners.get(name)
            if other is not None and other is not klass:
                raise TypeError(
                    f"{where}: {describe(other)} and {describe(klass)} are both the message {name!r}; "
                    "give each class its own name"
                )
            owners[name] = klass
            typed[name] = msgspec.json.Decoder(klass)
        return cls(key, typed, _envelope_decoder(key))

    def kind(self, data: str | bytes) -> str | None:
        """The str type field of a JSON object, or ``None`` for anything else.

        ``None`` also for every text :func:`~wsroute.dispatch.decode_json`
        refuses (``NaN``, nesting deeper than ``MAX_JSON_DEPTH``…), so typed
        and untyped dispatch agree on what counts as a message.
        """
        if maybe_too_deep(data):  # rare: long and bracket-heavy; the envelope skips nested values
            try:
                decode_json(data)
            except UndecodableMessage:
                return None
        try:
            envelope = self._envelope.decode(data)
        except Exception:  # msgspec.DecodeError/ValidationError, RecursionError: not a typed message
            return None
        kind: str = getattr(envelope, "kind")  # noqa: B009 - the field is renamed on the wire
        return kind

    def decode(self, kind: str, data: str | bytes) -> Any:
        """Decode ``data`` as the class registered for ``kind``.

        Raises:
            InvalidMessage: the payload does not fit the class.
            KeyError: ``kind`` is not a typed name of this codec.
        """
        decoder = self.typed[kind]
        try:
            return decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise InvalidMessage(kind, str(exc)) from None
        except Exception as exc:  # RecursionError and the like: still the client's payload
            raise InvalidMessage(kind, _describe_failure(exc)) from None


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    return str(exc) or type(exc).__name__


class MessageDecoder:
    """Decode and validate typed messages in a function handler (what ``@on`` does in a Handler).

    Args:
        *classes: message classes (decorated with :func:`message`).
        key: the type field (use the app's ``message_key``).

    Example::

        decoder = wsroute.MessageDecoder(Move, Join)

        @app.route("/play")
        async def play(ws):
            async for raw in ws:
                try:
                    msg = decoder.decode(raw)          # a Move or a Join
                except wsroute.InvalidMessage as exc:
                    await ws.send_json({"type": "error", "for": exc.message_type, "detail": exc.detail})
                    continue
                ...

    Raises:
        TypeError: at construction, as :meth:`MessageCodec.build`.
    """

    def __init__(self, *classes: type, key: str = "type") -> None:
        if not classes:
            raise TypeError("MessageDecoder() needs at least one message class")
        self._codec = MessageCodec.build(classes, key, "MessageDecoder()")

    def decode(self, data: str | bytes) -> Any:
        """Return an instance of the class named by ``data``'s type field.

        Raises:
            InvalidMessage: not a JSON object with a str type field naming one
                of the classes (``message_type`` is ``""`` when no type could
                be read), or a payload that does not fit.
        """
        kind = self._codec.kind(data)
        if kind is None:
            raise InvalidMessage("", f"expected a JSON object with a string {self._codec.key!r} field")
        if kind not in self._codec.typed:
            expected = ", ".join(sorted(self._codec.typed))
            raise InvalidMessage(kind, f"unknown message type {kind!r} (expected: {expected})")
        return self._codec.decode(kind, data)
