"""Route values: what a registration says, checked when it is made.

A :class:`Route` is one handler with its pattern, optional first-message type,
route-level middleware and bound arguments. Several routes may share a path
when each is keyed by a different first message; they form a
:class:`RouteGroup`, which is what the router stores per path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .callbacks import describe
from .errors import HandlerError, RouteError
from .handlers import Handler, check_handler_class
from .messages import MessageCodec, message_name
from .routing import Pattern

__all__ = ["Route", "RouteGroup", "check_handler", "message_codec"]


def check_handler(path: str, handler: Any) -> None:
    """Accept an ``async def`` function or a :class:`Handler` subclass with async methods.

    Raises:
        HandlerError: naming the route and saying what is expected.
    """
    if isinstance(handler, type):
        if issubclass(handler, Handler):
            check_handler_class(path, handler)
            return
        raise HandlerError(
            f"route {path!r}: class {describe(handler)} is not a wsroute.Handler subclass; "
            "subclass wsroute.Handler or use an 'async def handler(ws)' function"
        )
    if inspect.iscoroutinefunction(handler):
        return
    if callable(handler):
        raise HandlerError(
            f"route {path!r}: handler {describe(handler)} is not a coroutine function; "
            "define it with 'async def' (blocking code would stop every other connection)"
        )
    raise HandlerError(
        f"route {path!r}: {handler!r} is not a handler; expected 'async def' or a wsroute.Handler subclass"
    )


def message_codec(path: str, handler: Any, message: str | type | None, key: str) -> MessageCodec | None:
    """Decoders for a route's message classes (first message, typed ``@on``), built once at registration.

    Nothing is looked up per message afterwards. ``None`` when the route has
    no message class.

    Raises:
        RouteError: two classes with one wire name, or a class with a field
            named like ``key`` (the app's ``message_key``).
    """
    classes: list[type] = [message] if isinstance(message, type) else []
    if isinstance(handler, type) and issubclass(handler, Handler):
        classes += handler._wsroute_typed.values()
    if not classes:
        return None
    try:
        return MessageCodec.build(classes, key, f"route {path!r}")
    except TypeError as exc:
        raise RouteError(str(exc)) from None


@attrs.frozen(eq=False)
class Route:
    """One registered handler.

    Attributes:
        pattern: the parsed path pattern.
        handler: the ``async def`` function or ``Handler`` subclass, unchanged.
        message: the first-message type that selects this route: a wire name,
            a :func:`wsroute.message` class (the first message is validated
            into it), or ``None``.
        middleware: route-level middleware, run after the app's.
        bound: keyword arguments given to ``app.route(path, **bound)``.
        slow_consumer: the hub's slow-consumer policy for this route, or
            ``None`` for the app's default.
        trailing_slash: ``"optional"`` (the path also matches with one
            trailing ``/`` more or less) or ``"strict"`` (exact match only).
        subprotocols: the subprotocols this route negotiates, in order of
            preference; empty for none.
        on_invalid_message: what a typed ``@on`` message that fails
            validation gets: ``"reply"`` (an error message, the connection
            stays open) or ``"close"`` (1008 with the detail).
        codec: decoders for the route's message classes (first message and
            typed ``@on`` entries), built at registration; ``None`` when it
            has none.
        name: the name ``app.url_path_for(name, **params)`` finds it by;
            default: the handler's qualified name (``Room``, ``echo``).
        origin: who registered it, for conflict messages: ``"the app"`` or
            the router (``"Router(prefix='/chat')"``).
        limits: the limits this route sets itself (checked), the app's
            apply to the rest: ``{"message_rate": Rate(...), ...}``.
    """

    pattern: Pattern
    handler: Any
    message: str | type | None = None
    middleware: tuple[Callable[..., Any], ...] = ()
    bound: Mapping[str, Any] = attrs.field(factory=dict)
    slow_consumer: str | None = None
    trailing_slash: str = "optional"
    subprotocols: tuple[str, ...] = ()
    on_invalid_message: str = "reply"
    codec: MessageCodec | None = None
    name: str = ""
    origin: str = "the app"
    limits: Mapping[str, Any] = attrs.field(factory=dict)
    label: str = attrs.field(init=False)
    """What logs, task names and metrics call this route: ``/play[join]`` (``name`` is the reverse-lookup name).

    Computed once (it is read on every counted handshake and connection)."""

    def __attrs_post_init__(self) -> None:
        kind = self.message_type
        object.__setattr__(self, "label", self.path if kind is None else f"{self.path}[{kind}]")

    @property
    def path(self) -> str:
        return self.pattern.source

    @property
    def message_type(self) -> str | None:
        """The wire name of the first message that selects this route (``"join"``), or ``None``."""
        if self.message is None or isinstance(self.message, str):
            return self.message
        return message_name(self.message)

    @property
    def message_class(self) -> type | None:
        """The class the first message is validated into, or ``None`` (untyped or not message-routed)."""
        return self.message if isinstance(self.message, type) else None

    @property
    def is_class(self) -> bool:
        return isinstance(self.handler, type)

    def __repr__(self) -> str:
        return f"<Route {self.label} -> {describe(self.handler)}>"


@attrs.define(eq=False)
class RouteGroup:
    """All routes on one path: one plain route, or several keyed by first message.

    ``subprotocols`` is negotiated in the handshake, before a first message
    can choose a route, so it belongs to the path: every route on it agrees.
    """

    pattern: Pattern
    plain: Route | None = None
    by_message: dict[str, Route] = attrs.field(factory=dict)
    subprotocols: tuple[str, ...] = ()

    def add(self, route: Route) -> None:
        kind = route.message_type
        if kind is None:
            if self.plain is not None or self.by_message:
                raise self._conflict(route)
            self.plain = route
            self.subprotocols = route.subprotocols
            return
        if self.plain is not None or kind in self.by_message:
            raise self._conflict(route)
        if route.middleware:
            raise RouteError(
                f"route {route.label!r}: route-level middleware runs before the upgrade, when the "
                "first message is not known yet; register it with @app.middleware or check in on_connect"
            )
        for other in self.by_message.values():
            _check_handshake_options_agree(route, other)
        self.by_message[kind] = route
        self.subprotocols = route.subprotocols

    def routes(self) -> list[Route]:
        return [self.plain] if self.plain is not None else list(self.by_message.values())

    def _conflict(self, route: Route) -> RouteError:
        existing = ", ".join(repr(r.label) for r in self.routes())
        return RouteError(
            f"route {route.label!r} conflicts with {existing}: a path is either routed by its first "
            "message (every route on it has a distinct message=) or has exactly one route"
        )


def _check_handshake_options_agree(route: Route, other: Route) -> None:
    """Routes keyed by first message share one handshake, so they share what it decides."""
    for option in ("trailing_slash", "subprotocols", "limits"):
        mine, theirs = getattr(route, option), getattr(other, option)
        if mine != theirs:
            shown = (list(mine), list(theirs)) if isinstance(mine, tuple) else (mine, theirs)
            raise RouteError(
                f"route {route.label!r}: {option}={shown[0]!r} differs from {shown[1]!r} on route {other.label!r}; "
                f"the handshake decides it before the first message chooses a route, so give every route on "
                f"{route.path!r} the same {option}"
            )
