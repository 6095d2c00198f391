"""Group events (``subscribe(topic, dispatch=True)``) and ``hub.send_to_user``'s count."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest

import wsroute
from wsroute.testing import TestClient, serve_app


def chat_app() -> wsroute.App:
    """A chat where joined handlers get room events through @on methods; a spy gets them raw."""
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def user(conn: wsroute.Connection, request: wsroute.Request) -> None:
        conn.ctx.user_id = request.headers.get("X-User")

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe(f"room:{self.params['room']}", dispatch=True)
            await self.send("joined")

        @wsroute.on("say")
        async def say(self, data: dict[str, Any]) -> None:  # from the client: publish to the group
            await self.app.hub.publish_json(f"room:{self.params['room']}", {**data, "type": "chat.message"})

        @wsroute.on("chat.message")
        async def chat_message(self, data: dict[str, Any]) -> None:  # from the group: decide what to send
            await self.send(f"{data['from']}: {data['text']}")

    @app.route("/spy/{room}")
    class Spy(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe(f"room:{self.params['room']}")
            await self.send("joined")

    return app


def test_dispatched_group_messages_call_on_methods_instead_of_being_forwarded() -> None:
    """A published {"type": ...} reaches each dispatching handler's @on method; a plain subscriber gets it raw."""
    with (
        TestClient(chat_app()) as client, client.websocket_connect("/rooms/tea") as ada,
        client.websocket_connect("/rooms/tea") as bob,
        client.websocket_connect("/spy/tea") as spy,
    ):
        for ws in (ada, bob, spy):
            assert ws.receive_text() == "joined"
        ada.send_json({"type": "say", "from": "ada", "text": "hello"})
        assert ada.receive_text() == "ada: hello"
        assert bob.receive_text() == "ada: hello"
        assert spy.receive_json() == {"type": "chat.message", "from": "ada", "text": "hello"}


def test_group_messages_without_a_method_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown type and a non-object are logged and skipped; the next message is still dispatched."""
    app = chat_app()

    @app.route("/publish")
    async def publish(ws: wsroute.Connection) -> None:
        await app.hub.publish_json("room:x", {"type": "unknown.kind"})
        await app.hub.publish("room:x", "not json")
        await app.hub.publish_json("room:x", {"type": "chat.message", "from": "srv", "text": "still here"})

    with TestClient(app) as client, client.websocket_connect("/rooms/x") as ws:
        assert ws.receive_text() == "joined"
        with client.websocket_connect("/publish"):
            pass
        assert ws.receive_text() == "srv: still here"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no @on('unknown.kind')" in w for w in warnings)
    assert any("not a JSON object" in w for w in warnings)


def test_send_to_user_returns_the_local_connections_delivered_to() -> None:
    """Two connections of one user count 2, another user 1, an absent user 0; each gets the message."""
    app = wsroute.App(load_entrypoints=False)
    counts: list[int] = []

    @app.middleware
    def user(conn: wsroute.Connection, request: wsroute.Request) -> None:
        conn.ctx.user_id = request.headers.get("X-User")

    @app.route("/inbox")
    async def inbox(ws: wsroute.Connection) -> None:
        async for message in ws:
            for user_id in ("ada", "bob", "nobody"):
                counts.append(await app.hub.send_to_user(user_id, f"{message} for {user_id}"))

    with (
        TestClient(app) as client, client.websocket_connect("/inbox", headers={"X-User": "ada"}) as ada1,
        client.websocket_connect("/inbox", headers={"X-User": "ada"}) as ada2,
        client.websocket_connect("/inbox", headers={"X-User": "bob"}) as bob,
    ):
        ada1.send_text("note")
        assert ada1.receive_text() == ada2.receive_text() == "note for ada"
        assert bob.receive_text() == "note for bob"
    assert counts == [2, 1, 0]


async def test_with_redis_other_processes_receive_but_are_not_counted(redis_url: str) -> None:
    """Two apps on one Redis: a user connected only to the second is reached from the first, which counts 0."""
    first = wsroute.App(load_entrypoints=False, broker=redis_url)
    second = wsroute.App(load_entrypoints=False, broker=redis_url)

    @second.middleware
    def user(conn: wsroute.Connection, request: wsroute.Request) -> None:
        conn.ctx.user_id = "ada"

    @second.route("/inbox")
    async def inbox(ws: wsroute.Connection) -> None:
        await ws.send("ready")
        await ws.wait_closed()

    first.route("/idle")(inbox)
    async with serve_app(first), serve_app(second) as server, server.connect("/inbox") as ws:
        assert await ws.recv() == "ready"
        assert await first.hub.send_to_user("ada", "across processes") == 0
        assert await ws.recv() == "across processes"
        assert await second.hub.send_to_user("ada", "local") == 1
        assert await ws.recv() == "local"


async def test_dispatched_group_events_cross_processes_with_redis(redis_url: str) -> None:
    """An event published by one app on a shared Redis calls the @on method of a handler served by another."""
    publisher = wsroute.App(load_entrypoints=False, broker=redis_url)
    members = wsroute.App(load_entrypoints=False, broker=redis_url)

    @members.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe(f"room:{self.params['room']}", dispatch=True)
            await self.send("joined")

        @wsroute.on("chat.message")
        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(f"from afar: {event['text']}")

    publisher.route("/idle")(Room)
    async with serve_app(publisher), serve_app(members) as server, server.connect("/rooms/tea") as ws:
        assert await ws.recv() == "joined"
        await publisher.hub.publish_json("room:tea", {"type": "chat.message", "text": "hi"})
        assert await ws.recv() == "from afar: hi"


def test_group_events_of_a_message_class_reach_typed_on_methods() -> None:
    """A published message-class instance arrives validated into its class; one that does not fit is skipped."""

    @wsroute.message("scored")
    @attrs.frozen
    class Scored:
        player: str
        points: int

    app = wsroute.App(load_entrypoints=False)

    @app.route("/game")
    class Game(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe("game", dispatch=True)
            await self.send("joined")

        @wsroute.on(Scored)
        async def scored(self, event: Scored) -> None:
            await self.send(f"{event.player} +{event.points} ({type(event).__name__})")

    @app.route("/publish")
    async def publish(ws: wsroute.Connection) -> None:
        await app.hub.publish_json("game", {"type": "scored", "player": "bob", "points": "many"})
        await app.hub.publish_json("game", Scored("ada", 3))

    with TestClient(app) as client, client.websocket_connect("/game") as ws:
        assert ws.receive_text() == "joined"
        with client.websocket_connect("/publish"):
            pass
        assert ws.receive_text() == "ada +3 (Scored)"
