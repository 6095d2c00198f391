"""What already held under abuse, kept as bounded tests: slowloris, deflate bombs, never-reading
subscribers, SIGTERM with 1,000 connections, and 5,000 connect/fail/close cycles without leaks."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest
from rawclient import upgrade_request
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import wsroute
from wsroute.testing import serve_app

pytestmark = [pytest.mark.timeout(120), pytest.mark.abuse]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def echo_app(**options: object) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    @app.route("/echo")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    return app


async def test_slowloris_is_closed_within_open_timeout_while_others_are_served() -> None:
    """Requests never finished are dropped by open_timeout; a valid client echoes meanwhile."""
    app = echo_app(open_timeout=1)
    async with serve_app(app) as server:
        slow = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # never the blank line
            slow.append((reader, writer))
        async with server.connect("/echo") as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 5) == "hi"
        started = time.monotonic()
        for reader, writer in slow:
            assert await asyncio.wait_for(reader.read(), 10) in (b"", b"HTTP/1.1 408")  # closed by the server
            writer.close()
        assert time.monotonic() - started < 10  # bounded by the wait_for above; closed at open_timeout


async def test_deflate_bomb_is_closed_with_1009_and_memory_stays_bounded() -> None:
    """A 64 MiB message of zeros, compressed to a few KiB, is refused with 1009 at max_size (1 MiB)."""
    app = echo_app(max_size=2**20)
    async with serve_app(app) as server:
        before = rss_bytes()
        async with server.connect("/echo", compression="deflate", max_size=None) as ws:
            await ws.send(bytes(64 * 2**20))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009
        # The client itself held the 64 MiB message once; the server never inflated it.
        assert rss_bytes() - before < 80 * 2**20
        async with server.connect("/echo") as other:
            await other.send("ok")
            assert await asyncio.wait_for(other.recv(), 5) == "ok"


async def test_never_reading_subscriber_keeps_memory_bounded() -> None:
    """20 MB published past a subscriber that never reads: its backlog stays within max_queue, the reader gets all."""
    app = wsroute.App(load_entrypoints=False, hub_options={"max_queue": 64, "max_buffer": 64 * 1024})

    @app.route("/news")
    class News(wsroute.Handler):
        async def on_connect(self):
            await self.subscribe("news")
            await self.ws.send("ready")

    async with serve_app(app) as server:
        reader = await server.connect("/news", max_queue=None)
        assert await reader.recv() == "ready"
        # The never-reading client: a raw socket that completes the handshake and then reads nothing.
        stream, sleeper = await asyncio.open_connection("127.0.0.1", server.port)
        sleeper.write(upgrade_request("/news"))
        try:
            assert (await asyncio.wait_for(stream.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 101")
            await publish_past(app, server, reader)
        finally:
            sleeper.close()
            await sleeper.wait_closed()
            await reader.close()


async def publish_past(app: wsroute.App, server, reader) -> None:
    """Publish 20 MB to "news"; the server's backlogs and memory stay bounded, ``reader`` gets it all."""
    before = rss_bytes()
    payload = "x" * 10_000
    received = 0

    async def read_all() -> None:
        nonlocal received
        while received < 2000:
            await reader.recv()
            received += 1

    reading = asyncio.create_task(read_all())
    for _ in range(2000):  # 20 MB published
        await app.hub.publish("news", payload)
        await asyncio.sleep(0)
    assert all(app.hub.backlog(conn) <= 64 for conn in server.server.all_connections)
    assert rss_bytes() - before < 32 * 2**20
    await asyncio.wait_for(reading, 30)
    assert received == 2000


def _raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


async def test_sigterm_with_1000_connections_gives_every_client_1001_and_exits_0(tmp_path) -> None:
    """wsroute run with 1,000 open connections: SIGTERM closes each with 1001 and the process exits 0."""
    _raise_nofile(4096)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSROUTE_")}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsroute", "run", "examples.cli_app:app", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    clients = []
    try:
        for _ in range(600):  # bounded: 30 s for start-up on a loaded machine
            if "serving on" in (tmp_path / "server.log").read_text():
                break
            await asyncio.sleep(0.05)
        assert "serving on" in (tmp_path / "server.log").read_text()
        for _ in range(10):
            clients += await asyncio.gather(
                *(connect(f"ws://127.0.0.1:{port}/echo", open_timeout=30) for _ in range(100))
            )
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*(ws.wait_closed() for ws in clients)), 30)
        codes = [ws.close_code for ws in clients]
        for _ in range(300):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        drained = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        log.close()
    assert len(clients) == 1000
    assert codes == [1001] * 1000
    assert proc.returncode == 0
    print(f"drained 1000 connections in {drained:.2f} s")


async def test_cycles_of_connect_fail_and_close_leave_no_leak(caplog) -> None:
    """Up to 5,000 cycles (30 s at most) of auth failure, raising handler, normal close: fds, tasks, RSS return."""
    caplog.set_level(logging.CRITICAL, logger="wsroute")  # 5,000 expected tracebacks would be kept in memory
    app = wsroute.App(load_entrypoints=False, max_connections_per_ip=100, message_rate="100/s")

    @app.middleware
    def auth(conn, request):
        if "deny" in request.path:
            return conn.respond(401, "no\n")
        conn.ctx.user_id = "u"

    @app.route("/{kind}")
    async def handler(ws, kind: str):
        await ws.send("hello")
        if kind == "boom":
            raise RuntimeError("handler failure (expected in this test)")

    async with serve_app(app) as server:

        async def cycle() -> None:
            with pytest.raises(InvalidStatus):
                async with server.connect("/deny"):
                    pass
            async with server.connect("/boom") as ws:
                await ws.recv()
                await ws.wait_closed()
            async with server.connect("/ok") as ws:
                await ws.recv()

        for _ in range(200):  # warm-up: caches, buffers, the allocator
            await cycle()
        await asyncio.sleep(0.2)
        fds, tasks, rss = open_fds(), len(asyncio.all_tasks()), rss_bytes()
        cycles = int(os.environ.get("WSROUTE_LEAK_CYCLES", "5000"))
        started = time.monotonic()
        done = 0
        while done < cycles and time.monotonic() - started < 30:  # bounded: 5,000 take ~25 s on an idle machine
            await cycle()
            done += 1
        elapsed = time.monotonic() - started
        for _ in range(100):
            if app.stats().open_connections == 0 and open_fds() <= fds and len(asyncio.all_tasks()) <= tasks:
                break
            await asyncio.sleep(0.05)
        print(f"{done} cycles in {elapsed:.1f} s; fds {fds}->{open_fds()}, RSS +{(rss_bytes() - rss) / 2**20:.1f} MiB")
        assert done >= 300
        assert open_fds() <= fds
        assert len(asyncio.all_tasks()) <= tasks
        assert app.stats().open_connections == 0
        assert rss_bytes() - rss < 16 * 2**20
