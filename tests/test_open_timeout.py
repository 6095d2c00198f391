"""The handshake deadline from one timer (wsroute.opentimeout): never early, and what it cuts is cancelled.

Real servers on 127.0.0.1 port 0; raw sockets for clients that stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
import time

import pytest
from rawclient import upgrade_request
from timing import timeout, until

import wsroute
from wsroute.connection import Connection
from wsroute.opentimeout import OpenTimeout
from wsroute.testing import serve_app

OPEN_TIMEOUT = timeout(0.3)


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
        writer.write(upgrade_request("/slow" if where == "middleware" else "/stuck"))
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


def test_a_users_connection_class_gets_the_deadline_too() -> None:
    """``create_connection=`` (a wsroute Connection subclass, as options require) is subclassed per serve."""

    class Mine(Connection):
        __slots__ = ()

    options = wsroute.App(load_entrypoints=False).websockets_options({"open_timeout": 7, "create_connection": Mine})
    assert options["open_timeout"] is None
    assert options["create_connection"].__bases__ == (Mine,)
    assert options["create_connection"].open_timeouts.timeout == 7


LOCALHOST_PEM = os.path.join(os.path.dirname(__file__), "tls", "localhost.pem")  # self-signed, for 127.0.0.1


async def test_with_tls_the_deadline_starts_once_tls_is_up_as_websockets_does() -> None:
    """A slow TLS handshake is ssl_handshake_timeout's business; the HTTP handshake still gets open_timeout after it."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(LOCALHOST_PEM)
    client_tls = ssl.create_default_context(cafile=LOCALHOST_PEM)
    app = app_with([])
    async with serve_app(app, ssl=server_tls, open_timeout=OPEN_TIMEOUT, ssl_handshake_timeout=timeout(5)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        await asyncio.sleep(1.5 * OPEN_TIMEOUT)  # the ClientHello comes after open_timeout
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, ssl=client_tls, server_hostname="localhost")
        try:  # TLS is up, no request ever comes: cut one open_timeout later, not left open
            assert await cut_after(reader) >= OPEN_TIMEOUT * 0.99
        finally:
            writer.close()
        await until(lambda: not server.server.handler_tasks)


async def test_a_deadline_is_never_early_when_the_event_loop_lags() -> None:
    """A connection that joins while the timer's visit is overdue still gets its full open_timeout."""
    loop = asyncio.get_running_loop()
    wheel = OpenTimeout(OPEN_TIMEOUT)

    class Pending:
        def __init__(self) -> None:
            self.loop, self.joined, self.cut = loop, 0.0, 0.0

        def handshake_timed_out(self) -> None:
            self.cut = loop.time()

    wheel.join(Pending())  # type: ignore[arg-type]  # arms the timer
    late = Pending()

    def lagging_callback() -> None:
        time.sleep(OPEN_TIMEOUT / 4)  # the loop blocked for four ticks: the next visit is overdue
        late.joined = loop.time()
        wheel.join(late)  # type: ignore[arg-type]

    loop.call_soon(lagging_callback)
    await until(lambda: late.cut > 0, seconds=5)
    assert late.cut - late.joined >= OPEN_TIMEOUT
    wheel.stop()


async def test_an_open_connection_is_never_cut_even_if_start_keepalive_is_overridden() -> None:
    """The deadline ends at the 101 whatever a subclass does with websockets' start_keepalive()."""

    class NoKeepalive(Connection):
        __slots__ = ()

        def start_keepalive(self) -> None:  # e.g. keepalive switched off this way, without super()
            pass

    app = app_with([], open_timeout=OPEN_TIMEOUT, create_connection=NoKeepalive)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        await asyncio.sleep(3 * OPEN_TIMEOUT)
        await ws.send("still open")
        assert await ws.recv() == "still open"


def test_websockets_options_include_the_apps_own_options() -> None:
    """``App(open_timeout=7)`` is kept by ``app.websockets_options()``; what is passed there overrides it."""
    app = app_with([], open_timeout=7, max_size=1024)
    options = app.websockets_options()
    assert options["create_connection"].open_timeouts.timeout == 7 and options["max_size"] == 1024
    assert app.websockets_options({"open_timeout": 3})["create_connection"].open_timeouts.timeout == 3
    with pytest.raises(wsroute.ConfigurationError, match="open_timout"):
        app.websockets_options({"open_timout": 3})


class Stub:
    """What the wheel needs of a connection: its loop, and what to call at the deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.joined, self.cut, self.thread = loop, loop.time(), 0.0, 0

    def handshake_timed_out(self) -> None:
        self.cut, self.thread = self.loop.time(), threading.get_ident()


def test_a_wheel_left_armed_on_a_closed_loop_starts_over_on_the_next_one() -> None:
    wheel = OpenTimeout(OPEN_TIMEOUT)
    first = asyncio.new_event_loop()

    async def arm() -> None:
        wheel.join(Stub(asyncio.get_running_loop()))  # type: ignore[arg-type]

    first.run_until_complete(arm())
    first.close()  # the timer dies with its loop, never stopped

    async def on_a_new_loop() -> Stub:
        stub = Stub(asyncio.get_running_loop())
        wheel.join(stub)  # type: ignore[arg-type]
        await until(lambda: stub.cut > 0, seconds=5)
        return stub

    stub = asyncio.run(on_a_new_loop())
    assert stub.cut - stub.joined >= OPEN_TIMEOUT
    wheel.stop()


async def test_a_connection_class_served_on_two_live_loops_cuts_each_handshake_on_its_own_loop() -> None:
    """The same options given to two servers on two threads: each loop gets a wheel of its own."""
    wheel = OpenTimeout(OPEN_TIMEOUT)
    here = Stub(asyncio.get_running_loop())
    wheel.join(here)  # type: ignore[arg-type]  # the wheel runs on this loop

    def other_thread() -> Stub:
        async def join_there() -> Stub:
            stub = Stub(asyncio.get_running_loop())
            wheel.join(stub)  # type: ignore[arg-type]
            await until(lambda: stub.cut > 0, seconds=5)
            return stub

        return asyncio.run(join_there())

    there = await asyncio.to_thread(other_thread)
    assert there.thread != threading.get_ident() and there.cut - there.joined >= OPEN_TIMEOUT
    await until(lambda: here.cut > 0, seconds=5)
    assert here.thread == threading.get_ident()
    wheel.stop()
