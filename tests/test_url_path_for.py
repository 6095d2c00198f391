"""Reverse paths: ``@app.route(path, name=...)`` and ``app.url_path_for(name, **params)``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import wsroute
from wsroute.errors import RouteError, URLPathError
from wsroute.testing import TestClient


async def report(ws: wsroute.Connection, **params: Any) -> None:
    """Send the path parameters as the route received them, with their types."""
    await ws.send_json({name: [str(value), type(value).__name__] for name, value in params.items()})


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)
    app.route("/rooms/{room}/{n:int}", name="room")(report)
    app.route("/things/{id:uuid}", name="thing")(report)
    app.route("/files/{rest:path}", name="file")(report)
    app.route("/café/lobby", name="lobby")(report)
    return app


def test_paths_are_built_with_converters_and_percent_encoding() -> None:
    """Values go through each converter in reverse and every segment is percent-encoded."""
    app = make_app()
    thing = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert app.url_path_for("room", room="tea & cake/2", n=3) == "/rooms/tea%20&%20cake%2F2/3"
    assert app.url_path_for("thing", id=thing) == f"/things/{thing}"
    assert app.url_path_for("file", rest="a b/c.txt") == "/files/a%20b/c.txt"
    assert app.url_path_for("lobby") == "/caf%C3%A9/lobby"


def test_a_built_path_routes_back_to_the_same_route_and_values() -> None:
    """A real client connecting to url_path_for()'s result reaches the route with the original values."""
    app = make_app()
    with TestClient(app) as client:
        with client.websocket_connect(app.url_path_for("room", room="tea & cake/2", n=3)) as ws:
            assert ws.receive_json() == {"room": ["tea & cake/2", "str"], "n": ["3", "int"]}
        with client.websocket_connect(app.url_path_for("file", rest="dir/ü.txt")) as ws:
            assert ws.receive_json() == {"rest": ["dir/ü.txt", "str"]}


def test_default_name_is_the_handlers_qualified_name() -> None:
    """Without name= a route is found by its handler's __qualname__, a Handler class too."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None: ...

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        pass

    assert app.url_path_for(echo.__qualname__) == "/echo"
    assert app.url_path_for(Room.__qualname__, room="x") == "/rooms/x"
    assert [route.name for route in app.routes] == [echo.__qualname__, Room.__qualname__]


def test_unknown_name_suggests_the_nearest() -> None:
    """A misspelt name raises URLPathError naming the close match."""
    with pytest.raises(URLPathError, match=r"no route is named 'rom'; did you mean 'room'"):
        make_app().url_path_for("rom", room="x", n=1)


def test_missing_and_unknown_parameters_are_named() -> None:
    """A missing parameter, then an unknown one, each raise URLPathError naming it and the route."""
    app = make_app()
    with pytest.raises(URLPathError, match=r"route '/rooms/\{room\}/\{n:int\}' takes 'room', 'n'; missing 'n'"):
        app.url_path_for("room", room="x")
    with pytest.raises(URLPathError, match="unknown 'colour'"):
        app.url_path_for("room", room="x", n=1, colour="red")


def test_a_value_the_converter_would_refuse_is_an_error() -> None:
    """-1 for an int parameter (and an empty str) cannot round-trip, so building refuses it."""
    app = make_app()
    with pytest.raises(URLPathError, match=r"n=-1 gives '-1', which the 'int' converter"):
        app.url_path_for("room", room="x", n=-1)
    with pytest.raises(URLPathError, match="room=''"):
        app.url_path_for("room", room="", n=1)


def test_given_names_are_unique_and_shared_default_names_are_ambiguous() -> None:
    """Two routes given one name fail at registration; one handler on two paths must be named to be found."""
    app = make_app()
    with pytest.raises(RouteError, match=r"name 'room' is already the name of route '/rooms/\{room\}/\{n:int\}'"):
        app.route("/other", name="room")(report)
    app.route("/a")(report)
    app.route("/b")(report)
    with pytest.raises(URLPathError, match="all have the default name"):
        app.url_path_for(report.__qualname__)


def test_label_is_the_log_name_and_name_the_lookup_name() -> None:
    """Route.label keeps the /path[message] form for logs; Route.name is the reverse-lookup name."""
    app = wsroute.App(load_entrypoints=False)
    route = app.add_route("/play", report, message="join", name="join")
    assert (route.label, route.name) == ("/play[join]", "join")


def test_a_path_the_server_would_refuse_is_not_built() -> None:
    """Values giving a dot segment or a control character raise instead of building a path that gets 400."""
    app = make_app()
    with pytest.raises(URLPathError, match=r"would be refused by the server \(400\)"):
        app.url_path_for("room", room="..", n=1)
    with pytest.raises(URLPathError, match="control character"):
        app.url_path_for("room", room="a\nb", n=1)
    with pytest.raises(URLPathError, match="dot segment"):
        app.url_path_for("file", rest="a/../etc/passwd")
