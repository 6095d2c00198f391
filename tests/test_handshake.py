"""wsroute.handshake: before the upgrade — 404s, routing results on the connection, middleware, what websockets gets."""

from __future__ import annotations

import inspect
import logging

import wsroute
from wsroute.testing import serve_app

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def test_unknown_path_is_404_before_the_upgrade_and_runs_nothing() -> None:
    """A path with no route is answered 404 'Not Found' as plain HTTP; no middleware or handler runs."""
    ran: list[str] = []
    app = wsroute.App(load_entrypoints=False)
    app.middleware(lambda conn, request: ran.append("middleware"))
    app.add_route("/echo", echo)
    async with serve_app(app) as server:
        answer = await server.http_get("/nowhere", headers=UPGRADE)
    assert (answer.status, answer.text) == (404, "Not Found\n")
    assert ran == []


async def test_routing_results_are_on_the_connection_for_middleware() -> None:
    """Middleware sees conn.app, conn.route, conn.params (converted) and conn.query; the query is not matched."""
    seen: list[tuple] = []
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def look(conn, request):
        seen.append((conn.app is app, conn.route.path, conn.params, conn.query))

    app.add_route("/items/{n:int}", echo)
    async with serve_app(app) as server, server.connect("/items/42?tag=a&tag=b"):
        pass
    assert seen == [(True, "/items/{n:int}", {"n": 42}, {"tag": ["a", "b"]})]


async def test_rejected_value_of_a_converter_is_404() -> None:
    """A segment the converter refuses (/items/abc for int) is no match: 404."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/items/{n:int}", echo)
    async with serve_app(app) as server:
        assert await server.rejection("/items/abc") == 404


async def test_failing_middleware_answers_500_logged_once(caplog) -> None:
    """An exception in middleware fails closed: 500 with a generic body, one ERROR naming the path."""

    def broken(conn, request):
        raise KeyError("boom")

    app = wsroute.App(load_entrypoints=False)
    app.middleware(broken)
    app.add_route("/echo", echo)
    caplog.set_level(logging.ERROR)
    async with serve_app(app) as server:
        answer = await server.http_get("/echo", headers=UPGRADE)
    assert answer.status == 500
    assert "KeyError" not in answer.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "middleware failed for /echo; answered 500"
    ]


def prepared(app: wsroute.App) -> dict:
    """What the app would give websockets' serve()."""
    return app.websockets_options({})


def test_no_header_plugin_means_no_process_response() -> None:
    """Without wsroute_extra_headers implementations websockets gets no process_response at all."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", echo)
    assert "process_response" not in prepared(app)


def test_sync_header_plugins_give_a_plain_function_async_ones_a_coroutine_function() -> None:
    """process_response is synchronous when every header plugin is (no coroutine per handshake)."""

    class Sync:
        @wsroute.hookimpl
        def wsroute_extra_headers(self):
            return None

    class Async:
        @wsroute.hookimpl
        async def wsroute_extra_headers(self):
            return None

    sync_app = wsroute.App(load_entrypoints=False, plugins=[Sync()])
    async_app = wsroute.App(load_entrypoints=False, plugins=[Sync(), Async()])
    assert not inspect.iscoroutinefunction(prepared(sync_app)["process_response"])
    assert inspect.iscoroutinefunction(prepared(async_app)["process_response"])


async def test_sync_middleware_chain_answers_without_a_coroutine() -> None:
    """With only sync middleware, process_request returns the Response itself (not an awaitable)."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(lambda conn, request: conn.respond(403, "no\n"))
    app.add_route("/echo", echo)
    async with serve_app(app) as server:
        assert await server.rejection("/echo") == 403
    process_request = prepared(app)["process_request"]
    assert not inspect.iscoroutinefunction(process_request)
