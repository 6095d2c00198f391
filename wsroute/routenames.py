"""Route names and reverse paths: ``@app.route(path, name=...)`` and ``app.url_path_for``.

Every route has a name: the one given with ``name=``, or by default its
handler's qualified name (``echo``, ``Room``, ``create_app.<locals>.echo``).
:class:`RouteNames` indexes them as routes are registered and builds paths
back from a name and parameters (:meth:`wsroute.routing.Pattern.build` does
the converting and percent-encoding), as Starlette's ``url_path_for`` does.

Given names are unique: a second route with the same ``name=`` is refused
when it is registered. Default names may repeat — one function serving two
paths is common — and only looking such a name up is an error, asking for
``name=``. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from typing import Any

from .errors import RouteError, URLPathError
from .routes import Route

__all__ = ["RouteNames", "default_name"]


def default_name(handler: Any) -> str:
    """A route's default name: the handler's qualified name."""
    return str(getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None) or repr(handler))


class RouteNames:
    """Name → routes, filled as routes are registered."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}

    def check(self, name: str | None, path: str, origin: str) -> None:
        """Refuse a given ``name`` that is empty, not a str, or already taken.

        Raises:
            RouteError: naming both routes and where each came from.
        """
        if name is None:
            return
        if not isinstance(name, str) or not name:
            raise RouteError(f"route {path!r}: name= must be a non-empty str (got {name!r})")
        taken = self._routes.get(name)
        if taken:
            other = taken[0]
            raise RouteError(
                f"route {path!r} ({origin}): name {name!r} is already the name of route {other.label!r} "
                f"({other.origin}); give one of them another name="
            )

    def add(self, route: Route) -> None:
        """Index ``route`` under its name (after :meth:`check` and a successful registration)."""
        self._routes.setdefault(route.name, []).append(route)

    def path_for(self, name: str, params: dict[str, Any]) -> str:
        """The path of the route called ``name`` with ``params`` (see ``App.url_path_for``).

        Raises:
            URLPathError: unknown name (with the nearest names), a default
                name shared by several routes, or parameters that do not fit.
        """
        routes = self._routes.get(name)
        if not routes:
            near = difflib.get_close_matches(str(name), list(self._routes), n=3)
            hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
            raise URLPathError(f"url_path_for({name!r}): no route is named {name!r}{hint}")
        if len(routes) > 1:
            paths = ", ".join(repr(route.label) for route in routes)
            raise URLPathError(
                f"url_path_for({name!r}): routes {paths} all have the default name {name!r}; "
                "give each @app.route(..., name=...) its own"
            )
        return routes[0].pattern.build(params, name)
