"""Helpers for the hub tests: a real redis-server, real websockets servers.

The Redis tests run against a ``redis-server`` this file starts on a free
port in a temporary directory (no persistence) and stops afterwards. When
``redis-server`` is not installed they are skipped with a message saying how
to install it — except under CI (``CI`` set), where they FAIL: CI installs
it, so a skip there would hide a broken setup (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from wsroute.hub import Hub

HERE = Path(__file__).parent
REDIS_MISSING = (
    "redis-server is not on PATH: the Redis tests need a real Redis. "
    "Install it with `apt-get install -y redis-server` (Debian/Ubuntu) "
    "or `brew install redis`."
)


def redis_missing() -> NoReturn:
    """Fail under CI (``CI`` set: a broken set-up must not pass), skip elsewhere with the reason."""
    if os.environ.get("CI", "").strip() not in ("", "0", "false"):
        pytest.fail(f"{REDIS_MISSING} (CI is set, so the Redis tests must run)", pytrace=False)
    pytest.skip(f"{REDIS_MISSING} (skipped because CI is not set; under CI this fails)")


@contextlib.contextmanager
def running_redis(prefix: str) -> Iterator[RedisProcess]:
    """A started redis-server (free port, no persistence, data in a temporary ``prefix…`` directory), stopped after.

    Fails or skips through :func:`redis_missing` when ``redis-server`` is not installed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        redis_missing()
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        proc = RedisProcess(binary, directory)
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server child process that tests may kill and restart."""

    def __init__(self, binary: str, directory: str) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start redis-server and wait (at most 10 s) until it answers PING."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Kill redis-server (SIGKILL: like a crash) and reap it."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def command(self, *args: str) -> bytes:
        """Run one command with a raw RESP request; return the raw reply."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(b"".join(parts))
            time.sleep(0.05)
            return s.recv(65536)


async def hub_handler(hub: Hub, ws: ServerConnection) -> None:
    """A handler like the core's: ctx from the query string, attach, echo commands.

    ``?user=alice&topics=a,b&policy=drop_oldest`` sets the user id, subscribes
    to topics and overrides the policy. Text messages ``pub <topic> <data>``
    publish, which lets a test drive a server in another process.
    """
    assert ws.request is not None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
    ws.ctx = types.SimpleNamespace(user_id=query.get("user", [None])[0])  # type: ignore[attr-defined]
    hub.attach(ws, policy=query.get("policy", [None])[0])
    try:
        for topic in query.get("topics", [""])[0].split(","):
            if topic:
                await hub.subscribe(ws, topic)
        await ws.send("ready")
        async for message in ws:
            if isinstance(message, str):
                await run_command(hub, ws, message)
    finally:
        hub.detach(ws)


async def run_command(hub: Hub, ws: ServerConnection, message: str) -> None:
    """Execute one ``pub``/``user``/``all``/``presence`` command from a client."""
    op, _, rest = message.partition(" ")
    if op == "pub":
        topic, _, data = rest.partition(" ")
        await hub.publish(topic, data)
    elif op == "user":
        user, _, data = rest.partition(" ")
        await hub.send_to_user(user, data)
    elif op == "all":
        await hub.broadcast(rest)
    elif op == "presence":
        await ws.send(",".join(sorted(await hub.presence(rest))))


@contextlib.asynccontextmanager
async def running_hub(hub: Hub, **serve_kwargs: Any) -> AsyncIterator[str]:
    """Start ``hub`` and a websockets server on port 0; yield its ws:// URL."""
    await hub.start()
    try:
        async with serve(lambda ws: hub_handler(hub, ws), "127.0.0.1", 0, **serve_kwargs) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            yield f"ws://127.0.0.1:{port}/"
    finally:
        await hub.stop()


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``check`` every 20 ms until true; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition {check!r} still false after {timeout} s")
        await asyncio.sleep(0.02)


class ServerProcess:
    """A hub server in a child process (``_server_app.py``), on one Redis.

    With ``netns``, the child runs inside that network namespace (``ip netns exec``).
    """

    def __init__(self, redis_url: str, netns: str | None = None) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        prefix = ["ip", "netns", "exec", netns] if netns is not None else []
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(HERE / "_server_app.py"), redis_url],
            stdout=subprocess.PIPE, stdin=subprocess.PIPE, env=env,
        )
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode().strip() if readable else "no output in 30 s"
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"server process did not start: {line!r}")
        self.url = f"ws://127.0.0.1:{line.split()[1]}/"

    def close(self) -> None:
        """Ask the child to stop (close stdin), kill it after 10 s."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def open_client(url: str, query: str = "") -> ClientConnection:
    """Connect and wait for the handler's "ready" (subscriptions done)."""
    ws = await connect(url + query)
    assert await ws.recv() == "ready"
    return ws


async def receive(ws: ClientConnection, count: int) -> list[str | bytes]:
    """Receive exactly ``count`` messages, failing after 10 s."""
    async with asyncio.timeout(10):
        return [await ws.recv() for _ in range(count)]


@contextlib.contextmanager
def server_processes_on(url: str) -> Iterator[Callable[[], ServerProcess]]:
    """A factory of wsroute server processes on the broker at ``url``; every one started is stopped after."""
    started: list[ServerProcess] = []

    def start() -> ServerProcess:
        proc = ServerProcess(url)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.close()
