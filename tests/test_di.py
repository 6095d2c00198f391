"""wsroute.di: each handler parameter is resolved once, by name, and bound with functools.partial."""

from __future__ import annotations

import functools

import attrs
import pytest

import wsroute
from wsroute.di import bind
from wsroute.errors import DependencyError, HandlerError
from wsroute.routes import Route
from wsroute.routing import DEFAULT_CONVERTERS, Pattern
from wsroute.testing import serve_app


def route(path: str, handler, **bound) -> Route:
    return Route(Pattern.parse(path, DEFAULT_CONVERTERS), handler, bound=bound)


def test_path_parameters_are_passed_per_connection_and_the_rest_bound_once() -> None:
    """Path names are listed for each connection; provided and route values are bound in a partial."""

    async def handler(ws, room, db, cache):
        pass

    binding = bind(route("/rooms/{room}", handler, cache="route"), {"db": "app", "cache": "app"})
    assert binding.path_args == ("room",)
    assert isinstance(binding.call, functools.partial)
    assert binding.call.func is handler
    assert binding.call.keywords == {"db": "app", "cache": "route"}


def test_a_handler_needing_nothing_is_not_wrapped() -> None:
    """Without values to bind, the handler itself is called (no partial)."""

    async def handler(ws, room):
        pass

    binding = bind(route("/rooms/{room}", handler), {"db": 1})
    assert binding.call is handler
    assert binding.path_args == ("room",)


def test_defaults_fill_what_nothing_provides() -> None:
    """A parameter with a default needs no provider; a provided value overrides the default."""

    async def handler(ws, retries=3, db=None):
        pass

    binding = bind(route("/x", handler), {"db": "app"})
    assert binding.call.keywords == {"db": "app"}


def test_var_keyword_handler_receives_every_path_parameter_and_bound_value() -> None:
    """A handler with **kwargs gets all path parameters per connection and every route-bound value."""

    async def handler(ws, **kwargs):
        pass

    binding = bind(route("/a/{x}/{y}", handler, extra=1), {})
    assert binding.path_args is None
    assert binding.call.keywords == {"extra": 1}


def test_handler_class_fields_are_bound_like_parameters() -> None:
    """An attrs Handler class gets its fields from providers; the class itself is wrapped."""

    @attrs.define
    class Room(wsroute.Handler):
        db: str

    binding = bind(route("/rooms/{room}", Room), {"db": "app-db"})
    assert binding.call.func is Room
    assert binding.call.keywords == {"db": "app-db"}


@pytest.mark.parametrize(
    ("path", "params", "bound", "error", "fragment"),
    [
        ("/x", "ws, db", {}, DependencyError, "parameter 'db' of"),
        ("/x", "ws", {"cache": 1}, DependencyError, "app.route(..., cache=...) is bound but"),
        ("/x", "*, ws", {}, HandlerError, "must take the connection as its first positional parameter"),
    ],
)
def test_mistakes_name_the_route_and_the_fix(path, params, bound, error, fragment) -> None:
    """A missing source, an unused bound value and a handler without a connection parameter are refused."""
    namespace: dict = {}
    exec(f"async def handler({params}):\n    pass\n", namespace)
    with pytest.raises(error) as info:
        bind(route(path, namespace["handler"], **bound), {})
    assert str(info.value).startswith(f"route {path!r}: ")
    assert fragment in str(info.value)


async def test_bound_values_are_shared_by_every_connection() -> None:
    """A provided object is bound once: every connection's handler receives the very same object."""
    seen: list[object] = []
    shared = object()
    app = wsroute.App(load_entrypoints=False)
    app.provide(shared=shared)

    @app.route("/x/{n:int}")
    async def x(ws, n, shared):
        seen.append((n, shared))
        await ws.send(str(n))

    async with serve_app(app) as server:
        for n in (1, 2):
            async with server.connect(f"/x/{n}") as ws:
                assert await ws.recv() == str(n)
    assert seen == [(1, shared), (2, shared)]
