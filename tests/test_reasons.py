"""Close reasons always fit a close frame, whoever closes: the client gets the code asked for."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

import wsroute
from wsroute.reasons import MAX_CLOSE_REASON_BYTES, fit_close_reason
from wsroute.testing import serve_app

#: 1 + 72 * 3 = 217 bytes: the 120-byte cut falls inside the 40th "€".
LONG = "x" + "€" * 72
#: What a client receives for LONG: 1 + 39 * 3 = 118 bytes, then the cut mark.
LONG_CUT = "x" + "€" * 39 + "..."


def test_short_reasons_are_unchanged() -> None:
    """A reason that fits (123 bytes exactly included) is returned as it is."""
    assert fit_close_reason("") == ""
    assert fit_close_reason("bye") == "bye"
    assert fit_close_reason("é" * 61 + "x") == "é" * 61 + "x"  # 123 bytes


def test_long_reason_is_cut_at_a_character_boundary() -> None:
    """A multi-byte character split by the cut is dropped whole, then "..." marks the cut."""
    assert fit_close_reason(LONG) == LONG_CUT
    assert len(LONG_CUT.encode()) == 121
    assert fit_close_reason("é" * 62) == "é" * 60 + "..."  # 124 bytes -> 123
    assert fit_close_reason("🙂" * 40) == "🙂" * 30 + "..."  # 4-byte characters


def test_unencodable_reason_is_made_sendable() -> None:
    """Lone surrogates, which UTF-8 cannot carry, become "?" instead of failing the close."""
    assert fit_close_reason("bad \ud800 reason") == "bad ? reason"


@settings(max_examples=200, deadline=None, database=None)
@given(st.text() | st.text(alphabet=st.characters(min_codepoint=0x80), min_size=40))
def test_any_reason_fits_and_keeps_its_start(reason: str) -> None:
    """For any text the result is at most 123 bytes of valid UTF-8 and starts like the original."""
    cut = fit_close_reason(reason)
    encoded = cut.encode()  # never raises: always valid UTF-8
    assert len(encoded) <= MAX_CLOSE_REASON_BYTES
    sendable = reason.encode(errors="replace").decode()
    if len(sendable.encode()) <= MAX_CLOSE_REASON_BYTES:
        assert cut == sendable
    else:
        assert cut.endswith("...")
        assert sendable.startswith(cut[:-3])
        assert len(encoded) > MAX_CLOSE_REASON_BYTES - 3 - 4  # no more than one character lost to the cut


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.route("/class-close")
    class Kick(wsroute.Handler):
        async def on_message(self, message):
            await self.close(4000, LONG)

    @app.route("/function-close")
    async def kick(ws):
        await ws.recv()
        await ws.close(4001, LONG)

    @app.route("/wait")
    async def wait(ws):
        await ws.wait_closed()

    @app.route("/play", message="join")
    async def join(ws):
        await ws.wait_closed()

    return app


async def received_close(ws) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize(("path", "code"), [("/class-close", 4000), ("/function-close", 4001)])
async def test_handler_close_with_a_long_reason_sends_the_code_asked_for(caplog, path, code) -> None:
    """Handler.close and ws.close with a 217-byte reason give the client that code and the cut reason."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(make_app()) as server, server.connect(path) as ws:
        await ws.send("go")
        assert await received_close(ws) == (code, LONG_CUT)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_server_close_with_a_long_reason_sends_the_code_asked_for() -> None:
    """websockets' Server.close(code, reason), as a shutdown uses it, cuts the reason too."""
    async with serve_app(make_app()) as server, server.connect("/wait") as ws:
        server.server.close(close_connections=True, code=4002, reason=LONG)
        assert await received_close(ws) == (4002, LONG_CUT)


async def test_first_message_rejection_quoting_client_text_fits() -> None:
    """An unknown type of 100 two-byte characters is quoted, cut to fit, and sent with 1008."""
    async with serve_app(make_app()) as server, server.connect("/play") as ws:
        await ws.send('{"type": "' + "ü" * 100 + '"}')
        code, reason = await received_close(ws)
    assert code == 1008
    assert reason == "unknown message type '" + "ü" * 49 + "..."
    assert len(reason.encode()) == 123
