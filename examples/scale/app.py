"""Rooms shared by several processes through Redis.

Run two worker processes on one Redis (from the repository root, after
``scripts/setup``; Redis on 127.0.0.1:6379)::

    .venv/bin/wsroute run examples.scale.app:app --port 8765 --workers 2 --broker redis://127.0.0.1:6379/0

The kernel spreads connections over the two processes (``SO_REUSEPORT``);
the hub's Redis broker makes every room message, join and leave reach the
members of the room in *both* processes, and presence lists the members of
every process. Each message says which process (``pid``) sent it.

Connect to ``ws://127.0.0.1:8765/rooms/<room>?user=<name>`` and send text;
members receive ``{"type": "say", "user": ..., "text": ..., "pid": ...}``.
"""

from __future__ import annotations

import contextlib
import os

from websockets.exceptions import ConnectionClosed

import wsroute


def user_of(name: str) -> str | None:
    """Toy identification: ``?user=<letters and digits>``. Use real auth in production."""
    return name if name.isalnum() else None


app = wsroute.App()
app.middleware(wsroute.query_token_auth(user_of, param="user"))


@app.route("/rooms/{room}")
class Room(wsroute.Handler):
    """A chat room whose members may be connected to any process."""

    @property
    def topic(self) -> str:
        return f"room:{self.params['room']}"

    async def on_connect(self) -> None:
        await self.subscribe(self.topic, presence=True)
        members = sorted(await self.app.hub.presence(self.topic))
        await self.send_json({"type": "welcome", "pid": os.getpid(), "members": members})

    async def on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode(errors="replace")
        said = {"type": "say", "user": self.ctx.user_id, "text": text, "pid": os.getpid()}
        await self.app.hub.publish_json(self.topic, said)

    async def on_presence(self, topic: str, event: str, user_id: str) -> None:
        with contextlib.suppress(ConnectionClosed):  # this member may be leaving too
            await self.send_json({"type": event, "user": user_id, "pid": os.getpid()})
