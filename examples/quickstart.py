"""The wsroute quickstart: echo, path parameters, a chat room and a game lobby.

Run it with ``scripts/run-example`` (or ``python examples/quickstart.py``), then
connect with any WebSocket client, for example::

    python -m websockets ws://127.0.0.1:8765/echo
    python -m websockets "ws://127.0.0.1:8765/rooms/lobby?token=alice"
"""

from __future__ import annotations

import logging
import sys

import wsroute

app = wsroute.App()

USERS = {"alice": "alice", "bob": "bob"}  # token -> user id; use your real token check


@app.route("/echo")
async def echo(ws):
    """Send every message back."""
    async for message in ws:
        await ws.send(message)


@app.route("/items/{item_id:int}")
async def item(ws, item_id):
    """``/items/42`` works; ``/items/abc`` gets 404 before any upgrade."""
    await ws.send_json({"item": item_id})


@app.route("/rooms/{room}", middleware=[wsroute.query_token_auth(USERS.get)])
class Room(wsroute.Handler):
    """A chat room: every message goes to everyone in the room (``?token=alice``)."""

    async def on_connect(self):
        await self.subscribe(f"room:{self.params['room']}")
        await self.send_json({"type": "welcome", "user": self.ctx.user_id})

    async def on_message(self, message):
        await self.app.hub.publish_json(
            f"room:{self.params['room']}", {"type": "say", "user": self.ctx.user_id, "text": message}
        )


@app.route("/play", message="join")
class Join(wsroute.Handler):
    """Routed by the first message ``{"type": "join", "name": ...}``."""

    async def on_connect(self):
        await self.send_json({"type": "joined", "name": self.first_message.get("name")})

    @wsroute.on("move")
    async def move(self, data):
        await self.send_json({"type": "moved", "to": data.get("to")})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    app.run("127.0.0.1", port)
