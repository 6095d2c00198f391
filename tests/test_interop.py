"""Plain WebSocket clients need no special protocol: websocket-client (sync) against a wsroute app."""

from __future__ import annotations

import asyncio
import json

import websocket  # websocket-client, a plain third-party client

import wsroute
from wsroute.testing import serve_app


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.query_token_auth({"t1": "ann"}.get))

    @app.route("/items/{item_id:int}")
    async def item(ws, item_id):
        async for message in ws:
            await ws.send(f"{item_id}:{message}")

    @app.route("/play", message="join")
    class Join(wsroute.Handler):
        async def on_connect(self):
            await self.send_json({"type": "joined", "user": self.ctx.user_id})

        @wsroute.on("move")
        async def move(self, data):
            await self.send_json({"type": "moved", "to": data["to"]})

    return app


def talk(url: str) -> list[str]:
    """What a synchronous websocket-client user would write."""
    answers = []
    ws = websocket.create_connection(url + "/items/7?token=t1", timeout=5)
    ws.send("hello")
    answers.append(ws.recv())
    ws.close()
    ws = websocket.create_connection(url + "/play?token=t1", timeout=5)
    ws.send(json.dumps({"type": "join"}))
    answers.append(ws.recv())
    ws.send(json.dumps({"type": "move", "to": "e4"}))
    answers.append(ws.recv())
    ws.close()
    return answers


def refused(url: str) -> int:
    try:
        websocket.create_connection(url, timeout=5)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    raise AssertionError("accepted")


async def test_websocket_client_routes_and_dispatch() -> None:
    """websocket-client reaches path routes, first-message routes and @on dispatch."""
    async with serve_app(make_app()) as server:
        base = f"ws://127.0.0.1:{server.port}"
        answers = await asyncio.to_thread(talk, base)
        assert answers == ["7:hello", '{"type":"joined","user":"ann"}', '{"type":"moved","to":"e4"}']
        assert await asyncio.to_thread(refused, base + "/items/x?token=t1") == 404
        assert await asyncio.to_thread(refused, base + "/items/1") == 401
