"""The handshake deadline from one timer (wsroute.opentimeout): never early, and what it cuts is cancelled.

Real servers on 127.0.0.1 port 0; raw sockets for clients that stall.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import ssl
import time

import pytest
from websockets.asyncio.server import ServerConnection

import wsroute
from wsroute.connection import Connection
from wsroute.testing import serve_app

from .timing import timeout, until

OPEN_TIMEOUT = timeout(0.3)


def request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def app_with(cancelled: list[str], opened: list[wsroute.Connection] | None = None, **options: object) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    async def hangs_on_slow(conn: wsroute.Connection, req: object) -> None:
        if conn.path == "/slow":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append("middleware")
                raise

    app.middleware(hangs_on_slow)

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        if opened is not None:
            opened.append(ws)
        async for message in ws:
            await ws.send(message)

    @app.route("/slow")
    async def slow(ws: wsroute.Connection) -> None:  # pragma: no cover - its middleware never returns
        raise AssertionError("the handshake should have been cut")

    return app


async def cut_after(reader: asyncio.StreamReader) -> float:
    """Seconds until the server drops the connection (EOF or reset), bounded."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):  # an abort may reset rather than close
        assert await asyncio.wait_for(reader.read(), timeout(5)) == b""
    return time.monotonic() - started


async def test_a_client_that_never_sends_its_request_is_cut_never_before_open_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = app_with([], open_timeout=OPEN_TIMEOUT)
    async with serve_app(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            assert await cut_after(reader) >= OPEN_TIMEOUT * 0.99  # the wheel rounds up, never down
        finally:
            writer.close()
        await until(lambda: not server.server.handler_tasks)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("where", ["middleware", "process_request"])
async def test_a_handshake_stuck_in_a_hook_is_cancelled_at_open_timeout(where: str) -> None:
    """As websockets' ``asyncio.timeout`` does: the pending await is cancelled, not left to run."""
    cancelled: list[str] = []

    async def user_hook(conn: wsroute.Connection, req: object) -> None:
        if conn.request is not None and conn.request.path == "/stuck":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append("process_request")
                raise

    app = app_with(cancelled, open_timeout=OPEN_TIMEOUT, process_request=user_hook)
    async with serve_app(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request("/slow" if where == "middleware" else "/stuck"))
        try:
            assert await cut_after(reader) >= OPEN_TIMEOUT * 0.99
        finally:
            writer.close()
        await until(lambda: cancelled == [where])
        await until(lambda: not server.server.handler_tasks)


async def test_a_connection_open_longer_than_open_timeout_is_not_touched() -> None:
    app = app_with([], open_timeout=OPEN_TIMEOUT)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        await asyncio.sleep(3 * OPEN_TIMEOUT)
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def test_refused_and_finished_handshakes_leave_the_deadline_and_the_timer_stops() -> None:
    opened: list[wsroute.Connection] = []
    app = app_with([], opened, open_timeout=OPEN_TIMEOUT)
    async with serve_app(app) as server:
        assert await server.rejection("/missing") == 404
        async with server.connect("/echo"):
            await until(lambda: len(opened) == 1)
        wheel = type(opened[0]).open_timeouts
        assert wheel is not None and len(wheel) == 0
        await until(lambda: not wheel.running, seconds=3)


async def test_open_timeout_none_keeps_a_silent_client() -> None:
    app = app_with([], open_timeout=None)
    async with serve_app(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(), 3 * OPEN_TIMEOUT)
        finally:
            writer.close()


def test_websockets_gets_no_timer_and_tls_keeps_its_handshake_timeout() -> None:
    app = app_with([])
    options = app.websockets_options({"open_timeout": 7})
    assert options["open_timeout"] is None
    assert issubclass(options["create_connection"], Connection)
    wheel = options["create_connection"].open_timeouts
    assert wheel is not None and wheel.timeout == 7
    assert "ssl_handshake_timeout" not in options
    assert app.websockets_options({})["create_connection"].open_timeouts.timeout == 10  # websockets' default
    tls = app.websockets_options({"open_timeout": 7, "ssl": ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)})
    assert tls["ssl_handshake_timeout"] == 7  # websockets' default: open_timeout, for the TLS handshake


def test_a_create_connection_that_is_not_wsroutes_keeps_websockets_timer() -> None:
    app = app_with([])
    options = app.websockets_options({"open_timeout": 7, "create_connection": ServerConnection})
    assert options["open_timeout"] == 7
