"""Subprotocols per route, negotiated in the handshake of the matched route, against a real server."""

from __future__ import annotations

import asyncio
import logging

import pytest

import wsroute
from wsroute.testing import serve_app

FAILED = "Failed to open a WebSocket connection:"


def make_app(**options) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    @app.route("/mqtt", subprotocols=["mqtt", "mqttv3.1"])
    async def mqtt(ws):
        await ws.send(f"{ws.subprotocol}")

    @app.route("/plain")
    async def plain(ws):
        await ws.send(f"{ws.subprotocol}")

    @app.route("/none", subprotocols=[])
    async def none(ws):
        await ws.send(f"{ws.subprotocol}")

    @app.route("/play", message="join")
    async def join(ws):
        await ws.send(f"join {ws.subprotocol}")

    @app.route("/play", message="watch")
    async def watch(ws):
        await ws.send(f"watch {ws.subprotocol}")

    return app


async def test_route_negotiates_its_own_list_in_its_own_order() -> None:
    """``/mqtt`` picks the first of its list that the client offers; both sides see it as ``subprotocol``."""
    async with serve_app(make_app()) as server:
        async with server.connect("/mqtt", subprotocols=["mqttv3.1", "mqtt"]) as ws:
            assert (ws.subprotocol, await ws.recv()) == ("mqtt", "mqtt")
        async with server.connect("/mqtt", subprotocols=["chat", "mqttv3.1"]) as ws:
            assert (ws.subprotocol, await ws.recv()) == ("mqttv3.1", "mqttv3.1")


async def test_route_without_a_list_accepts_clients_offering_none_or_some() -> None:
    """A route without a list answers a client offering none, and one offering some without choosing any."""
    async with serve_app(make_app()) as server:
        async with server.connect("/plain") as ws:
            assert (ws.subprotocol, await ws.recv()) == (None, "None")
        async with server.connect("/plain", subprotocols=["chat"]) as ws:
            assert (ws.subprotocol, await ws.recv()) == (None, "None")
        answer = await server.handshake("/plain", {"Sec-WebSocket-Protocol": "chat"})
        assert answer.status == 101 and "sec-websocket-protocol" not in answer.headers


@pytest.mark.parametrize(
    ("offered", "text"),
    [
        (None, f"{FAILED} missing subprotocol; this path expects one of mqtt, mqttv3.1.\n"),
        (["chat", "v2.chat"], f"{FAILED} invalid subprotocol; expected one of mqtt, mqttv3.1.\n"),
    ],
)
async def test_route_with_a_list_refuses_clients_without_a_shared_subprotocol(offered, text, caplog) -> None:
    """Offering none, or only unsupported subprotocols, to a route with a list gets 400 naming the list, unlogged."""
    caplog.set_level(logging.INFO)
    async with serve_app(make_app()) as server:
        assert await server.rejection("/mqtt", subprotocols=offered) == 400
        headers = {"Sec-WebSocket-Protocol": ", ".join(offered)} if offered else {}
        answer = await server.handshake("/mqtt", headers)
        assert (answer.status, answer.text) == (400, text)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def test_malformed_protocol_header_gets_400() -> None:
    """A ``Sec-WebSocket-Protocol`` that is not a token list (sent by hand) gets 400, on any route."""
    async with serve_app(make_app()) as server:
        for path in ("/mqtt", "/plain"):
            answer = await server.handshake(path, {"Sec-WebSocket-Protocol": "mq tt"})
            assert answer.status == 400
            assert answer.text.startswith(f"{FAILED} invalid Sec-WebSocket-Protocol header")


async def test_app_list_is_the_default_and_routes_override_it() -> None:
    """``App(subprotocols=...)`` applies to routes without a list; ``subprotocols=[]`` opts a route out."""
    async with serve_app(make_app(subprotocols=["chat"])) as server:
        async with server.connect("/plain", subprotocols=["chat"]) as ws:
            assert await ws.recv() == "chat"
        assert await server.rejection("/plain") == 400
        async with server.connect("/none") as ws:  # the bug: other routes answered 400 to clients offering none
            assert await ws.recv() == "None"
        async with server.connect("/mqtt", subprotocols=["mqtt"]) as ws:
            assert await ws.recv() == "mqtt"


async def test_message_routed_path_negotiates_before_the_first_message() -> None:
    """Routes sharing a path by first message share its list; the handler sees the negotiated subprotocol."""
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws):
        await ws.send(f"{ws.route.message} {ws.subprotocol}")

    app.add_route("/play", handler, message="join", subprotocols=["game.v2", "game.v1"])
    app.add_route("/play", handler, message="watch", subprotocols=["game.v2", "game.v1"])
    async with serve_app(app) as server, server.connect("/play", subprotocols=["game.v1"]) as ws:
        await ws.send('{"type": "watch"}')
        assert await ws.recv() == "watch game.v1"
    with pytest.raises(wsroute.RouteError, match=r"route '/play\[spectate\]': subprotocols=\['game.v1'\] differs from"):
        app.add_route("/play", handler, message="spectate", subprotocols=["game.v1"])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda app, h: wsroute.App(subprotocols="mqtt"), wsroute.ConfigurationError,
         "App(): subprotocols='mqtt'; expected a list of str such as ['mqtt']"),
        (lambda app, h: app.add_route("/x", h, subprotocols=["bad token"]), wsroute.RouteError,
         "route '/x': subprotocol 'bad token' is not an HTTP token"),
        (lambda app, h: app.add_route("/x", h, subprotocols=["a", "a"]), wsroute.RouteError,
         "route '/x': subprotocol 'a' is listed twice"),
        (lambda app, h: app.serve("127.0.0.1", 0, subprotocols=["a"]), wsroute.ConfigurationError,
         "subprotocols= cannot be passed to wsroute: pass App(subprotocols=[...])"),
    ],
)
def test_bad_subprotocol_lists_fail_at_registration(call, error, message) -> None:
    """Lists that are not distinct tokens, or a websockets-level list, raise naming the place and the fix."""
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws):
        pass

    with pytest.raises(error) as caught:
        call(app, handler)
    assert str(caught.value).startswith(message)


async def test_own_select_subprotocol_replaces_negotiation_unless_routes_have_lists() -> None:
    """A user's ``select_subprotocol=`` is used when no route has a list, and refused at start-up otherwise."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/any")
    async def any_route(ws):
        await ws.send(f"{ws.subprotocol}")

    def first_offered(conn, offered):
        return offered[0] if offered else None

    async with serve_app(app, select_subprotocol=first_offered) as server, server.connect(
        "/any", subprotocols=["x.y"]
    ) as ws:
        assert await ws.recv() == "x.y"
    with pytest.raises(wsroute.ConfigurationError, match="select_subprotocol= replaces wsroute's per-route"):
        async with serve_app(make_app(), select_subprotocol=first_offered):
            pass


@pytest.mark.parametrize(
    ("header", "status", "chosen"),
    [
        ("  mqttv3.1 ,   mqtt  ", 101, "mqtt"),
        ("mqtt, mqtt", 101, "mqtt"),
        (",mqttv3.1,,", 101, "mqttv3.1"),
        ("MQTT", 400, None),  # compared exactly: browsers fail a connection whose answer they did not offer
        ("mqtt;q=1", 400, None),
        ('"mqtt"', 400, None),
        ("", 400, None),
    ],
)
async def test_header_list_syntax_and_exact_names(header: str, status: int, chosen: str | None, caplog) -> None:
    """RFC 9110 list syntax (spaces, empty elements, repeats) is read; names are compared exactly; junk gets 400."""
    caplog.set_level(logging.WARNING)
    async with serve_app(make_app()) as server:
        answer = await server.handshake("/mqtt", {"Sec-WebSocket-Protocol": header})
        assert answer.status == status
        assert answer.headers.get("sec-websocket-protocol") == chosen
    assert caplog.records == []


async def test_repeated_protocol_headers_count_as_one_list() -> None:
    """Two Sec-WebSocket-Protocol lines are one list, in order, for the route's choice."""
    async with serve_app(make_app()) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        lines = [
            "GET /mqtt HTTP/1.1",
            "Host: localhost",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: chat",
            "Sec-WebSocket-Protocol: mqttv3.1",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nSec-WebSocket-Protocol: mqttv3.1\r\n" in head


async def test_handler_class_sees_the_choice_with_a_trailing_slash() -> None:
    """A Handler class reads ``self.ws.subprotocol`` for its route, reached with the optional trailing slash."""
    app = wsroute.App(load_entrypoints=False, subprotocols=["chat"])

    @app.route("/mqtt", subprotocols=["mqtt"])
    class Mqtt(wsroute.Handler):
        async def on_connect(self):
            await self.ws.send(f"{self.ws.subprotocol}")

    async with serve_app(app) as server, server.connect("/mqtt/?v=1", subprotocols=["chat", "mqtt"]) as ws:
        assert ws.subprotocol == "mqtt"
        assert await ws.recv() == "mqtt"
