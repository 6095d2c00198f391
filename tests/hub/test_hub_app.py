"""The hub end to end through ``wsroute.App``: routes, middleware, Handler classes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hubtest import eventually

import wsroute
from wsroute.testing import serve_app


def make_app(**options: Any) -> wsroute.App:
    """A chat-like app: ``?token=<user>`` auth, rooms with presence, a slow route."""
    app = wsroute.App(**options)

    @app.middleware
    async def auth(conn: Any, request: Any) -> None:
        user = conn.query.get("token", [None])[0]
        if user is not None:
            conn.ctx.user_id = user

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe(f"room:{self.params['room']}", presence=True)
            await self.ws.send("ready")

        async def on_message(self, message: Any) -> None:
            await self.app.hub.publish(f"room:{self.params['room']}", message)

        async def on_presence(self, topic: str, event: str, user_id: str) -> None:
            await self.ws.send(f"{event}:{user_id}")

    @app.route("/ticker", slow_consumer="keep_latest")
    async def ticker(ws: Any) -> None:
        await ws.send("ready")
        await ws.wait_closed()

    return app


async def recv(ws: Any) -> Any:
    """One message, failing after 10 s."""
    async with asyncio.timeout(10):
        return await ws.recv()


@pytest.mark.asyncio
async def test_room_messages_and_presence_through_the_app() -> None:
    """A message sent in a room reaches every member once; members see joins and leaves."""
    app = make_app()
    async with serve_app(app) as server, server.connect("/rooms/1?token=alice") as alice:
        assert await recv(alice) == "ready"
        assert await recv(alice) == "join:alice"
        async with server.connect("/rooms/1?token=bob") as bob:
            assert await recv(bob) == "ready"
            assert await recv(alice) == "join:bob"
            await bob.send("hello")
            assert await recv(alice) == "hello"
            assert await recv(bob) in ("join:bob", "hello")
        assert await recv(alice) == "leave:bob"
        assert await app.hub.presence("room:1") == {"alice"}
    assert app.hub._registry.is_empty()


@pytest.mark.asyncio
async def test_send_to_user_through_the_app() -> None:
    """send_to_user reaches the connections the auth middleware tagged with that user."""
    app = make_app()
    async with (
        serve_app(app) as server,
        server.connect("/ticker?token=carol") as c1,
        server.connect("/ticker?token=carol") as c2,
    ):
        assert await recv(c1) == await recv(c2) == "ready"
        await app.hub.send_json_to_user("carol", {"n": 1})
        assert await recv(c1) == await recv(c2) == '{"n":1}'


@pytest.mark.asyncio
async def test_route_policy_override_reaches_the_hub() -> None:
    """A route's slow_consumer option becomes the policy of its connections."""
    app = make_app()
    async with serve_app(app) as server, server.connect("/ticker") as ws:
        assert await recv(ws) == "ready"
        (conn,) = app.hub._registry.conns
        assert app.hub._delivery._policies[conn] is wsroute.hub.SlowConsumer.KEEP_LATEST


@pytest.mark.asyncio
async def test_app_with_redis_broker(redis_url: str) -> None:
    """App(broker="redis://…") publishes through Redis and exposes the redis health check."""
    app = make_app(broker=redis_url)
    async with serve_app(app) as server:
        assert "redis" in app.hub.health_checks()
        async with server.connect("/rooms/2?token=dan") as ws:
            # The join event may come first: subscribe() returns once Redis
            # stored the presence, and the event can arrive in that time.
            assert {await recv(ws), await recv(ws)} == {"ready", "join:dan"}
            async with wsroute.hub.Publisher(redis_url) as pub:
                await pub.publish("room:2", "from outside")
            assert await recv(ws) == "from outside"
        await eventually(lambda: app.hub.connections == 0)


@pytest.mark.asyncio
async def test_compressed_and_uncompressed_clients_get_identical_messages() -> None:
    """Clients with and without permessage-deflate receive the same text and binary frames, in order."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/feed")
    async def feed(ws: Any) -> None:
        await ws.send("ready")
        await ws.wait_closed()

    messages: list[str | bytes] = [f"text {i}" if i % 2 else bytes([i % 256]) * (i * 37) for i in range(200)]
    async with serve_app(app) as server:
        clients = [await server.connect("/feed", compression=c) for c in (None, "deflate", None, "deflate")]
        try:
            for ws in clients:
                assert await recv(ws) == "ready"
            assert sorted(bool(ws.protocol.extensions) for ws in clients) == [False, False, True, True]
            for message in messages:
                await app.hub.broadcast(message)
            for ws in clients:
                assert [await recv(ws) for _ in messages] == messages
        finally:
            for ws in clients:
                await ws.close()
