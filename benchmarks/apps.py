"""The servers under test, one builder per kind, sharing one route table.

Three kinds serve the same endpoints so that the only difference measured is
the framework layer:

- ``raw``: ``websockets.asyncio.server.serve()`` with one handler, written the
  way the websockets docs teach (the baseline every ratio is computed against);
- ``werkzeug``: ``websockets.asyncio.router.route()`` with a werkzeug ``Map``
  holding the same 50 routes as the wsroute app;
- ``wsroute``: a realistic app, see :mod:`benchmarks.wsroute_app`.

Endpoints (``mode``): ``/echo`` echoes every message (the handshake scenario
uses it too), ``/json`` decodes ``{"type": ...}`` messages and dispatches on
the type, ``/idle`` holds the connection open for fan-out and memory.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from websockets import broadcast as ws_broadcast
from websockets.asyncio.server import Server, ServerConnection, serve

TOKEN = "Bearer bench-token"
"""Every client sends this Authorization header, whatever the server kind, so
the client-side cost is identical; only wsroute's auth middleware checks it."""

ROUTE_COUNT = 50
ENDPOINTS = ("/echo", "/json", "/idle")
SERVE_OPTIONS: dict[str, Any] = {"compression": None}
"""Compression off for every kind: permessage-deflate would dominate the
per-message cost and hide the framework overhead being measured. The
memory-with-deflate phases start servers with ``deflate=True`` instead:
each kind's own default (websockets' ``compression="deflate"``, wsroute's
:mod:`wsroute.compression`)."""


def serve_options(deflate: bool) -> dict[str, Any]:
    """``serve()`` options: :data:`SERVE_OPTIONS`, or each kind's default compression."""
    return {} if deflate else dict(SERVE_OPTIONS)


def filler_paths() -> list[tuple[str, str]]:
    """Return the 47 extra routes as (wsroute pattern, werkzeug rule) pairs.

    A realistic app has many routes, most of them never hit by this load; a
    quarter are parameterised so the router exercises both lookup paths.
    """
    count = ROUTE_COUNT - len(ENDPOINTS)
    pairs = []
    for i in range(count):
        if i % 4 == 0:
            pairs.append((f"/rooms{i}/{{room}}", f"/rooms{i}/<room>"))
        else:
            pairs.append((f"/api/v1/service{i}", f"/api/v1/service{i}"))
    return pairs


async def echo(ws: ServerConnection, **_: Any) -> None:
    """Echo every message back: the canonical websockets handler."""
    async for message in ws:
        await ws.send(message)


async def _echo_type(ws: ServerConnection, data: Any) -> None:
    await ws.send(json.dumps(data))


JSON_HANDLERS: dict[str, Callable[[ServerConnection, Any], Awaitable[None]]] = {
    "echo": _echo_type,
}


async def json_dispatch(ws: ServerConnection, **_: Any) -> None:
    """Decode JSON, dispatch on ``"type"``: what users hand-write without wsroute."""
    async for message in ws:
        data = json.loads(message)
        await JSON_HANDLERS[data["type"]](ws, data)


async def idle(ws: ServerConnection, **_: Any) -> None:
    """Hold the connection until the client goes away."""
    await ws.wait_closed()


RAW_HANDLERS = {"/echo": echo, "/json": json_dispatch, "/idle": idle}


class Running:
    """What the server process needs from a running server of any kind.

    Attributes:
        port: the TCP port bound on 127.0.0.1 (the server listens on port 0).
        broadcast: sends one message to every open connection.
        connections: returns how many WebSocket connections are open.
    """

    def __init__(
        self,
        port: int,
        broadcast: Callable[[str], Awaitable[None] | None],
        connections: Callable[[], int],
        note: str = "",
    ) -> None:
        self.port = port
        self.broadcast = broadcast
        self.connections = connections
        self.note = note


def _server_port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def _ws_running(server: Server, note: str = "") -> Running:
    def bcast(message: str) -> None:
        ws_broadcast(server.connections, message)

    return Running(_server_port(server), bcast, lambda: len(server.connections), note)


async def start_raw(mode: str, deflate: bool = False) -> tuple[Any, Running]:
    """Start plain ``serve()`` with the one handler for ``mode``."""
    server = await serve(RAW_HANDLERS[mode], "127.0.0.1", 0, **serve_options(deflate))
    return server, _ws_running(server)


async def start_werkzeug(mode: str, deflate: bool = False) -> tuple[Any, Running]:
    """Start ``websockets.asyncio.router.route()`` over the 50-route werkzeug Map."""
    from websockets.asyncio.router import route
    from werkzeug.routing import Map, Rule

    rules = [Rule(path, endpoint=RAW_HANDLERS[path]) for path in ENDPOINTS]
    rules += [Rule(rule, endpoint=echo) for _, rule in filler_paths()]
    server = await route(Map(rules), "127.0.0.1", 0, **serve_options(deflate))
    return server, _ws_running(server)


def _no_op_hook(connection: ServerConnection, request: Any) -> None:
    """A ``process_request`` that accepts everything: the cost of having a hook."""


async def start_raw_hook(mode: str) -> tuple[Any, Running]:
    """Start raw ``serve()`` plus a no-op ``process_request`` (diagnostic kind ``rawhook``).

    Not in the default kinds: it isolates what any router pays merely for
    hooking websockets' ``process_request``, from what its routing costs.
    """
    server = await serve(RAW_HANDLERS[mode], "127.0.0.1", 0, process_request=_no_op_hook, **SERVE_OPTIONS)
    return server, _ws_running(server)


async def start(kind: str, mode: str, deflate: bool = False) -> tuple[Any, Running]:
    """Start a server of ``kind`` for ``mode``; return (closable, Running).

    Args:
        kind: ``raw``, ``rawhook``, ``werkzeug``, ``wsroute`` or a peer of
            :mod:`benchmarks.peers` (which serve every mode at once).
        mode: ``/echo``, ``/json`` or ``/idle``.
        deflate: serve with the kind's default permessage-deflate instead
            of none (only the memory-with-deflate phases).
    """
    if kind == "raw":
        return await start_raw(mode, deflate)
    if kind == "rawhook":
        return await start_raw_hook(mode)
    if kind == "werkzeug":
        return await start_werkzeug(mode, deflate)
    if kind == "wsroute":
        from benchmarks.wsroute_app import start_wsroute

        return await start_wsroute(mode, deflate)
    from benchmarks.peers import start_peer

    return await start_peer(kind, deflate)
