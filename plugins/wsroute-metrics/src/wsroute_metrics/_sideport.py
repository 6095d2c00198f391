"""The metrics on a port of their own: a minimal HTTP/1.1 responder on asyncio.

For deployments that keep the metrics off the public port. It answers
``GET``/``HEAD`` on the configured path with the exposition, 404 elsewhere,
405 for other methods, and closes each connection after one answer (what
Prometheus needs). With several workers every worker listens on the port
with ``SO_REUSEPORT`` and any of them answers with the sum.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import prometheus_client

__all__ = ["SidePort"]

_LIMIT = 16 * 1024  # bytes of request head accepted
_TIMEOUT = 10.0  # seconds a client gets to send its request head


class SidePort:
    """Serve ``render()`` on ``http://host:port/path``.

    Attributes:
        port: the bound port (useful when 0 was asked for), after :meth:`start`.
    """

    def __init__(self, host: str, port: int, path: str, render: Callable[[], bytes]) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.render = render
        self._server: asyncio.Server | None = None

    async def start(self, *, reuse_port: bool = False) -> None:
        """Listen; raises ``OSError`` when the port is taken."""
        self._server = await asyncio.start_server(
            self._answer, self.host, self.port, reuse_port=reuse_port or None, limit=_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and wait for answers in progress."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), _TIMEOUT)
            self._server = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, body, content_type = self._respond(method, target.partition("?")[0])
            headers = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n"
                + ("Allow: GET, HEAD\r\n" if status.startswith("405") else "")
                + "\r\n"
            )
            writer.write(headers.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a client that sent no valid request head gets no answer
        finally:
            writer.close()

    def _respond(self, method: str, path: str) -> tuple[str, bytes, str]:
        if path != self.path:
            return "404 Not Found", b"Not Found\n", "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"Method Not Allowed\n", "text/plain; charset=utf-8"
        return "200 OK", self.render(), prometheus_client.CONTENT_TYPE_LATEST
