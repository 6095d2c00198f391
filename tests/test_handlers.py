"""Handler classes: lifecycle, dispatch, send helpers, spawned tasks."""

from __future__ import annotations

import asyncio
import json
import logging

import attrs
import pytest
from websockets.exceptions import ConnectionClosed

import wsroute
from wsroute.testing import serve_app


async def test_lifecycle_runs_connect_messages_disconnect() -> None:
    """on_connect, on_message for each message, then on_disconnect with the close code."""
    events: list[object] = []
    done = asyncio.Event()
    app = wsroute.App(load_entrypoints=False)

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self):
            events.append(("connect", self.params["room"], self.request.path, type(self.ws).__name__))

        async def on_message(self, message):
            events.append(("message", message))
            await self.send(message)

        async def on_disconnect(self, code, reason):
            events.append(("disconnect", code, reason))
            done.set()

    async with serve_app(app) as server:
        async with server.connect("/rooms/lobby") as ws:
            for text in ("a", "b", "c"):
                await ws.send(text)
                assert await ws.recv() == text
            await ws.close(1000, "bye")
        await asyncio.wait_for(done.wait(), 5)
    assert events == [
        ("connect", "lobby", "/rooms/lobby", "Connection"),
        ("message", "a"),
        ("message", "b"),
        ("message", "c"),
        ("disconnect", 1000, "bye"),
    ]


async def test_on_dispatch_and_fallback_to_on_message() -> None:
    """Typed JSON goes to its @on method; text, binary and unknown types go to on_message."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/x")
    class X(wsroute.Handler):
        @wsroute.on("ping")
        async def ping(self, data):
            await self.send_json({"pong": data["n"]})

        async def on_message(self, message):
            await self.send_json({"other": message if isinstance(message, str) else message.hex()})

    async with serve_app(app) as server, server.connect("/x") as ws:
        await ws.send('{"type": "ping", "n": 1}')
        assert json.loads(await ws.recv()) == {"pong": 1}
        await ws.send('{"type": "nope"}')
        assert json.loads(await ws.recv()) == {"other": '{"type": "nope"}'}
        await ws.send("plain")
        assert json.loads(await ws.recv()) == {"other": "plain"}
        await ws.send(b"\x01\x02")
        assert json.loads(await ws.recv()) == {"other": "0102"}


async def test_unhandled_messages_never_crash_the_connection() -> None:
    """A handler without on_message ignores what it does not handle and stays open."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/quiet")
    class Quiet(wsroute.Handler):
        @wsroute.on("hi")
        async def hi(self, data):
            await self.send("hello")

    async with serve_app(app) as server, server.connect("/quiet") as ws:
        for junk in ("x", b"\xff", "{bad json", '{"type": "other"}', "[]"):
            await ws.send(junk)
        await ws.send('{"type": "hi"}')
        assert await ws.recv() == "hello"


async def test_on_methods_are_inherited_and_overridable() -> None:
    """Subclasses inherit @on methods and may replace them."""

    class Base(wsroute.Handler):
        @wsroute.on("a")
        async def a(self, data):
            await self.send("base-a")

        @wsroute.on("b")
        async def b(self, data):
            await self.send("base-b")

    app = wsroute.App(load_entrypoints=False)

    @app.route("/child")
    class Child(Base):
        @wsroute.on("b")
        async def b2(self, data):
            await self.send("child-b")

    async with serve_app(app) as server, server.connect("/child") as ws:
        await ws.send('{"type": "a"}')
        assert await ws.recv() == "base-a"
        await ws.send('{"type": "b"}')
        assert await ws.recv() == "child-b"


async def test_close_from_handler_reaches_client_and_disconnect() -> None:
    """self.close(code, reason) closes with that code and on_disconnect sees it."""
    seen: list[tuple[int, str]] = []
    done = asyncio.Event()
    app = wsroute.App(load_entrypoints=False)

    @app.route("/kick")
    class Kick(wsroute.Handler):
        async def on_message(self, message):
            await self.close(4000, "kicked")

        async def on_disconnect(self, code, reason):
            seen.append((code, reason))
            done.set()

    async with serve_app(app) as server, server.connect("/kick") as ws:
        await ws.send("x")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4000, "kicked")
        await asyncio.wait_for(done.wait(), 5)
    assert seen == [(4000, "kicked")]


async def test_spawned_task_is_cancelled_on_close() -> None:
    """A task started with self.spawn() is cancelled when the client leaves."""
    cancelled = asyncio.Event()
    app = wsroute.App(load_entrypoints=False)

    @app.route("/ticker")
    class Ticker(wsroute.Handler):
        async def on_connect(self):
            self.spawn(self.tick())

        async def tick(self):
            try:
                while True:
                    await self.send("tick")
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    async with serve_app(app) as server:
        async with server.connect("/ticker") as ws:
            assert await ws.recv() == "tick"
        await asyncio.wait_for(cancelled.wait(), 5)


async def test_attrs_fields_receive_dependencies() -> None:
    """A Handler declared with attrs fields gets them from app.provide and app.route."""

    class Database:
        name = "db"

    app = wsroute.App(load_entrypoints=False)
    app.provide(db=Database())

    @app.route("/deps/{item:int}", greeting="hi")
    @attrs.define
    class Deps(wsroute.Handler):
        db: Database
        greeting: str
        item: int
        extra: str = "default"

        async def on_connect(self):
            await self.send_json([self.db.name, self.greeting, self.item, self.extra])

    async with serve_app(app) as server, server.connect("/deps/7") as ws:
        assert json.loads(await ws.recv()) == ["db", "hi", 7, "default"]


async def test_first_message_and_ctx_available_in_handler() -> None:
    """self.first_message and self.ctx are the decoded message and middleware's namespace."""
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def tag(conn, request):
        conn.ctx.tag = "from-middleware"

    @app.route("/game", message="start")
    class Game(wsroute.Handler):
        async def on_connect(self):
            await self.send_json([self.first_message, self.ctx.tag, self.ctx is self.ws.ctx])

    async with serve_app(app) as server, server.connect("/game") as ws:
        await ws.send('{"type": "start", "level": 2}')
        assert json.loads(await ws.recv()) == [{"type": "start", "level": 2}, "from-middleware", True]


async def test_pathological_json_after_connect_takes_the_untyped_path(caplog) -> None:
    """Deeply nested, NaN and huge-number messages reach on_message unchanged; the connection stays open."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/typed")
    class Typed(wsroute.Handler):
        @wsroute.on("ping")
        async def ping(self, data):
            await self.send_json({"pong": data["n"]})

        async def on_message(self, message):
            await self.send_json({"untyped": len(message)})

    messages = [
        "[" * 982 + "]" * 982,
        '{"type": "ping", "n": ' + "[" * 982 + "]" * 982 + "}",
        '{"type": "ping", "n": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"type": "ping", "n": NaN}',
        '{"type": "ping", "n": ' + "1" * 5000 + "}",
    ]
    caplog.set_level(logging.DEBUG)
    async with serve_app(app) as server, server.connect("/typed") as ws:
        for message in messages:
            await ws.send(message)
            assert json.loads(await ws.recv()) == {"untyped": len(message)}
        await ws.send('{"type": "ping", "n": 1}')
        assert json.loads(await ws.recv()) == {"pong": 1}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
