"""wsroute.assembly: what websockets' serve() is given, built from the app's registrations at start-up."""

from __future__ import annotations

import pytest

import wsroute
from wsroute.session import Session
from wsroute.testing import serve_app


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def test_a_route_added_between_two_serves_is_served_the_second_time() -> None:
    """A registration after the app stopped makes the next start build the handshake again, with the new route."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/first", echo)
    async with serve_app(app) as server:
        assert await server.rejection("/second") == 404
    app.add_route("/second", echo)
    async with serve_app(app) as server, server.connect("/second") as ws:
        await ws.send("again")
        assert await ws.recv() == "again"


def test_stats_before_the_first_start_are_zero_with_the_configured_cap() -> None:
    """app.stats() before any start: no connection, no refusal, max_connections as configured."""
    app = wsroute.App(load_entrypoints=False, max_connections=7)
    stats = app.stats()
    assert (stats.open_connections, stats.max_connections, dict(stats.refusals)) == (0, 7, {})


def test_websockets_options_without_serving_name_the_session_and_chain_the_handshake() -> None:
    """websockets_options() builds the session (the handler) and process_request; no selector without lists."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", echo)
    kwargs = app.websockets_options({"max_size": 1024})
    assert isinstance(kwargs["handler"], Session)
    assert kwargs["max_size"] == 1024
    assert callable(kwargs["process_request"])
    assert "select_subprotocol" not in kwargs


def test_own_select_subprotocol_next_to_route_lists_is_refused() -> None:
    """A user's select_subprotocol= beside a route with subprotocols raises ConfigurationError naming it."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/chat", echo, subprotocols=["chat.v1"])
    with pytest.raises(wsroute.ConfigurationError, match=r"routes '/chat' declare subprotocols"):
        app.websockets_options({"select_subprotocol": lambda conn, offered: None})


async def test_a_failing_startup_hook_reopens_registration() -> None:
    """A plugin failing in wsroute_startup raises PluginError naming it, and the app accepts registrations again."""

    class Failing:
        @wsroute.hookimpl
        def wsroute_startup(self, app: wsroute.App) -> None:
            raise OSError("disk full")

    app = wsroute.App(load_entrypoints=False, plugins=[Failing()])
    app.add_route("/echo", echo)
    with pytest.raises(wsroute.PluginError, match=r"failed in wsroute_startup: OSError\('disk full'\)"):
        await app.startup()
    assert not app.serving
    app.add_route("/later", echo)
    assert [route.path for route in app.routes] == ["/echo", "/later"]
