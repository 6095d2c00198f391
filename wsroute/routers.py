"""Routers: groups of routes with a path prefix and their own middleware.

As FastAPI's ``APIRouter`` and Starlette's ``Mount`` do, a router lets a
module declare its routes without the app, then the app includes it::

    chat = wsroute.Router(prefix="/chat", middleware=[require_user])

    @chat.route("/{room}")
    class Room(wsroute.Handler): ...

    app.include_router(chat)          # serves /chat/{room}

Routers may include routers; prefixes join (``/api`` + ``/chat`` + ``/{room}``)
and middleware runs outermost first: the app's, then the outer router's, the
inner router's, and the route's own. A router only records; everything is
checked when the app includes it, exactly as ``@app.route`` checks, and a
conflict names the router each route came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import attrs

from .errors import ConfigurationError, RouteError

__all__ = ["IncludedRoute", "Router"]

H = TypeVar("H")
M = TypeVar("M", bound=Callable[..., Any])


@attrs.frozen
class IncludedRoute:
    """One route as the app will register it: full path, all middleware, where it came from."""

    path: str
    handler: Any
    middleware: tuple[Callable[..., Any], ...]
    options: dict[str, Any]
    origin: str


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or (prefix and (not prefix.startswith("/") or prefix.endswith("/"))):
        raise ConfigurationError(
            f"Router(prefix={prefix!r}): expected '' or a path starting with '/' and not ending with '/' "
            "such as '/chat'"
        )
    return prefix


class Router:
    """Routes under one path prefix, with middleware of their own.

    Args:
        prefix: prepended to every route path (``""`` or ``"/chat"``).
        middleware: run for every route of this router (and of the routers
            it includes), after the app's and outer routers' middleware.

    Raises:
        ConfigurationError: a prefix that is not ``""`` or ``/segment...``
            without a trailing slash; middleware that is not callable.
    """

    def __init__(self, prefix: str = "", middleware: Iterable[Callable[..., Any]] = ()) -> None:
        self.prefix = _check_prefix(prefix)
        self._middleware: list[Callable[..., Any]] = []
        self._routes: list[tuple[str, Any, dict[str, Any]]] = []
        self._routers: list[tuple[Router, str]] = []
        for item in middleware:
            self.middleware(item)

    def route(self, path: str, **options: Any) -> Callable[[H], H]:
        """Register the decorated handler for ``prefix + path``; options as ``@app.route``.

        Raises:
            TypeError: used without parentheses (``@router.route``).
        """
        if not isinstance(path, str):
            raise TypeError(
                f"@router.route needs a path: write @router.route('/path'), not @router.route (got {path!r})"
            )

        def register(handler: H) -> H:
            self.add_route(path, handler, **options)
            return handler

        return register

    def add_route(self, path: str, handler: Any, **options: Any) -> None:
        """Record ``handler`` for ``prefix + path`` (what ``@router.route`` calls)."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise RouteError(f"router {self!r}: route {path!r} must be a str starting with '/'")
        self._routes.append((path, handler, dict(options)))

    def middleware(self, func: M) -> M:
        """Register middleware for every route of this router."""
        if not callable(func):
            raise ConfigurationError(
                f"router {self!r}: middleware {func!r} is not callable; expected (conn, request) -> Response | None"
            )
        self._middleware.append(func)
        return func

    def include_router(self, router: Router, *, prefix: str = "") -> None:
        """Include ``router``'s routes under this router (``prefix`` joins in front of its own).

        Raises:
            ConfigurationError: including a router in itself (directly or not).
        """
        if router is self or self in router._descendants():
            raise ConfigurationError(f"router {router!r} cannot include itself")
        self._routers.append((router, _check_prefix(prefix)))

    def _descendants(self) -> Iterator[Router]:
        for child, _ in self._routers:
            yield child
            yield from child._descendants()

    def included_routes(self, outer_middleware: tuple[Callable[..., Any], ...] = ()) -> Iterator[IncludedRoute]:
        """Every route with its full path and middleware chain (outermost first), in order."""
        middleware = outer_middleware + tuple(self._middleware)
        for path, handler, options in self._routes:
            options = dict(options)
            own = tuple(options.pop("middleware", ()))
            yield IncludedRoute(self.prefix + path, handler, middleware + own, options, repr(self))
        for child, prefix in self._routers:
            for route in child.included_routes(middleware):
                yield attrs.evolve(route, path=self.prefix + prefix + route.path)

    def __repr__(self) -> str:
        return f"Router(prefix={self.prefix!r})"
