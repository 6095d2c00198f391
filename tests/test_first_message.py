"""Routing by the first message, and every way a first message can be wrong."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed

import wsroute
from wsroute.testing import serve_app

RAN: list[str] = []


def make_app(**options) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    @app.route("/play", message="join")
    class Join(wsroute.Handler):
        async def on_connect(self):
            RAN.append("join")
            await self.send_json({"joined": self.first_message["name"]})

        @wsroute.on("move")
        async def move(self, data):
            await self.send_json({"moved": data["to"]})

    @app.route("/play", message="watch")
    async def watch(ws):
        RAN.append("watch")
        await ws.send_json({"watching": ws.first_message})

    return app


async def closed_with(server, path: str, first: str | bytes | None) -> tuple[int, str]:
    async with server.connect(path) as ws:
        if first is not None:
            await ws.send(first)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        return ws.close_code, ws.close_reason


async def test_first_message_selects_the_route() -> None:
    """Two routes on one path are chosen by the first message's type."""
    RAN.clear()
    async with serve_app(make_app()) as server:
        async with server.connect("/play") as ws:
            await ws.send(json.dumps({"type": "join", "name": "ann"}))
            assert json.loads(await ws.recv()) == {"joined": "ann"}
            await ws.send(json.dumps({"type": "move", "to": "b2"}))
            assert json.loads(await ws.recv()) == {"moved": "b2"}
        async with server.connect("/play") as ws:
            await ws.send(json.dumps({"type": "watch"}))
            assert json.loads(await ws.recv()) == {"watching": {"type": "watch"}}
    assert RAN == ["join", "watch"]


async def test_custom_message_key() -> None:
    """``App(message_key="op")`` routes by the ``op`` field."""
    async with serve_app(make_app(message_key="op")) as server, server.connect("/play") as ws:
        await ws.send(json.dumps({"op": "join", "name": "bo"}))
        assert json.loads(await ws.recv()) == {"joined": "bo"}
        await ws.send(json.dumps({"op": "move", "to": "c3"}))
        assert json.loads(await ws.recv()) == {"moved": "c3"}


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ("not json", 1008, "first message is not valid JSON"),
        ("[1, 2]", 1008, "first message must be a JSON object with a 'type' field"),
        ('{"name": "x"}', 1008, "first message has no string 'type' field"),
        ('{"type": 3}', 1008, "first message has no string 'type' field"),
        ('{"type": "dance"}', 1008, "unknown message type 'dance' (expected: join, watch)"),
        (b"\x00\x01", 1003, "first message must be JSON text with a 'type' field, got binary"),
    ],
)
async def test_bad_first_message_closes_with_reason(first, code, reason) -> None:
    """Each bad first message closes with 1008 (1003 for binary) and says why; no handler runs."""
    RAN.clear()
    async with serve_app(make_app()) as server:
        assert await closed_with(server, "/play", first) == (code, reason)
    assert RAN == []


async def test_silent_client_is_closed_after_the_timeout() -> None:
    """A client that sends no first message is closed with 1008 after the timeout."""
    RAN.clear()
    async with serve_app(make_app(first_message_timeout=0.2)) as server:
        assert await closed_with(server, "/play", None) == (1008, "no first message within 0.2 s")
    assert RAN == []


async def test_other_connections_unaffected_by_bad_first_message() -> None:
    """A rejected first message does not disturb a connection already open."""
    async with serve_app(make_app()) as server, server.connect("/play") as good:
        await good.send(json.dumps({"type": "join", "name": "ok"}))
        await good.recv()
        await closed_with(server, "/play", "garbage")
        await good.send(json.dumps({"type": "move", "to": "a1"}))
        assert json.loads(await good.recv()) == {"moved": "a1"}


TOO_DEEP = "first message is nested deeper than 256 levels"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ("[" * 982 + "]" * 982, TOO_DEEP),
        ('{"type": "join", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", TOO_DEEP),
        ('{"type": "join", "name": NaN}', "first message has NaN, which is not JSON"),
        ('{"type": "join", "name": ' + "7" * 5000 + "}", "first message has a number too long to decode"),
    ],
)
async def test_pathological_first_message_is_refused_without_a_traceback(caplog, first, reason) -> None:
    """Deep nesting, NaN and huge numbers close with 1008 and a reason; nothing is logged as an error."""
    RAN.clear()
    caplog.set_level(logging.DEBUG)
    async with serve_app(make_app()) as server:
        assert await closed_with(server, "/play", first) == (1008, reason)
        async with server.connect("/play") as ws:  # the server still routes the next client
            await ws.send(json.dumps({"type": "watch"}))
            assert json.loads(await ws.recv()) == {"watching": {"type": "watch"}}
    assert RAN == ["watch"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def raw_text_frame_close(server, path: str, payload: bytes) -> tuple[int, bytes]:
    """Open a WebSocket by hand, send ``payload`` as one masked text frame, return the server's close frame."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101 ")
        mask = b"\x01\x02\x03\x04"
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # FIN + text, masked, < 126 bytes
        first, length = await asyncio.wait_for(reader.readexactly(2), 10)
        assert first == 0x88  # FIN + close
        body = await asyncio.wait_for(reader.readexactly(length & 0x7F), 10)
        return int.from_bytes(body[:2], "big"), body[2:]
    finally:
        writer.close()


async def test_first_message_that_is_not_utf8_text_is_refused_by_the_protocol(caplog) -> None:
    """A text frame with invalid UTF-8 (sent from a raw socket) closes with 1007 before routing; nothing is logged."""
    RAN.clear()
    caplog.set_level(logging.DEBUG)
    async with serve_app(make_app()) as server:
        code, _ = await raw_text_frame_close(server, "/play", b'{"type": "join\xff\xfe"}')
    assert code == 1007
    assert RAN == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
