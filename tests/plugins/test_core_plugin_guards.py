"""Core guards around plugins: header injection and misspelt settings names."""

from __future__ import annotations

import logging

import pytest

import wsroute
from wsroute import PluginError
from wsroute.testing import serve_app


async def echo(ws):
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nSet-Cookie: stolen=1"},
        {"Bad Name": "x"},
        [("X-Ok", 3)],
        ["not-a-pair"],
    ],
)
async def test_invalid_extra_header_answers_500_naming_the_plugin(caplog, headers) -> None:
    """A header that is not valid HTTP is never sent: 500 for that request, logged with the plugin name."""

    class Injector:
        @wsroute.hookimpl
        def wsroute_extra_headers(self, app, conn, request, response):
            return headers

    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", echo)
    app.plugins.register(Injector(), "injector")
    caplog.set_level(logging.ERROR)
    async with serve_app(app) as server:
        answer = await server.http_get(
            "/echo",
            headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                     "Sec-WebSocket-Version": "13"},
        )
    assert answer.status == 500
    assert "set-cookie" not in answer.headers
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("plugin 'injector' returned a bad extra header")


async def test_valid_extra_headers_reach_the_101() -> None:
    """Valid headers from a plugin appear on the handshake response."""

    class Adder:
        @wsroute.hookimpl
        def wsroute_extra_headers(self, app, conn, request, response):
            return [("X-A", "1"), ("X-B", "two words")]

    app = wsroute.App(load_entrypoints=False, plugins=[Adder()])
    app.add_route("/echo", echo)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["X-A"] == "1"
        assert ws.response.headers["X-B"] == "two words"


async def test_settings_for_an_unknown_plugin_name_fail_at_start_up() -> None:
    """Settings under a name no plugin reads stop start-up, naming it and the loaded plugins."""
    app = wsroute.App(load_entrypoints=False, settings={"wsroute-helth": {"timeout": 1}})
    app.add_route("/echo", echo)
    with pytest.raises(PluginError) as info:
        async with serve_app(app):
            pass
    assert str(info.value).startswith(
        "App(settings={'wsroute-helth': ...}): no loaded plugin reads settings named 'wsroute-helth' (loaded plugins: "
    )
    assert str(info.value).endswith("check the name or install the plugin")


async def test_settings_for_a_blocked_plugin_are_ignored() -> None:
    """Blocking a plugin does not turn its settings into an error."""
    app = wsroute.App(
        load_entrypoints=False, disable_plugins=["wsroute-health"], settings={"wsroute-health": {"x": 1}}
    )
    app.add_route("/echo", echo)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"
