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
from .handlers import Handler
from .routing import Pattern

__all__ = ["Route", "RouteGroup", "check_handler"]


def check_handler(path: str, handler: Any) -> None:
    """Accept an ``async def`` function or a :class:`Handler` subclass.

    Raises:
        HandlerError: naming the route and saying what is expected.
    """
    if isinstance(handler, type):
        if issubclass(handler, Handler):
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


@attrs.frozen(eq=False)
class Route:
    """One registered handler.

    Attributes:
        pattern: the parsed path pattern.
        handler: the ``async def`` function or ``Handler`` subclass, unchanged.
        message: the first-message type that selects this route, or ``None``.
        middleware: route-level middleware, run after the app's.
        bound: keyword arguments given to ``app.route(path, **bound)``.
        slow_consumer: the hub's slow-consumer policy for this route, or
            ``None`` for the app's default.
        trailing_slash: ``"optional"`` (the path also matches with one
            trailing ``/`` more or less) or ``"strict"`` (exact match only).
    """

    pattern: Pattern
    handler: Any
    message: str | None = None
    middleware: tuple[Callable[..., Any], ...] = ()
    bound: Mapping[str, Any] = attrs.field(factory=dict)
    slow_consumer: str | None = None
    trailing_slash: str = "optional"

    @property
    def path(self) -> str:
        return self.pattern.source

    @property
    def name(self) -> str:
        """What logs and task names call this route: ``/play[join]``."""
        return self.path if self.message is None else f"{self.path}[{self.message}]"

    @property
    def is_class(self) -> bool:
        return isinstance(self.handler, type)

    def __repr__(self) -> str:
        return f"<Route {self.name} -> {describe(self.handler)}>"


@attrs.define(eq=False)
class RouteGroup:
    """All routes on one path: one plain route, or several keyed by first message."""

    pattern: Pattern
    plain: Route | None = None
    by_message: dict[str, Route] = attrs.field(factory=dict)

    def add(self, route: Route) -> None:
        if route.message is None:
            if self.plain is not None or self.by_message:
                raise self._conflict(route)
            self.plain = route
            return
        if self.plain is not None or route.message in self.by_message:
            raise self._conflict(route)
        for other in self.by_message.values():
            if other.trailing_slash != route.trailing_slash:
                raise RouteError(
                    f"route {route.name!r}: trailing_slash={route.trailing_slash!r} differs from "
                    f"{other.trailing_slash!r} on route {other.name!r}; routes sharing a path are matched "
                    "before the first message chooses one, so give them the same trailing_slash"
                )
        if route.middleware:
            raise RouteError(
                f"route {route.name!r}: route-level middleware runs before the upgrade, when the "
                "first message is not known yet; register it with @app.middleware or check in on_connect"
            )
        self.by_message[route.message] = route

    def routes(self) -> list[Route]:
        return [self.plain] if self.plain is not None else list(self.by_message.values())

    def _conflict(self, route: Route) -> RouteError:
        existing = ", ".join(repr(r.name) for r in self.routes())
        return RouteError(
            f"route {route.name!r} conflicts with {existing}: a path is either routed by its first "
            "message (every route on it has a distinct message=) or has exactly one route"
        )
