"""The example third-party plugin, installed with pip, end to end through its entry point."""

from __future__ import annotations

import json

import pytest

import wsroute
from wsroute.testing import serve_app

# The example plugin is not in .venv (scripts/setup keeps it out): install it for these tests.
pytestmark = pytest.mark.usefixtures("hello_plugin")


async def test_hello_plugin_route_header_and_check_through_the_entry_point() -> None:
    """A plain App() serves /hello-plugin with its header, and /readyz runs its check."""
    app = wsroute.App()
    async with serve_app(app) as server:
        async with server.connect("/hello-plugin") as ws:
            assert ws.response.headers["X-Hello-Plugin"] == "hello"
            assert await ws.recv() == "hello from a plugin"
            await ws.send("you")
            assert await ws.recv() == "hello, you"
        ready = await server.http_get("/readyz")
    assert ready.status == 200
    assert json.loads(ready.body)["checks"]["hello-plugin"]["status"] == "pass"
    assert "/hello-plugin" in [route.path for route in app.routes]


async def test_hello_plugin_header_only_on_its_route() -> None:
    """The plugin's header is not added to other routes' handshakes."""
    app = wsroute.App()

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        pass

    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert "X-Hello-Plugin" not in ws.response.headers


async def test_hello_plugin_reads_its_settings() -> None:
    """App(settings={"hello-plugin": {"greeting": ...}}) changes the greeting and the header."""
    app = wsroute.App(settings={"hello-plugin": {"greeting": "hi"}})
    async with serve_app(app) as server, server.connect("/hello-plugin") as ws:
        assert ws.response.headers["X-Hello-Plugin"] == "hi"
        assert await ws.recv() == "hi from a plugin"


async def test_hello_plugin_invalid_setting_stops_start_up() -> None:
    """An invalid greeting stops start-up with a message naming the plugin."""
    app = wsroute.App(settings={"hello-plugin": {"greeting": "two\nlines"}})
    with pytest.raises(wsroute.PluginError, match="settings for plugin 'hello-plugin': 'greeting' must be"):
        async with serve_app(app):
            pass


async def test_hello_plugin_route_conflict_fails_start_up() -> None:
    """An app that already has /hello-plugin fails at start-up rather than silently picking one."""
    app = wsroute.App()

    @app.route("/hello-plugin")
    async def mine(ws: wsroute.Connection) -> None:
        pass

    with pytest.raises(wsroute.ConfigurationError):
        async with serve_app(app):
            pass
