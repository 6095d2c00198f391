"""Test an app the way users reach it: a real server, real clients.

::

    from wsroute.testing import serve_app

    async def test_echo():
        async with serve_app(app) as server:
            async with server.connect("/echo") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
            assert (await server.http_get("/nope")).status == 404

The server listens on 127.0.0.1, on a free port chosen by the OS (port 0),
and is shut down — connections closed, hub stopped — when the block exits.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server
from websockets.exceptions import InvalidStatus

if TYPE_CHECKING:
    from .app import App

__all__ = ["HTTPResult", "TestServer", "serve_app"]


@attrs.frozen
class HTTPResult:
    """A plain HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@attrs.define
class TestServer:
    """A running app on 127.0.0.1 with helpers to reach it."""

    __test__ = False  # not a pytest test class

    app: App
    server: Server
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def connect(self, path: str = "/", **kwargs: Any) -> connect:
        """A websockets client for ``path``: ``async with server.connect("/x") as ws``."""
        kwargs.setdefault("open_timeout", 5)
        return connect(self.url(path), **kwargs)

    async def rejection(self, path: str = "/", **kwargs: Any) -> int:
        """The HTTP status a WebSocket handshake to ``path`` is refused with.

        Raises:
            AssertionError: the handshake succeeded.
        """
        try:
            async with self.connect(path, **kwargs):
                pass
        except InvalidStatus as exc:
            return exc.response.status_code
        raise AssertionError(f"the handshake to {path!r} was accepted")

    async def http_get(self, path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None) -> HTTPResult:
        """Send one plain HTTP/1.1 request (no upgrade) and read the answer."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        return _parse_http(raw)


    async def handshake(self, target: str, headers: Mapping[str, str] | None = None) -> HTTPResult:
        """Send a WebSocket upgrade request written by hand and read the answer's head and body.

        ``target`` goes on the request line verbatim (``/rooms/%FF?x=1``),
        which client libraries may refuse or normalise; ``headers`` are added
        after the upgrade headers. A ``101`` answer is returned with an empty
        body and the connection is dropped without a closing handshake.
        """
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            result = _parse_http(head)
            length = int(result.headers.get("content-length", "0"))
            body = await asyncio.wait_for(reader.readexactly(length), 10) if result.status != 101 else b""
        finally:
            writer.close()
        return HTTPResult(result.status, result.headers, body)


def _parse_http(raw: bytes) -> HTTPResult:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HTTPResult(int(status_line.split()[1]), headers, body)


@asynccontextmanager
async def serve_app(app: App, **options: Any) -> AsyncIterator[TestServer]:
    """Serve ``app`` on 127.0.0.1, port 0, for the duration of the block."""
    async with app.serve("127.0.0.1", 0, **options) as server:
        yield TestServer(app, server)
