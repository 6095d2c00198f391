"""A minimal WebSocket client: the load generator's side of every scenario.

Why not websockets' client: on 2 cores the clients share the machine with
the server, and a full client (a reader task, a Future per ``recv()``, frame
objects, UTF-8 decoding, the closing-handshake timers) costs *more* CPU per
handshake or message than the server does, so the measurement would be of
the clients. This protocol does the opening handshake, then only parses
frame headers: it counts data frames (fan-out), wakes one waiter per frame
(echo round trips), answers pings, and closes cleanly. Frames it sends are
built once per message (:func:`client_frame`). RFC 6455 is followed where the server can tell: the handshake
is complete, and the client's frames (pong, close) are masked (with a zero
key, which is allowed: the mask is there to protect proxies, not loopback).

Two options cover the peers of :mod:`benchmarks.peers`: ``deflate=True``
offers permessage-deflate as browsers do (for the memory phases; compressed
frames are counted, not inflated), and ``protocol="sio"`` speaks Engine.IO 4
/ Socket.IO 5 over the WebSocket: it waits for the ``0{...}`` open packet,
connects to the default namespace (``40``), answers pings (``2`` → ``3``),
and counts only event packets.
"""

from __future__ import annotations

import asyncio
import base64
import os
import zlib
from collections.abc import Callable
from typing import Any, cast

TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9
ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """Return a complete masked client frame for ``payload`` (FIN set)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + ZERO_MASK + payload


DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
"""What Chromium and Firefox offer."""


def handshake_request(host: str, port: int, path: str, headers: dict[str, str], deflate: bool = False) -> bytes:
    """Return the HTTP upgrade request, with a fresh Sec-WebSocket-Key."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if deflate:
        lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Receiver(asyncio.Protocol):
    """Counts the data frames of one connection; calls ``on_message`` for each."""

    def __init__(self, request: bytes, on_message: Callable[[], None], protocol: str = "ws") -> None:
        self.request = request
        self.on_message = on_message
        self.sio = protocol == "sio"
        self.buffer = bytearray()
        self.upgraded: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        """Done when messages can flow: at the 101, or for Socket.IO once the namespace is joined."""
        self.closed = asyncio.get_running_loop().create_future()
        self.deflate = False
        self.inflater: Any = None
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = self.buffer.startswith(b"HTTP/1.1 101")
            self.deflate = b"permessage-deflate" in self.buffer[:end].lower()
            del self.buffer[: end + 4]
            self.upgraded.set_result(ok)
            if not ok:
                if not self.ready.done():
                    self.ready.set_result(False)
                return
            if not self.sio:
                self.ready.set_result(True)
        self._frames()

    def _frames(self) -> None:
        """Consume every complete frame in the buffer."""
        buf, at, size = self.buffer, 0, len(self.buffer)
        while size - at >= 2:
            length, header = buf[at + 1] & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, header = int.from_bytes(buf[at + 2 : at + 4], "big"), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, header = int.from_bytes(buf[at + 2 : at + 10], "big"), 10
            if size - at < header + length:
                break
            opcode = buf[at] & 0x0F
            if opcode in (TEXT, BINARY) and self.sio:
                self._packet(bytes(buf[at + header : at + header + length]), bool(buf[at] & 0x40))
            elif opcode in (TEXT, BINARY):
                self.on_message()
                waiter = self.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif opcode == PING:
                self._send(0xA, bytes(buf[at + header : at + header + length]))
            elif opcode == CLOSE and not self.closing:
                self.closing = True
                self._send(CLOSE, b"")
            at += header + length
        del buf[:at]

    def _packet(self, payload: bytes, compressed: bool) -> None:
        """One Engine.IO packet: open, namespace connect, ping, or an event to count."""
        if compressed:
            if self.inflater is None:
                self.inflater = zlib.decompressobj(-15)
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        if payload == b"2":  # ping
            self._send(TEXT, b"3")
        elif payload[:1] == b"0":  # open: join the default namespace
            self._send(TEXT, b"40")
        elif payload[:2] == b"40":
            if not self.ready.done():
                self.ready.set_result(True)
        elif payload[:2] == b"42":  # an event
            self.on_message()
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _send(self, opcode: int, payload: bytes) -> None:
        """Send one masked control frame (payload < 126 bytes)."""
        if self.transport is not None and not self.transport.is_closing():
            frame = bytes([0x80 | opcode, 0x80 | len(payload)]) + ZERO_MASK + payload
            self.transport.write(frame)

    async def round_trip(self, frame: bytes) -> None:
        """Send one prepared frame and wait for the next data frame back."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(frame)
        await waiter

    def close(self) -> None:
        """Start the closing handshake; the server then closes TCP."""
        if not self.closing:
            self.closing = True
            self._send(CLOSE, b"\x03\xe8")  # 1000

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_result(False)
        if not self.ready.done():
            self.ready.set_result(False)
        if not self.closed.done():
            self.closed.set_result(True)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection lost"))


async def open_receiver(
    uri_host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    on_message: Callable[[], None],
    timeout: float = 10,
    protocol_name: str = "ws",
    deflate: bool = False,
) -> Receiver | None:
    """Connect and upgrade (and join Socket.IO's namespace); None if the server refused.

    Args:
        protocol_name: ``ws`` (plain WebSocket) or ``sio`` (Socket.IO 5 on Engine.IO 4).
        deflate: offer permessage-deflate.
    """
    loop = asyncio.get_running_loop()
    request = handshake_request(uri_host, port, path, headers, deflate)
    protocol: Receiver | None = None
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                lambda: Receiver(request, on_message, protocol_name), uri_host, port
            )
            if await protocol.ready:
                return protocol
    except (OSError, TimeoutError):
        pass
    if protocol is not None and protocol.transport is not None:
        protocol.transport.close()
    return None
