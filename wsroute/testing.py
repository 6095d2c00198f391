"""Test an app the way users reach it: a real server, real clients.

Two ways, the same server underneath. In plain pytest (no async plugin
needed), :class:`TestClient` runs the app in a background thread and gives
blocking clients, as Starlette's ``TestClient`` does::

    from wsroute.testing import TestClient

    def test_echo():
        with TestClient(app) as client:
            with client.websocket_connect("/echo") as ws:
                ws.send_text("hi")
                assert ws.receive_text() == "hi"
            assert client.get("/nope").status == 404

In async tests (pytest-asyncio or anyio), :func:`serve_app` is an async
context manager::

    from wsroute.testing import serve_app

    async def test_echo():
        async with serve_app(app) as server:
            async with server.connect("/echo") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
            assert (await server.http_get("/nope")).status == 404

The server listens on 127.0.0.1, on a free port chosen by the OS (port 0),
and is shut down — connections closed, hub stopped — when the block exits.
Installing wsroute also installs a pytest plugin (``wsroute.pytest_plugin``)
with the fixtures ``wsroute_client`` (sync) and ``wsroute_server`` (async,
when pytest-asyncio is installed).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect
from websockets.typing import Subprotocol

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "ConnectionClosed",
    "HTTPResult",
    "HandshakeRejected",
    "TestClient",
    "TestServer",
    "WebSocketTestSession",
    "serve_app",
]

#: A message's type: ``str`` (a text frame) or ``bytes`` (a binary frame).
_Frame = TypeVar("_Frame", str, bytes)

#: Seconds a TestClient waits for a message, the server to start or to stop.
DEFAULT_TIMEOUT = 5.0


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
            writer.write(_request_bytes(method, path, self.host, self.port, headers))
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


def _request_bytes(method: str, path: str, host: str, port: int, headers: Mapping[str, str] | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


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


class HandshakeRejected(Exception):
    """The server refused the WebSocket handshake with an HTTP response.

    Attributes:
        status: the HTTP status code (404, 401, 403…).
        headers: the response headers, names lower-cased.
        body: the response body.
    """

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(f"handshake refused with HTTP {status}: {body.decode(errors='replace').strip()}")
        self.status = status
        self.headers = dict(headers)
        self.body = body


class WebSocketTestSession:
    """One client connection of a :class:`TestClient`; blocking calls with timeouts.

    Every ``receive_*`` waits at most ``timeout`` seconds (the client's,
    5 s by default) and raises :class:`TimeoutError` instead of hanging. When
    the server closes the connection, ``receive_*`` raises websockets'
    :class:`~websockets.exceptions.ConnectionClosed` (re-exported here) and
    :attr:`close_code` / :attr:`close_reason` say how it closed.
    """

    __test__ = False

    def __init__(self, connection: ClientConnection, timeout: float) -> None:
        self._ws = connection
        self.timeout = timeout

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, or ``None``."""
        return self._ws.subprotocol

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (``None`` while open)."""
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason once the connection is closed (``None`` while open)."""
        return self._ws.close_reason

    def send_text(self, data: str) -> None:
        """Send a text message."""
        self._ws.send(data)

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self._ws.send(data)

    def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON text."""
        self._ws.send(json.dumps(obj))

    def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message, text (``str``) or binary (``bytes``).

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            ConnectionClosed: the connection closed; see :attr:`close_code`.
        """
        return self._ws.recv(timeout=self.timeout if timeout is None else timeout)

    def receive_text(self, timeout: float | None = None) -> str:
        """The next message, which must be text.

        Raises:
            AssertionError: the message was binary.
        """
        return self._receive_a(str, timeout)

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, which must be binary.

        Raises:
            AssertionError: the message was text.
        """
        return self._receive_a(bytes, timeout)

    def _receive_a(self, kind: type[_Frame], timeout: float | None) -> _Frame:
        """The next message if it is of ``kind`` (``str``: text, ``bytes``: binary), else AssertionError."""
        message = self.receive(timeout)
        if not isinstance(message, kind):
            got = f"{len(message)} bytes of binary" if isinstance(message, bytes) else f"text {message[:60]!r}"
            raise AssertionError(f"expected a {'text' if kind is str else 'binary'} message, got {got}")
        return message

    def receive_json(self, timeout: float | None = None) -> Any:
        """The next message, text decoded as JSON.

        Raises:
            AssertionError: the message was binary or not JSON.
        """
        text = self.receive_text(timeout)
        try:
            return json.loads(text)
        except ValueError:
            raise AssertionError(f"expected a JSON message, got {text[:60]!r}") from None

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and wait for the server's answer."""
        self._ws.close(code, reason)


class TestClient:
    """Run an app on 127.0.0.1 (port 0) in a background thread; talk to it with blocking calls.

    Use it in plain pytest, without any async plugin::

        with TestClient(app) as client:
            with client.websocket_connect("/rooms/lobby", headers={"Authorization": "Bearer t"}) as ws:
                ws.send_json({"type": "say", "text": "hi"})
                assert ws.receive_json() == {"type": "said", "text": "hi"}
            with pytest.raises(HandshakeRejected) as refused:
                client.websocket_connect("/nope").__enter__()
            assert refused.value.status == 404

    The server is the real one (websockets' ``serve()`` with the app's
    start-up and shutdown), so what a test sees is what clients get. A
    start-up failure (a ConfigurationError, a port problem) is raised from
    ``__enter__``; an app may be served by one TestClient at a time.

    Args:
        app: the app to serve.
        timeout: seconds every receive, start and stop waits (default 5).
        **serve_options: passed to ``app.serve()``.
    """

    __test__ = False

    def __init__(self, app: App, *, timeout: float = DEFAULT_TIMEOUT, **serve_options: Any) -> None:
        self.app = app
        self.timeout = timeout
        self.serve_options = serve_options
        self.host = "127.0.0.1"
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> TestClient:
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._serve_in_thread, name="wsroute TestClient", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise TimeoutError(f"the app did not start within {self.timeout:g} s")
        if self._error is not None:
            self._thread.join(self.timeout)
            raise self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(self.timeout)
            if thread.is_alive():
                raise TimeoutError(f"the app did not shut down within {self.timeout:g} s")
        if self._error is not None and exc_type is None:
            raise self._error

    def _serve_in_thread(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_app(self.app, **self.serve_options) as server:
            self.port = server.port
            self._ready.set()
            await self._stop.wait()

    def url(self, path: str = "/") -> str:
        """``ws://127.0.0.1:<port><path>``."""
        return f"ws://{self.host}:{self.port}{path}"

    @contextmanager
    def websocket_connect(
        self,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] | None = None,
    ) -> Iterator[WebSocketTestSession]:
        """Open a WebSocket to ``path``; closed when the block exits.

        Raises:
            HandshakeRejected: the server answered with an HTTP status instead
                of upgrading (404 unknown path, 401 from auth middleware…).
        """
        try:
            connection = sync_connect(
                self.url(path),
                additional_headers=dict(headers or {}),
                subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols is not None else None,
                open_timeout=self.timeout,
                close_timeout=self.timeout,
                proxy=None,
            )
        except InvalidStatus as exc:
            response = exc.response
            headers_seen = {name.lower(): value for name, value in response.headers.raw_items()}
            raise HandshakeRejected(response.status_code, headers_seen, bytes(response.body or b"")) from None
        with connection:  # websockets 17.1+: a sync connection is used as a context manager
            yield WebSocketTestSession(connection, self.timeout)

    def get(self, path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None) -> HTTPResult:
        """Send one plain HTTP/1.1 request (no upgrade) and read the answer."""
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            sock.sendall(_request_bytes(method, path, self.host, self.port, headers))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return _parse_http(b"".join(chunks))
