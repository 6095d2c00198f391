"""The app every interop test talks to, and the page the browser test loads.

The same app serves both: the WebSocket routes below, and ``GET /page`` —
answered as plain HTTP by :class:`PagePlugin` through ``wsroute_process_request``
so the page and its WebSockets share one origin.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import wsroute

HERE = Path(__file__).parent

#: Where Node's ``ws`` is installed (``npm ci --no-audit --no-fund`` there).
NODE_DIR = HERE / "node"

#: token -> user id for ``query_token_auth``.
TOKENS = {"t1": "ann"}

#: What the server closes with when the first message names no route.
BAD_FIRST_REASON = "unknown message type 'dance' (expected: join)"


class PagePlugin:
    """Answers ``GET /page`` (and ``GET /<name>.js``) with a file from this folder, and
    records the status of every handshake response so a test can compare what the
    client saw with what the server sent."""

    def __init__(self, files: dict[str, tuple[str, str]]) -> None:
        self.files = files  # request path -> (file name, content type)
        self.statuses: list[tuple[str, int]] = []

    @wsroute.hookimpl
    def wsroute_process_request(self, conn: wsroute.Connection, request: wsroute.Request) -> Any:
        entry = self.files.get(request.path)
        if entry is None:
            return None
        name, content_type = entry
        response = conn.respond(200, (HERE / name).read_text())
        del response.headers["Content-Type"]  # headers[k] = v appends: delete first to replace
        response.headers["Content-Type"] = content_type
        response.headers["Cache-Control"] = "no-store"
        return response

    @wsroute.hookimpl
    def wsroute_extra_headers(self, request: wsroute.Request, response: wsroute.Response) -> None:
        self.statuses.append((request.path, response.status_code))


def make_app(*plugins: object) -> wsroute.App:
    """Path route with an int converter, query-token auth, first-message routing, @on dispatch."""
    app = wsroute.App(load_entrypoints=False, plugins=plugins)
    app.middleware(wsroute.query_token_auth(TOKENS.get))

    @app.route("/items/{item_id:int}")
    async def item(ws: wsroute.Connection, item_id: int) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                await ws.send(message)  # binary comes back byte for byte, as binary
            else:
                await ws.send(f"{item_id}:{message}")

    @app.route("/play", message="join")
    class Join(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.send_json({"type": "joined", "user": self.ctx.user_id})

        @wsroute.on("move")
        async def move(self, data: dict[str, Any]) -> None:
            await self.send_json({"type": "moved", "to": data["to"]})

    return app


def node_binary() -> str:
    """The ``node`` executable; the test FAILS (never skips) when it or the installed ``ws`` is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed for the Node ws interop test: install node and npm (Node 20+)", pytrace=False)
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").is_file():
        pytest.fail(
            f"the ws package is not installed: run `npm ci --no-audit --no-fund` in {NODE_DIR} (scripts/test does)",
            pytrace=False,
        )
    return node
