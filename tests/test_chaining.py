"""A user's process_request / process_response run before wsroute's, sync or async."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import pytest
from timing import MS

import wsroute
from wsroute import ConfigurationError
from wsroute.testing import serve_app


async def echo(ws):
    async for message in ws:
        await ws.send(message)


class Headers:
    """A plugin adding a header to every handshake response."""

    @wsroute.hookimpl
    def wsroute_extra_headers(self, request):
        return {"X-Plugin": "1"}


def make_app(**options) -> tuple[wsroute.App, list[str]]:
    """An app with /echo behind a middleware that records it ran."""
    ran: list[str] = []
    app = wsroute.App(load_entrypoints=False, plugins=[Headers()], **options)

    @app.middleware
    def record(conn, request):
        ran.append(f"middleware {conn.route.path}")

    app.add_route("/echo", echo)
    return app, ran


def sync_gate(conn, request):
    if request.path == "/maintenance":
        return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "back soon\n")
    return None


async def async_gate(conn, request):
    await asyncio.sleep(MS)
    return sync_gate(conn, request)


def awaitable_gate(conn, request):
    return async_gate(conn, request)  # a plain def returning a coroutine


GATES = pytest.mark.parametrize("gate", [sync_gate, async_gate, awaitable_gate], ids=["sync", "async", "awaitable"])


@GATES
async def test_user_process_request_answering_short_circuits_routing(gate) -> None:
    """A Response from the user's process_request is sent; no route is matched and no middleware runs."""
    app, ran = make_app(process_request=gate)
    async with serve_app(app) as server:
        answer = await server.http_get("/maintenance")
        assert await server.rejection("/maintenance") == 503
    assert (answer.status, answer.text) == (503, "back soon\n")
    assert answer.headers["x-plugin"] == "1"
    assert ran == []


@GATES
async def test_user_process_request_returning_none_continues_to_routing(gate) -> None:
    """None from the user's process_request lets wsroute route: /echo is served, unknown paths get 404."""
    app, ran = make_app(process_request=gate)
    async with serve_app(app) as server:
        async with server.connect("/echo") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            assert ws.response.headers["X-Plugin"] == "1"
        assert await server.rejection("/nowhere") == 404
    assert ran == ["middleware /echo"]


async def test_user_process_request_runs_before_routing() -> None:
    """The user's hook sees the connection before wsroute routed it (conn.route is None)."""
    seen: list[object] = []

    def look(conn, request):
        seen.append(conn.route)

    app, _ = make_app(process_request=look)
    async with serve_app(app) as server, server.connect("/echo"):
        pass
    assert seen == [None]


async def test_serve_process_request_overrides_the_apps() -> None:
    """app.serve(process_request=...) replaces the one given to App(), like any other option."""

    def refuse_all(conn, request):
        return conn.respond(HTTPStatus.FORBIDDEN, "no\n")

    app, _ = make_app(process_request=sync_gate)
    async with serve_app(app, process_request=refuse_all) as server:
        assert await server.rejection("/echo") == 403


def add_user_header(conn, request, response):
    response.headers["X-User"] = "1"


async def add_user_header_async(conn, request, response):
    await asyncio.sleep(MS)
    add_user_header(conn, request, response)


@pytest.mark.parametrize("hook", [add_user_header, add_user_header_async], ids=["sync", "async"])
async def test_user_process_response_runs_then_plugin_headers(hook) -> None:
    """The user's process_response and the plugins' headers both reach the 101 and the 404."""
    app, _ = make_app(process_response=hook)
    async with serve_app(app) as server:
        async with server.connect("/echo") as ws:
            assert (ws.response.headers["X-User"], ws.response.headers["X-Plugin"]) == ("1", "1")
        answer = await server.http_get("/nowhere")
    assert (answer.status, answer.headers["x-user"], answer.headers["x-plugin"]) == (404, "1", "1")


async def test_response_replaced_by_the_user_gets_plugin_headers() -> None:
    """A Response returned by the user's process_response is sent, with the plugins' headers added to it."""

    def replace(conn, request, response):
        if response.status_code == 404:
            return conn.respond(HTTPStatus.GONE, "gone\n")
        return None

    app, _ = make_app(process_response=replace)
    async with serve_app(app) as server:
        answer = await server.http_get("/nowhere")
    assert (answer.status, answer.text, answer.headers["x-plugin"]) == (410, "gone\n", "1")


async def test_user_process_response_without_header_plugins() -> None:
    """With no plugin headers, the user's process_response is given to websockets as is."""
    app = wsroute.App(load_entrypoints=False, process_response=add_user_header)
    app.add_route("/echo", echo)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["X-User"] == "1"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"process_request": lambda conn: None}, "expected a callable taking (connection, request), or None"),
        ({"process_response": lambda c, r: None}, "expected a callable taking (connection, request, response)"),
        ({"process_request": "gate"}, "App(process_request='gate'): expected a callable"),
    ],
)
def test_user_hooks_with_the_wrong_shape_are_refused(options, fragment) -> None:
    """A process_request/process_response that cannot take websockets' arguments fails when the App is built."""
    with pytest.raises(ConfigurationError) as info:
        wsroute.App(load_entrypoints=False, **options)
    assert fragment in str(info.value)
