"""Typed messages end to end: real servers, real clients, every invalid-payload path."""

from __future__ import annotations

import asyncio
import json
import logging

import attrs
import pytest
from websockets.exceptions import ConnectionClosed

import wsroute
from wsroute.testing import serve_app


@wsroute.message("join")
@attrs.frozen
class Join:
    name: str


@wsroute.message("move")
@attrs.frozen
class Move:
    x: int
    y: int


@wsroute.message("moved")
@attrs.frozen
class Moved:
    by: str
    x: int
    y: int


def game_app(**options: object) -> wsroute.App:
    """The issue's game: typed first message, typed and untyped @on, on_message for the rest."""
    route_options = options.pop("route_options", {})
    app = wsroute.App(load_entrypoints=False, **options)  # type: ignore[arg-type]

    @app.route("/play", message=Join, **route_options)  # type: ignore[arg-type]
    class Game(wsroute.Handler):
        sends = (Moved,)

        async def on_connect(self):
            await self.send_json({"first": type(self.first_message).__name__, "name": self.first_message.name})

        @wsroute.on(Move)
        async def move(self, msg: Move):
            await self.send_json(Moved(by=self.first_message.name, x=msg.x, y=msg.y))

        @wsroute.on("chat")
        async def chat(self, data):
            await self.send_json({"chat": data})

        async def on_message(self, message):
            await self.send_json({"other": message if isinstance(message, str) else message.hex()})

    return app


async def joined(server, name: str = "ann"):
    ws = await server.connect("/play")
    await ws.send(json.dumps({"type": "join", "name": name}))
    assert json.loads(await ws.recv()) == {"first": "Join", "name": name}
    return ws


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_typed_on_receives_a_validated_instance_and_send_json_tags_it() -> None:
    """@on(Move) gets a Move; send_json(Moved(...)) arrives with "type": "moved" first."""
    async with serve_app(game_app()) as server:
        ws = await joined(server)
        async with ws:
            await ws.send('{"type": "move", "x": 1, "y": 2}')
            assert await ws.recv() == '{"type":"moved","by":"ann","x":1,"y":2}'


async def test_typed_and_untyped_on_live_in_one_handler() -> None:
    """An untyped @on("chat") keeps receiving the dict beside typed entries; the rest goes to on_message."""
    async with serve_app(game_app()) as server:
        ws = await joined(server)
        async with ws:
            await ws.send('{"type": "chat", "text": "hi", "n": [1, 2]}')
            assert json.loads(await ws.recv()) == {"chat": {"type": "chat", "text": "hi", "n": [1, 2]}}
            for sent, seen in (('{"type": "dance"}', '{"type": "dance"}'), ("plain", "plain"), (b"\x01", "01")):
                await ws.send(sent)
                assert json.loads(await ws.recv()) == {"other": seen}


async def test_typed_message_nested_too_deeply_takes_the_untyped_path() -> None:
    """The 256-level limit holds for typed messages too: such text goes to on_message, not to @on(Move)."""
    deep = '{"type": "move", "x": 1, "y": 2, "z": ' + "[" * 300 + "]" * 300 + "}"
    async with serve_app(game_app()) as server:
        ws = await joined(server)
        async with ws:
            await ws.send(deep)
            assert json.loads(await ws.recv()) == {"other": deep}


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ('{"type": "move", "x": "one", "y": 2}', "Expected `int`, got `str` - at `$.x`"),
        ('{"type": "move", "x": 1}', "Object missing required field `y`"),
        ('{"type": "move", "x": 1, "y": 1e999}', "Number out of range - at `$.y`"),
    ],
)
async def test_invalid_typed_message_gets_an_error_reply_and_stays_open(caplog, payload: str, detail: str) -> None:
    """By default the client gets {"type": "error", "for": "move", "detail": ...} and can go on."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(game_app()) as server:
        ws = await joined(server)
        async with ws:
            await ws.send(payload)
            assert json.loads(await ws.recv()) == {"type": "error", "for": "move", "detail": detail}
            await ws.send('{"type": "move", "x": 3, "y": 4}')
            assert json.loads(await ws.recv()) == {"type": "moved", "by": "ann", "x": 3, "y": 4}
    assert problems(caplog) == []


async def test_app_close_mode_closes_with_1008_and_the_detail(caplog) -> None:
    """App(on_invalid_message="close"): 1008 with the detail as reason, no 1011, no traceback."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(game_app(on_invalid_message="close")) as server:
        ws = await joined(server)
        await ws.send('{"type": "move", "x": "one", "y": 2}')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008
        assert ws.close_reason == "invalid 'move' message: Expected `int`, got `str` - at `$.x`"
    assert problems(caplog) == []


@pytest.mark.parametrize(("app_mode", "route_mode", "closes"), [("reply", "close", True), ("close", "reply", False)])
async def test_route_on_invalid_message_overrides_the_app(app_mode: str, route_mode: str, closes: bool) -> None:
    """@app.route(..., on_invalid_message=...) wins over the App's setting, both ways."""
    app = game_app(on_invalid_message=app_mode, route_options={"on_invalid_message": route_mode})
    async with serve_app(app) as server:
        ws = await joined(server)
        async with ws:
            await ws.send('{"type": "move", "x": 1, "y": "two"}')
            if closes:
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert (ws.close_code, ws.close_reason) == (
                    1008, "invalid 'move' message: Expected `int`, got `str` - at `$.y`"
                )
            else:
                assert json.loads(await ws.recv())["for"] == "move"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ('{"type": "join", "name": 7}', "invalid 'join' message: Expected `str`, got `int` - at `$.name`"),
        ('{"type": "join"}', "invalid 'join' message: Object missing required field `name`"),
    ],
)
async def test_invalid_typed_first_message_always_closes_1008(caplog, first: str, reason: str) -> None:
    """A first message that does not fit its class closes with 1008 and the detail, even in reply mode."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(game_app(on_invalid_message="reply")) as server, server.connect("/play") as ws:
        await ws.send(first)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert (ws.close_code, ws.close_reason) == (1008, reason)
    assert problems(caplog) == []


async def test_long_invalid_first_message_detail_is_cut_to_123_bytes() -> None:
    """A detail longer than a close frame allows is cut (with "...") instead of failing the close."""
    long_field = "f" * 200
    Wide = wsroute.message("wide")(attrs.make_class("Wide", {long_field: attrs.field(type=str)}, frozen=True))
    app = wsroute.App(load_entrypoints=False)

    @app.route("/wide", message=Wide)
    async def wide(ws):
        await ws.send("never")

    async with serve_app(app) as server, server.connect("/wide") as ws:
        await ws.send('{"type": "wide"}')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008
        assert ws.close_reason.startswith("invalid 'wide' message: Object missing required field `fff")
        assert ws.close_reason.endswith("...") and len(ws.close_reason.encode()) == 123


async def test_message_key_is_used_for_dispatch_replies_and_tags() -> None:
    """App(message_key="op") reads, answers and tags with "op" everywhere."""
    app = game_app(message_key="op")
    async with serve_app(app) as server, server.connect("/play") as ws:
        await ws.send('{"op": "join", "name": "bo"}')
        assert json.loads(await ws.recv()) == {"first": "Join", "name": "bo"}
        await ws.send('{"op": "move", "x": 5, "y": 6}')
        assert await ws.recv() == '{"op":"moved","by":"bo","x":5,"y":6}'
        await ws.send('{"op": "move", "x": 5}')
        assert json.loads(await ws.recv()) == {
            "op": "error", "for": "move", "detail": "Object missing required field `y`"
        }


async def test_hub_json_methods_tag_message_instances() -> None:
    """publish_json, broadcast_json and send_json_to_user add the type field to message instances."""
    app = wsroute.App(load_entrypoints=False, message_key="kind")
    app.middleware(wsroute.query_token_auth(lambda token: token))
    ready = asyncio.Event()

    @app.route("/feed")
    class Feed(wsroute.Handler):
        async def on_connect(self):
            await self.subscribe("board")
            ready.set()

    async with serve_app(app) as server, server.connect("/feed?token=ann") as ws:
        await asyncio.wait_for(ready.wait(), 5)
        await app.hub.publish_json("board", Moved(by="a", x=1, y=1))
        await app.hub.broadcast_json(Moved(by="b", x=2, y=2))
        await app.hub.send_json_to_user("ann", Moved(by="c", x=3, y=3))
        await app.hub.publish_json("board", {"plain": True})
        received = [await asyncio.wait_for(ws.recv(), 5) for _ in range(4)]
    assert received == [
        '{"kind":"moved","by":"a","x":1,"y":1}',
        '{"kind":"moved","by":"b","x":2,"y":2}',
        '{"kind":"moved","by":"c","x":3,"y":3}',
        '{"plain":true}',
    ]


async def test_an_apps_own_hub_tags_with_the_apps_message_key() -> None:
    """App(hub=Hub(...)) gets the app's message_key; hub_options cannot set another one."""
    from wsroute.hub import Hub

    hub = Hub()
    app = wsroute.App(load_entrypoints=False, hub=hub, message_key="op")
    assert hub.message_key == "op"
    with pytest.raises(wsroute.ConfigurationError, match=r"use App\(message_key=\.\.\.\) instead"):
        wsroute.App(load_entrypoints=False, hub_options={"message_key": "x"})

    @app.route("/feed")
    class Feed(wsroute.Handler):
        async def on_connect(self):
            await self.subscribe("t")
            await self.send("ready")

    async with serve_app(app) as server, server.connect("/feed") as ws:
        assert await ws.recv() == "ready"
        await hub.publish_json("t", Moved(by="h", x=0, y=0))
        assert await asyncio.wait_for(ws.recv(), 5) == '{"op":"moved","by":"h","x":0,"y":0}'


async def test_function_handler_validates_with_message_decoder_and_connection_send_json() -> None:
    """wsroute.MessageDecoder in a function handler; ws.send_json tags message instances too."""
    app = wsroute.App(load_entrypoints=False)
    decoder = wsroute.MessageDecoder(Move, Join, key=app.message_key)

    @app.route("/fn")
    async def fn(ws):
        async for raw in ws:
            try:
                msg = decoder.decode(raw)
            except wsroute.InvalidMessage as exc:
                await ws.send_json({"type": "error", "for": exc.message_type, "detail": exc.detail})
                continue
            if isinstance(msg, Move):
                await ws.send_json(Moved(by="fn", x=msg.x, y=msg.y))
            else:
                await ws.send_json({"hello": msg.name})

    async with serve_app(app) as server, server.connect("/fn") as ws:
        await ws.send('{"type": "move", "x": 1, "y": 2}')
        assert await ws.recv() == '{"type":"moved","by":"fn","x":1,"y":2}'
        await ws.send('{"type": "join", "name": "cy"}')
        assert json.loads(await ws.recv()) == {"hello": "cy"}
        await ws.send('{"type": "fly"}')
        assert json.loads(await ws.recv()) == {
            "type": "error", "for": "fly", "detail": "unknown message type 'fly' (expected: join, move)"
        }
        await ws.send("not json")
        assert json.loads(await ws.recv())["for"] == ""


async def test_first_message_routing_by_class_next_to_a_str_route() -> None:
    """A path keyed by first message mixes a class route and a str route; each gets its own first message."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/lobby", message=Join)
    async def join(ws):
        await ws.send_json({"join": ws.first_message.name})

    @app.route("/lobby", message="watch")
    async def watch(ws):
        await ws.send_json({"watch": ws.first_message})

    async with serve_app(app) as server:
        async with server.connect("/lobby") as ws:
            await ws.send('{"type": "join", "name": "di"}')
            assert json.loads(await ws.recv()) == {"join": "di"}
        async with server.connect("/lobby") as ws:
            await ws.send('{"type": "watch", "seat": 3}')
            assert json.loads(await ws.recv()) == {"watch": {"type": "watch", "seat": 3}}
    assert [route.label for route in app.routes] == ["/lobby[join]", "/lobby[watch]"]


# -- registration errors ---------------------------------------------------------------------------


def test_two_on_classes_with_one_name_fail_at_registration() -> None:
    """Two @on classes named "move" on one handler are refused when the route is registered."""

    @wsroute.message("move")
    @attrs.frozen
    class OtherMove:
        dx: int

    class Twice(wsroute.Handler):
        @wsroute.on(Move)
        async def a(self, msg): ...

        @wsroute.on(OtherMove)
        async def b(self, msg): ...

    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(wsroute.HandlerError, match="both receive messages of type 'move'; keep one method per type"):
        app.add_route("/twice", Twice)


def test_first_message_class_and_on_class_with_one_name_fail_at_registration() -> None:
    """A first-message class and an @on class sharing a wire name on one route are refused."""

    @wsroute.message("join")
    @attrs.frozen
    class Rejoin:
        seat: int

    class Game(wsroute.Handler):
        @wsroute.on(Rejoin)
        async def rejoin(self, msg): ...

    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(wsroute.RouteError, match=r"route '/play': .*Join.* and .*Rejoin.* are both the message 'join'"):
        app.add_route("/play", Game, message=Join)


def test_field_named_like_message_key_fails_at_registration() -> None:
    """With App(message_key="kind"), a class with a field "kind" cannot be told apart on the wire."""

    @wsroute.message("piece")
    @attrs.frozen
    class Piece:
        kind: str

    class Board(wsroute.Handler):
        @wsroute.on(Piece)
        async def piece(self, msg): ...

    app = wsroute.App(load_entrypoints=False, message_key="kind")
    with pytest.raises(wsroute.RouteError, match="has a field named 'kind', which is the type field on the wire"):
        app.add_route("/board", Board)


@pytest.mark.parametrize("sends", [(dict,), [Moved], Moved])
def test_sends_must_be_a_tuple_of_message_classes(sends: object) -> None:
    """A Handler's sends is checked when the route is registered."""

    class Talker(wsroute.Handler):
        pass

    Talker.sends = sends  # type: ignore[assignment]
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(wsroute.HandlerError, match=r"sends is .*; expected a tuple of @wsroute\.message classes"):
        app.add_route("/talk", Talker)


def test_on_with_a_class_that_is_not_a_message_fails_at_decoration() -> None:
    """@wsroute.on(SomeClass) without @wsroute.message says how to fix it."""

    @attrs.frozen
    class Plain:
        x: int

    with pytest.raises(TypeError, match=r"not a message class; decorate it with @wsroute.message\('name'\)"):
        wsroute.on(Plain)


def test_message_on_a_non_attrs_class_fails() -> None:
    """@wsroute.message only takes attrs classes."""
    with pytest.raises(TypeError, match=r"is not an attrs class; put @attrs\.frozen"):

        @wsroute.message("bare")
        class Bare:
            pass


@pytest.mark.parametrize("message", [int, attrs.make_class("Plain", ["x"]), ""])
def test_route_message_must_be_a_name_or_a_message_class(message: object) -> None:
    """message= takes a non-empty str or a @wsroute.message class, checked at registration."""
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws): ...

    with pytest.raises(wsroute.RouteError, match=r"message= must be a non-empty str or a @wsroute\.message class"):
        app.add_route("/x", handler, message=message)  # type: ignore[arg-type]


def test_on_invalid_message_is_checked_for_app_and_route() -> None:
    """An unknown on_invalid_message fails at App() and at registration, naming the choices."""
    with pytest.raises(wsroute.ConfigurationError, match=r"on_invalid_message='drop'.*'reply', 'close'"):
        wsroute.App(load_entrypoints=False, on_invalid_message="drop")
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws): ...

    with pytest.raises(wsroute.RouteError, match="on_invalid_message='ignore'; expected one of 'reply', 'close'"):
        app.add_route("/x", handler, on_invalid_message="ignore")


async def test_plain_third_party_client_plays_typed_and_sees_the_close() -> None:
    """websocket-client (sync, no wsroute code) gets tagged answers, the error reply, and 1008 in close mode."""
    import websocket  # websocket-client

    def play(url: str) -> list[object]:
        seen: list[object] = []
        ws = websocket.create_connection(url + "/play", timeout=5)
        ws.send('{"type": "join", "name": "wc"}')
        seen.append(json.loads(ws.recv()))
        ws.send('{"type": "move", "x": 7, "y": 8}')
        seen.append(ws.recv())
        ws.send('{"type": "move", "x": 7}')
        seen.append(json.loads(ws.recv()))
        ws.close()
        return seen

    def closed(url: str) -> tuple[int, str]:
        ws = websocket.create_connection(url + "/play", timeout=5)
        try:
            ws.send('{"type": "join", "name": null}')
            _, frame = ws.recv_data_frame(control_frame=True)  # the server's close frame (answered)
        finally:
            ws.shutdown()
        return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()

    async with serve_app(game_app()) as server:
        seen = await asyncio.to_thread(play, server.url(""))
        code_reason = await asyncio.to_thread(closed, server.url(""))
    assert seen == [
        {"first": "Join", "name": "wc"},
        '{"type":"moved","by":"wc","x":7,"y":8}',
        {"type": "error", "for": "move", "detail": "Object missing required field `y`"},
    ]
    assert code_reason == (1008, "invalid 'join' message: Expected `str`, got `null` - at `$.name`")
