"""wsroute's permessage-deflate default: negotiated settings, lazy zlib state, user overrides."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest
from websockets.exceptions import ConnectionClosedError, NegotiationError
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

import wsroute
from wsroute import compression
from wsroute.testing import serve_app

CHAT = [
    json.dumps({"type": "message", "room": "general", "user": {"id": f"u{i:04d}"}, "text": "hello there " * 3})
    for i in range(20)
]


def echo_app() -> wsroute.App:
    """An app whose /echo route sends every message back."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    return app


def server_extension(server: object) -> PerMessageDeflate | None:
    """The permessage-deflate extension of the server's only open connection, if any."""
    (conn,) = server.server.connections  # type: ignore[attr-defined]
    extensions = conn.protocol.extensions
    return extensions[0] if extensions else None


async def test_default_negotiates_wsroute_settings_and_allocates_on_first_message() -> None:
    """A default client gets wsroute's windows; zlib streams appear only once messages flow, and echo is exact."""
    async with serve_app(echo_app()) as server, server.connect("/echo") as ws:
        offer = ws.response.headers["Sec-WebSocket-Extensions"]
        assert offer == (
            f"permessage-deflate; server_max_window_bits={compression.SERVER_MAX_WINDOW_BITS}; "
            f"client_max_window_bits={compression.CLIENT_MAX_WINDOW_BITS}"
        )
        extension = server_extension(server)
        assert type(extension) is compression.LazyPerMessageDeflate
        assert "encoder" not in vars(extension) and "decoder" not in vars(extension)
        for message in CHAT:
            await ws.send(message)
            assert await ws.recv() == message
        assert "encoder" in vars(extension) and "decoder" in vars(extension)
        assert extension.compress_settings == {"memLevel": compression.MEM_LEVEL}


async def test_no_context_takeover_requested_by_client_still_round_trips() -> None:
    """A client asking for server_no_context_takeover gets a fresh compressor per message, and exact echoes."""
    client_ext = ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)
    async with (
        serve_app(echo_app()) as server,
        server.connect("/echo", extensions=[client_ext], compression=None) as ws,
    ):
        assert "server_no_context_takeover" in ws.response.headers["Sec-WebSocket-Extensions"]
        extension = server_extension(server)
        assert type(extension) is compression.LazyPerMessageDeflate
        assert extension.local_no_context_takeover and extension.remote_no_context_takeover
        for message in CHAT[:5]:
            await ws.send(message)
            assert await ws.recv() == message


async def test_compression_none_negotiates_nothing() -> None:
    """``compression=None`` keeps the extension off, as in websockets."""
    async with serve_app(echo_app(), compression=None) as server, server.connect("/echo") as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert server_extension(server) is None


async def test_users_own_deflate_factory_is_kept() -> None:
    """An ``extensions=`` permessage-deflate factory of the user's replaces wsroute's default entirely."""
    own = ServerPerMessageDeflateFactory(server_max_window_bits=10, compress_settings={"memLevel": 6})
    async with serve_app(echo_app(), extensions=[own]) as server, server.connect("/echo") as ws:
        assert "server_max_window_bits=10" in ws.response.headers["Sec-WebSocket-Extensions"]
        extension = server_extension(server)
        assert type(extension) is PerMessageDeflate
        assert extension.compress_settings == {"memLevel": 6}
        await ws.send(CHAT[0])
        assert await ws.recv() == CHAT[0]


async def test_oversized_compressed_message_closes_1009() -> None:
    """A message that inflates past ``max_size`` closes with 1009, through the lazily made decoder."""
    async with serve_app(echo_app(), max_size=1000) as server, server.connect("/echo") as ws:
        await ws.send("a" * 5000)  # compresses to a few bytes, inflates past the limit
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009


def test_serve_options_fill_in_only_when_deflate_is_on() -> None:
    """serve_options adds wsroute's factory for the default or "deflate", never for None or the user's own."""
    (added,) = compression.serve_options({})["extensions"]
    assert isinstance(added, compression.LazyServerPerMessageDeflateFactory)
    assert len(compression.serve_options({"compression": "deflate"})["extensions"]) == 1
    assert "extensions" not in compression.serve_options({"compression": None})
    own = ServerPerMessageDeflateFactory()
    assert compression.serve_options({"extensions": [own]})["extensions"] == [own]


def test_deflate_factory_rejects_a_bad_mem_level() -> None:
    """memLevel outside zlib's 1-9 fails when the factory is built, naming the range."""
    with pytest.raises(ValueError, match="mem_level must be 1-9"):
        compression.deflate_factory(mem_level=0)


OFFERS = [
    [],
    [("client_max_window_bits", None)],
    [("server_no_context_takeover", None)],
    [("client_no_context_takeover", None), ("client_max_window_bits", "10")],
    [("server_max_window_bits", "10")],
]


@pytest.mark.parametrize("offer", OFFERS)
def test_negotiation_answers_as_websockets_without_making_zlib_streams(
    offer: list[tuple[str, str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """wsroute's factory answers every offer exactly as websockets' own factory, and makes no zlib stream doing it."""
    settings = {"server_max_window_bits": 12, "client_max_window_bits": 12, "compress_settings": {"memLevel": 3}}
    expected_params, expected = ServerPerMessageDeflateFactory(**settings).process_request_params(offer, [])  # type: ignore[arg-type]
    made: list[str] = []
    monkeypatch.setattr(zlib, "compressobj", lambda *a, **k: made.append("compressobj"))
    monkeypatch.setattr(zlib, "decompressobj", lambda *a, **k: made.append("decompressobj"))
    params, extension = compression.deflate_factory().process_request_params(offer, [])
    assert made == []
    assert params == expected_params
    assert type(extension) is compression.LazyPerMessageDeflate
    assert extension.__dict__ == {
        key: value for key, value in expected.__dict__.items() if key not in ("encoder", "decoder")
    }


def test_negotiation_refuses_what_websockets_refuses() -> None:
    """An offer websockets' factory refuses (a window below 8 bits) raises the same NegotiationError."""
    with pytest.raises(NegotiationError, match="client_max_window_bits"):
        compression.deflate_factory().process_request_params([("client_max_window_bits", "7")], [])
