"""A board game with typed messages: validated on arrival, described as AsyncAPI.

Run it and print its AsyncAPI 3.0 document::

    wsroute run examples.game:app --port 8765
    wsroute asyncapi examples.game:app --server ws://127.0.0.1:8765

Then play with any WebSocket client::

    python -m websockets ws://127.0.0.1:8765/play
    > {"type": "join", "name": "ann"}
    < {"type":"joined","name":"ann"}
    > {"type": "move", "x": 1, "y": 2}
    < {"type":"moved","by":"ann","x":1,"y":2}
    > {"type": "move", "x": "one", "y": 2}
    < {"type":"error","for":"move","detail":"Expected `int`, got `str` - at `$.x`"}
"""

from __future__ import annotations

import attrs

import wsroute

app = wsroute.App()


@wsroute.message("join")
@attrs.frozen
class Join:
    """Enter the game under a name."""

    name: str


@wsroute.message("joined")
@attrs.frozen
class Joined:
    """The server accepted the player."""

    name: str


@wsroute.message("move")
@attrs.frozen
class Move:
    """Place a piece on the board."""

    x: int
    y: int


@wsroute.message("moved")
@attrs.frozen
class Moved:
    """A player placed a piece; sent to every player."""

    by: str
    x: int
    y: int


@app.route("/play", message=Join)
class Game(wsroute.Handler):
    """One player in the game: join first, then move; every move is shown to all players."""

    sends = (Joined, Moved)

    async def on_connect(self) -> None:
        await self.subscribe("game")
        await self.send_json(Joined(name=self.first_message.name))

    @wsroute.on(Move)
    async def move(self, msg: Move) -> None:
        await self.app.hub.publish_json("game", Moved(by=self.first_message.name, x=msg.x, y=msg.y))

    @wsroute.on("chat")
    async def chat(self, data: dict[str, object]) -> None:
        """Untyped: any object with "type": "chat" arrives as a dict."""
        chat = {"type": "chat", "by": self.first_message.name, "text": data.get("text")}
        await self.app.hub.publish_json("game", chat)


@app.route("/scores/{player}")
async def scores(ws, player: str) -> None:
    """A function handler: the player's score, then whatever it sends back is echoed."""
    await ws.send_json({"player": player, "score": 0})
    async for message in ws:
        await ws.send(message)


if __name__ == "__main__":
    app.run("127.0.0.1", 8765)
