"""wsroute-headers against a real server: configured headers, Server, validation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import wsroute_headers
import wsroute_health

import wsroute
from wsroute.testing import serve_app


def make_app(*plugins: object, **settings: Any) -> wsroute.App:
    """An app with exactly wsroute-headers and ``plugins`` (no entry points), an /echo and a /private route."""
    app = wsroute.App(
        load_entrypoints=False,
        plugins=[wsroute_headers, *plugins],
        settings={"wsroute-headers": settings} if settings else None,
    )

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    async def deny(conn: wsroute.Connection, request: wsroute.Request) -> wsroute.Response:
        return conn.respond(401, "no\n")

    @app.route("/private", middleware=[deny])
    async def private(ws: wsroute.Connection) -> None:
        pass

    return app


class Extra:
    """Another plugin adding a header through wsroute_extra_headers."""

    @wsroute.hookimpl
    def wsroute_extra_headers(self, request: wsroute.Request) -> list[tuple[str, str]]:
        return [("X-Other", "from another plugin")]


async def test_no_settings_changes_nothing() -> None:
    """Unconfigured, the plugin registers no per-request hook and websockets' Server header stays."""
    app = make_app()
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["Server"].startswith("Python/")
    assert [p.name for p in app.plugins.list() if p.name.startswith("wsroute-headers")] == []
    assert not app.plugins.implemented("wsroute_extra_headers")


async def test_configured_headers_on_the_101_response() -> None:
    """A WebSocket client sees the configured headers on the 101 response."""
    app = make_app(headers={"X-Frame-Options": "DENY", "Cache-Control": "no-store"})
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["X-Frame-Options"] == "DENY"
        assert ws.response.headers["Cache-Control"] == "no-store"
        await ws.send("still a WebSocket")
        assert await ws.recv() == "still a WebSocket"


async def test_configured_headers_on_rejections() -> None:
    """404 and middleware rejections carry the configured headers too."""
    async with serve_app(make_app(headers={"X-Frame-Options": "DENY"})) as server:
        missing = await server.http_get("/nowhere")
        refused = await server.http_get("/private")
    assert (missing.status, missing.headers["x-frame-options"]) == (404, "DENY")
    assert (refused.status, refused.headers["x-frame-options"]) == (401, "DENY")


async def test_configured_header_replaces_an_existing_one() -> None:
    """A configured header replaces one already in the response (wsroute-health's Cache-Control), not appends."""
    app = make_app(wsroute_health, headers={"Cache-Control": "max-age=5"})
    async with serve_app(app) as server:
        head = await _raw_get(server.port, "/healthz")
    assert head.count("cache-control:") == 1
    assert "cache-control: max-age=5" in head


async def test_list_value_sends_the_header_once_per_value() -> None:
    """A list value gives one header line per item."""
    app = make_app(headers={"Link": ["</a>; rel=preload", "</b>; rel=preload"]})
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers.get_all("Link") == ["</a>; rel=preload", "</b>; rel=preload"]


async def test_server_header_is_replaced() -> None:
    """server="name" replaces websockets' Server header (exactly one)."""
    async with serve_app(make_app(server="chat-gateway")) as server, server.connect("/echo") as ws:
        assert ws.response.headers.get_all("Server") == ["chat-gateway"]


async def test_server_header_is_removed() -> None:
    """server=False sends no Server header, on the 101 and on rejections."""
    async with serve_app(make_app(server=False)) as server:
        async with server.connect("/echo") as ws:
            assert "Server" not in ws.response.headers
        assert "server" not in (await server.http_get("/nowhere")).headers


async def test_other_plugins_add_headers_alongside() -> None:
    """Headers returned by another plugin's wsroute_extra_headers are added next to the configured ones."""
    app = make_app(Extra(), headers={"X-Frame-Options": "DENY"})
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["X-Other"] == "from another plugin"
        assert ws.response.headers["X-Frame-Options"] == "DENY"


async def test_loaded_from_its_entry_point() -> None:
    """A plain App() loads the plugin by entry point and applies its settings."""
    app = wsroute.App(settings={"wsroute-headers": {"headers": {"X-Served-By": "wsroute"}}})
    assert "wsroute-headers" in {p.name for p in app.plugins.list()}

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        pass

    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["X-Served-By"] == "wsroute"
    names = {p.name: p for p in app.plugins.list()}
    assert names["wsroute-headers.response"].hooks == ("wsroute_extra_headers",)


async def test_raising_header_plugin_answers_500_for_that_request_only(caplog: pytest.LogCaptureFixture) -> None:
    """A header hook that raises answers 500 for one handshake, logged once with its plugin name."""

    class Flaky:
        calls = 0

        @wsroute.hookimpl
        def wsroute_extra_headers(self) -> None:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")

    app = make_app(server="x")
    app.plugins.register(Flaky(), "flaky")
    async with serve_app(app) as server:
        assert await server.rejection("/echo") == 500
        async with server.connect("/echo") as ws:
            assert ws.response.headers["Server"] == "x"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["plugin 'flaky' failed in wsroute_extra_headers; answered 500"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X Bad": "1"}, "header name 'X Bad' is not a valid HTTP header name"),
        ({"X-Bad:": "1"}, "header name 'X-Bad:' is not a valid HTTP header name"),
        ({"X-Bad\r\nSet-Cookie": "1"}, "is not a valid HTTP header name"),
        ({"": "1"}, "header name '' is not a valid HTTP header name"),
        ({"X-Bad": "1\r\nSet-Cookie: a=b"}, "value of header 'X-Bad' contains CR or LF"),
        ({"X-Bad": "a\nb"}, "value of header 'X-Bad' contains CR or LF"),
        ({"X-Bad": "a\x00b"}, "value of header 'X-Bad' contains a control character"),
        ({"X-Bad": "snow\u2603man"}, "outside Latin-1"),
        ({"X-Bad": 1}, "value of header 'X-Bad' must be a str (got 1 that is a <int>)"),
        ({"X-Bad": []}, "header 'X-Bad' has an empty list of values"),
        ({"Connection": "keep-alive"}, "header 'Connection' is managed by the WebSocket handshake"),
        ({"sec-websocket-accept": "x"}, "header 'sec-websocket-accept' is managed by the WebSocket handshake"),
        ({"Server": "x"}, "set the Server header with the 'server' setting"),
        ({"X-A": "1", "x-a": "2"}, "header 'x-a' is configured twice"),
    ],
)
async def test_invalid_headers_are_rejected_at_configuration(headers: dict[str, Any], message: str) -> None:
    """Invalid header names or values stop start-up (wsroute_configure) with a message naming the plugin."""
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(make_app(headers=headers)):
            pass
    assert "settings for plugin 'wsroute-headers'" in str(info.value)
    assert message in str(info.value)
    assert "failed in wsroute_configure" in str(info.value)


@pytest.mark.parametrize("server", ["", 0, True, "a\r\nb", ["x"]])
async def test_invalid_server_setting_is_rejected(server: Any) -> None:
    """server must be None, False or a valid non-empty value."""
    with pytest.raises(wsroute.PluginError, match="'wsroute-headers'"):
        async with serve_app(make_app(server=server)):
            pass


async def test_headers_setting_must_be_a_dict() -> None:
    """headers given as a list of strings is rejected with the expected shape."""
    with pytest.raises(wsroute.PluginError, match=r"'headers' must be a dict \{name: value\}"):
        async with serve_app(make_app(headers=["X-A: 1"])):
            pass


async def test_unknown_setting_key_is_rejected() -> None:
    """A typo in a setting key names the plugin and the known keys."""
    with pytest.raises(wsroute.PluginError, match=r"unknown key 'header' \(known: headers, server\)"):
        async with serve_app(make_app(header={"X-A": "1"})):
            pass


async def _raw_get(port: int, path: str) -> str:
    """The raw response head of GET ``path``, lower-cased, every header line kept."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    return raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()


async def test_server_alone_costs_no_hook_per_request() -> None:
    """With only server set, the plugin becomes websockets' server_header: no wsroute_extra_headers call."""
    app = make_app(server="chat-gateway")
    async with serve_app(app, server_header="ignored") as server:
        assert not app.plugins.implemented("wsroute_extra_headers")
        assert (await server.http_get("/nowhere")).headers["server"] == "chat-gateway"


async def test_public_headers_methods_when_the_layout_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without websockets 17's Headers layout the plugin uses headers' public methods, with the same result."""
    from wsroute_headers import _apply

    monkeypatch.setattr(_apply, "_DIRECT", False)
    app = make_app(wsroute_health, headers={"Cache-Control": ["max-age=5", "private"], "X-Frame-Options": "DENY"})
    async with serve_app(app) as server:
        head = await _raw_get(server.port, "/healthz")
        async with server.connect("/echo") as ws:
            assert ws.response.headers.get_all("Cache-Control") == ["max-age=5", "private"]
            assert ws.response.headers["X-Frame-Options"] == "DENY"
    assert head.count("cache-control:") == 2
    assert "cache-control: max-age=5" in head and "cache-control: private" in head
