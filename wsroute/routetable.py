"""What ``wsroute routes`` shows of each route: its name, handler, bindings and the options it sets itself.

The command is a thin shell over :func:`route_rows`, which a test or a
script may call as well::

    rows, problems = route_rows(app)      # after ``await app.configure()``
    rows[0]["name"], rows[0]["options"]   # 'echo', {'max_size': 65536}

A route's *own* options are the ones that differ from what the app gives
every route: ``subprotocols``, ``trailing_slash``, ``on_invalid_message`` when
they are not the app's, ``slow_consumer`` when set, the limits it sets itself
(``max_size``, ``message_rate``…), and ``router`` when a router, not the
app, registered it. Nothing is shown for what the route inherits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .callbacks import describe
from .di import bind
from .errors import ConfigurationError, DependencyError
from .limits import Rate
from .routes import Route

if TYPE_CHECKING:
    from .app import App

__all__ = ["COLUMNS", "options_text", "own_options", "route_rows"]

#: The table's columns, in order; every row has these keys.
COLUMNS = ("path", "name", "message", "handler", "middleware", "bound", "options")


def route_rows(app: App) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per route, and the reasons of the routes whose parameters cannot be bound.

    Every value of a row is a str except ``options``, a JSON-compatible dict
    (:func:`own_options`). ``bound`` is ``(error)`` for a route that cannot
    be bound (its reason is in the second list) — or ``(lifespan)`` when the
    app has a lifespan, whose values are known only once it runs.
    """
    rows, problems = [], []
    for route in app.routes:
        try:
            bound = _bound_names(app, route)
        except DependencyError as exc:
            if app.lifespan.factory is None:
                bound = "(error)"
                problems.append(str(exc))
            else:  # what the lifespan yields is known only once it runs, at start-up
                bound = "(lifespan)"
        except ConfigurationError as exc:
            bound = "(error)"
            problems.append(str(exc))
        rows.append({
            "path": route.path,
            "name": route.name,
            "message": _message_column(route),
            "handler": describe(route.handler),
            "middleware": ", ".join(describe(m) for m in route.middleware) or "-",
            "bound": bound or "-",
            "options": own_options(app, route),
        })
    return rows, problems


def own_options(app: App, route: Route) -> dict[str, Any]:
    """The options ``route`` sets itself, JSON-compatible: lists for subprotocols, text for rates."""
    options: dict[str, Any] = {}
    if route.subprotocols != app.subprotocols:
        options["subprotocols"] = list(route.subprotocols)
    if route.trailing_slash != app.trailing_slash:
        options["trailing_slash"] = route.trailing_slash
    if route.on_invalid_message != app.messages.on_invalid_message:
        options["on_invalid_message"] = route.on_invalid_message
    if route.slow_consumer is not None:
        options["slow_consumer"] = route.slow_consumer
    for name, value in route.limits.items():
        options[name] = str(value) if isinstance(value, Rate) else value
    if route.origin != "the app":
        options["router"] = route.origin
    return options


def options_text(options: dict[str, Any]) -> str:
    """``subprotocols=chat.v2|chat.v1, max_size=65536``, or ``-`` for none (the table's OPTIONS column)."""
    shown = [f"{name}={'|'.join(value) if isinstance(value, list) else value}" for name, value in options.items()]
    return ", ".join(shown) or "-"


def _message_column(route: Route) -> str:
    """``join``, or ``join (Join)`` when the first message is validated into a class."""
    kind = route.message_type
    if kind is None:
        return "-"
    cls = route.message_class
    return kind if cls is None else f"{kind} ({cls.__qualname__})"


def _bound_names(app: App, route: Route) -> str:
    binding = bind(route, app.provided, app.per_connection)
    keywords = getattr(binding.call, "keywords", {})
    names = [f"{name}={keywords[name]!r}"[:40] if name in route.bound else name for name in keywords]
    names += [f"{name}(per-connection)" for name in binding.scoped]
    return ", ".join(names)
