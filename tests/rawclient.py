"""A WebSocket client written by hand, for tests that need what client libraries will not do.

Never answering a ping, stalling mid-handshake, never reading: the tests
speak the protocol themselves over a plain socket (``asyncio.open_connection``).
``wsroute.testing.TestServer.handshake`` sends one request and drops the
connection; these keep it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct

__all__ = ["read_frame", "upgrade_request"]


def upgrade_request(path: str, host: str = "127.0.0.1") -> bytes:
    """A WebSocket upgrade request for ``path`` (RFC 6455 section 4.1), with a fresh key."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: ``(opcode, payload)``."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)
