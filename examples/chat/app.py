"""A chat server on the wsroute hub: rooms, presence, private messages.

Run one process::

    wsroute run examples.chat.app:app --port 8765

or several on one Redis (every process delivers what any publishes)::

    wsroute run examples.chat.app:app --port 8765 --workers 4 --broker redis://127.0.0.1:6379/0

Connect with any WebSocket client, e.g. ``python -m websockets
'ws://127.0.0.1:8765/rooms/lobby?token=alice'``, and send JSON::

    {"type": "say", "text": "hello"}                 -> everyone in the room
    {"type": "whisper", "to": "bob", "text": "psst"}  -> every connection of bob

Members receive ``{"type": "join"|"leave", "user": ...}`` as people come and
go, and ``{"type": "members", "users": [...], "partial": false}`` when they
enter.

Rooms keep history (the last 1,000 messages, 5 minutes each): room messages
arrive as envelopes ``{"topic": "room:lobby", "offset": 7, "epoch": "…",
"data": {"type": "say", ...}}``. A client keeps the position
``"<offset>:<epoch>"`` of the last envelope and reconnects with
``?since=<position>`` -- to any process, after a restart -- to receive what
was said meanwhile, then live messages. It is told what happened with
``{"type": "history", "recovered": true, "missed": 3, "position": "9:…"}``;
``recovered: false`` means some messages could not be replayed (expired,
more than 1,000, or Redis lost them): show a notice.

While Redis is down (``--broker redis://…``) the chat degrades instead of
closing connections with 1011: newcomers get the members connected to their
own process (``"partial": true``), and a message that cannot be sent is
answered with ``{"type": "error", "reason": "..."}``; the connection stays
open and works again once Redis is back.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any, ClassVar

import wsroute
from wsroute.errors import BrokerUnavailable

app = wsroute.App(slow_consumer="drop_oldest")
app.hub.history("room:*", size=1000, ttl=300)

#: The reply to a message the hub could not send (Redis down).
UNAVAILABLE = {"type": "error", "reason": "chat unavailable, message not sent; try again shortly"}


@app.middleware
async def auth(conn: Any, request: Any) -> Any:
    """Toy auth: ``?token=<name>`` is the user name. Use a real check in production."""
    user = (conn.query.get("token") or [""])[0]
    if not user.isalnum():
        return conn.respond(401, "pass ?token=<your name> (letters and digits)\n")
    conn.ctx.user_id = user
    return None


@app.route("/rooms/{room}")
class Room(wsroute.Handler):
    """One chat room per path; the hub topic is ``room:<name>``."""

    @property
    def topic(self) -> str:
        return f"room:{self.params['room']}"

    async def on_connect(self) -> None:
        # A malformed ?since= is the client's mistake: Position.parse raises a
        # wsroute.Close that closes this connection with 1008 and the reason.
        since = wsroute.Position.parse(self.ws.query.get("since", [""])[0])
        # Replays what was said after `since`, then goes live; never fails,
        # even while Redis is down (then recovered is False).
        result = await self.subscribe(self.topic, presence=True, since=since)
        assert result is not None  # rooms keep history
        await self.ws.send_json({"type": "history", "recovered": result.recovered, "missed": result.missed,
                                 "position": str(result.position)})
        try:
            users, partial = await self.app.hub.presence(self.topic), False
        except BrokerUnavailable:  # Redis is down: this process's members only
            users, partial = self.app.hub.local_presence(self.topic), True
        await self.ws.send_json({"type": "members", "users": sorted(users), "partial": partial})

    @wsroute.on("say")
    async def say(self, data: dict[str, Any]) -> None:
        user = self.ws.ctx.user_id
        message = {"type": "say", "user": user, "text": str(data.get("text", ""))}
        await self.deliver(self.app.hub.publish_json(self.topic, message))

    @wsroute.on("whisper")
    async def whisper(self, data: dict[str, Any]) -> None:
        message = {"type": "whisper", "from": self.ws.ctx.user_id, "text": str(data.get("text", ""))}
        await self.deliver(self.app.hub.send_json_to_user(str(data.get("to", "")), message))

    async def deliver(self, sending: Awaitable[None]) -> None:
        """Await a hub send; tell the sender when Redis is down instead of failing."""
        try:
            await sending
        except BrokerUnavailable:
            await self.ws.send_json(UNAVAILABLE)

    async def on_presence(self, topic: str, event: str, user_id: str) -> None:
        await self.ws.send_json({"type": event, "user": user_id})


@app.route("/announce")
async def announce(ws: Any) -> None:
    """Anything sent here is broadcast to every connection of every process."""
    async for message in ws:
        try:
            await app.hub.broadcast(message)
        except BrokerUnavailable:
            await ws.send_json(UNAVAILABLE)


class ChatPage:
    """Serves the browser page (``static/``) as plain HTTP before routing: ``GET /`` and ``GET /chat.js``.

    A plugin object answering ``wsroute_process_request``, so the page and its
    WebSocket share one origin. Files are read once, when the app is built.
    """

    FILES: ClassVar[dict[str, tuple[str, str]]] = {
        "/": ("index.html", "text/html; charset=utf-8"),
        "/chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    }

    def __init__(self, directory: Path) -> None:
        self.pages = {path: ((directory / name).read_text(), kind) for path, (name, kind) in self.FILES.items()}

    @wsroute.hookimpl
    def wsroute_process_request(self, conn: wsroute.Connection, request: wsroute.Request) -> wsroute.Response | None:
        page = self.pages.get(request.path.partition("?")[0])
        if page is None or "Upgrade" in request.headers:
            return None  # a WebSocket handshake, or another path: routing goes on
        response = conn.respond(200, page[0])
        del response.headers["Content-Type"]  # headers[k] = v appends: delete first to replace
        response.headers["Content-Type"] = page[1]
        response.headers["Cache-Control"] = "no-store"
        return response


app.plugins.register(ChatPage(Path(__file__).parent / "static"), "chat-page")
