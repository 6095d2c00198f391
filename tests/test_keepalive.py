"""Keepalive from one timer (wsroute.keepalive): websockets' promise, without a task per connection.

Real servers on 127.0.0.1 port 0; websockets' client (which answers pings
itself) and raw sockets (which never do).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import struct
import weakref

import pytest
from rawclient import read_frame, upgrade_request
from timing import timeout, until
from websockets.asyncio.client import connect

import wsroute
from wsroute.keepalive import Keepalive
from wsroute.testing import serve_app

INTERVAL = timeout(0.16)


def app_with(opened: list[wsroute.Connection], **options: object) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        opened.append(ws)
        async for message in ws:
            await ws.send(message)

    @app.route("/flood")
    async def flood(ws: wsroute.Connection) -> None:  # a client that never reads fills the buffers
        opened.append(ws)
        while True:
            await ws.send(b"x" * 65536)

    return app


async def raw_upgrade(port: int, path: str = "/echo") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that completes the handshake and then never answers a ping."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request(path))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout(2))
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_pings_come_from_the_shared_timer_and_measure_latency() -> None:
    """No keepalive task per connection; websockets' client answers, ``ws.latency`` is measured."""
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=INTERVAL, ping_timeout=INTERVAL)
    async with serve_app(app) as server:
        clients = [await server.connect("/echo").__aenter__() for _ in range(20)]
        try:
            await until(lambda: len(opened) == 20)
            assert all(ws.keepalive_task is None for ws in opened)
            assert len(app.keepalive) == 20 and app.keepalive.running
            await until(lambda: all(ws.latency > 0 for ws in opened), seconds=5)
            for client in clients:  # still open, still echoing, after several intervals
                await client.send("hi")
                assert await asyncio.wait_for(client.recv(), timeout(2)) == "hi"
        finally:
            for client in clients:
                await client.close()
        await until(lambda: len(app.keepalive) == 0)


async def test_a_client_that_never_answers_is_closed_with_1011_keepalive_ping_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """websockets' own outcome: a Ping, then no Pong within ping_timeout → close 1011 with its reason."""
    caplog.set_level(logging.DEBUG, logger="wsroute")
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=INTERVAL, ping_timeout=INTERVAL)
    async with serve_app(app) as server:
        reader, writer = await raw_upgrade(server.port)
        try:
            opcode, _ = await asyncio.wait_for(read_frame(reader), timeout(3))
            assert opcode == 0x9  # a Ping; this client never answers it
            opcode, payload = await asyncio.wait_for(read_frame(reader), timeout(3))
            assert opcode == 0x8
            assert struct.unpack("!H", payload[:2])[0] == 1011
            assert payload[2:] == b"keepalive ping timeout"
        finally:
            writer.close()
        await until(lambda: len(app.keepalive) == 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_client_whose_writes_are_paused_delays_no_other_connections_ping() -> None:
    """Each ping runs on its own: a never-reading client's blocked send holds up only itself."""
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=INTERVAL, ping_timeout=None, write_limit=2**14)
    async with serve_app(app) as server:
        _, stuck_writer = await raw_upgrade(server.port, "/flood")  # never read again
        try:
            await until(lambda: len(opened) == 1)
            async with server.connect("/echo") as client:
                await until(lambda: len(opened) == 2)
                healthy = opened[1]
                await until(lambda: healthy.latency > 0, seconds=5)
                first = healthy.latency
                await until(lambda: healthy.latency != first, seconds=5)  # pinged again, and again
                await client.send("still here")
                assert await asyncio.wait_for(client.recv(), timeout(2)) == "still here"
        finally:
            stuck_writer.close()


async def test_ping_interval_none_sends_no_ping_and_starts_no_timer() -> None:
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=None)
    async with serve_app(app) as server:
        reader, writer = await raw_upgrade(server.port)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(read_frame(reader), 3 * INTERVAL)
            assert len(app.keepalive) == 0 and not app.keepalive.running
            assert opened[0].keepalive_task is None
        finally:
            writer.close()


async def test_a_closed_connection_is_not_kept_and_the_timer_stops_when_idle() -> None:
    """The slot forgets a connection at close; with none left, no timer stays armed."""
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=INTERVAL, ping_timeout=INTERVAL)
    async with serve_app(app) as server:
        async with server.connect("/echo"):
            await until(lambda: len(opened) == 1)
        gone = weakref.ref(opened.pop())
        await until(lambda: len(app.keepalive) == 0)
        await until(lambda: not app.keepalive.running, seconds=3)
        gc.collect()
        assert gone() is None
        async with server.connect("/echo") as client:  # starts again on the next connection
            await until(lambda: app.keepalive.running)
            await client.send("x")
            assert await client.recv() == "x"


async def test_shutdown_disarms_the_timer() -> None:
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=INTERVAL)
    async with serve_app(app) as server, server.connect("/echo"):
        await until(lambda: app.keepalive.running)
    assert not app.keepalive.running and len(app.keepalive) == 0


async def test_a_connection_the_timer_cannot_take_keeps_websockets_task() -> None:
    """Settings unlike the timer's (another server of the same Keepalive) fall back to websockets' task."""
    keepalive = Keepalive()

    class First:
        ping_interval, ping_timeout = 5.0, 5.0
        loop = asyncio.get_running_loop()

    class Other(First):
        ping_interval = 7.0

    assert keepalive.join(First()) is not None  # type: ignore[arg-type]
    assert keepalive.join(Other()) is None  # type: ignore[arg-type]
    zero = Keepalive()
    First.ping_interval = 0.0
    assert zero.join(First()) is None  # type: ignore[arg-type]
    keepalive.stop()
    assert not keepalive.running


async def test_a_websockets_server_given_wsroute_connections_without_an_app_keeps_its_task() -> None:
    """``create_connection=wsroute.Connection`` on a plain websockets server: no App, websockets' keepalive."""
    from websockets.asyncio.server import serve

    seen: list[wsroute.Connection] = []

    async def handler(ws: wsroute.Connection) -> None:
        seen.append(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, create_connection=wsroute.Connection, ping_interval=INTERVAL) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/"):
            await until(lambda: len(seen) == 1)
            assert seen[0].keepalive_task is not None


async def test_with_ping_timeout_none_a_silent_client_is_pinged_every_interval() -> None:
    """websockets does not wait for the Pong then: the pings keep coming (NAT and proxy idle timers see traffic)."""
    opened: list[wsroute.Connection] = []
    app = app_with(opened, ping_interval=INTERVAL, ping_timeout=None)
    async with serve_app(app) as server:
        reader, writer = await raw_upgrade(server.port)
        try:
            for _ in range(3):
                opcode, _ = await asyncio.wait_for(read_frame(reader), timeout(3))
                assert opcode == 0x9  # a Ping, never answered
            assert opened[0].state.name == "OPEN"
        finally:
            writer.close()


def test_a_keepalive_left_armed_on_a_closed_loop_takes_connections_on_the_next_one() -> None:
    """An app that was never shut down on its first loop still shares one timer on its next loop."""
    keepalive = Keepalive()

    class Conn:
        ping_interval, ping_timeout = 5.0, 5.0

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self.loop = loop

    first = asyncio.new_event_loop()

    async def join() -> set[object] | None:
        return keepalive.join(Conn(asyncio.get_running_loop()))  # type: ignore[arg-type, return-value]

    assert first.run_until_complete(join()) is not None
    first.close()
    assert asyncio.run(join()) is not None  # not refused as "another loop": that loop is gone
    assert len(keepalive) == 1
    keepalive.stop()
