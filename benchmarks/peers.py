"""The frameworks users pick instead of wsroute, each served the way its users serve it.

Every peer serves the same two endpoints as :mod:`benchmarks.apps`: ``/echo``
(send every message back) and ``/idle`` (stay open, join the one room that
fan-out broadcasts to), written the way each framework's documentation
teaches, on the server its users deploy it with:

========================  =====================================================
kind                      what
========================  =====================================================
``starlette``             Starlette ``WebSocketRoute`` on uvicorn, ``ws="auto"``
                          (uvicorn's websockets sans-I/O implementation, its
                          default); fan-out: a ``set`` of connections and a
                          ``for ws in room: await ws.send_text(m)`` loop
``starlette-wsproto``     the same app on uvicorn with ``ws="wsproto"``
``fastapi``               FastAPI ``@app.websocket`` routes on uvicorn (``auto``),
                          the docs' ``ConnectionManager.broadcast`` loop
``socketio``              python-socketio ``AsyncServer`` as an ASGI app on
                          uvicorn; clients speak Engine.IO 4 over WebSocket;
                          echo is ``emit`` back to the sender, fan-out is
                          ``emit(..., room=...)``
``channels-uvicorn``      Django Channels ``AsyncWebsocketConsumer`` routed by
                          ``URLRouter``, ``InMemoryChannelLayer``; fan-out is
                          ``channel_layer.group_send``; on uvicorn (``auto``)
``channels-daphne``       the same application on daphne (Twisted's asyncio
                          reactor, always the asyncio loop, not uvloop)
``aiohttp``               aiohttp ``WebSocketResponse`` handlers on
                          ``web.AppRunner``/``TCPSite``; fan-out: a ``set`` loop
========================  =====================================================

Each runs with its defaults (keepalive pings, size limits) except that
access logs are off for all, as they are for websockets. Compression:
``deflate=False`` turns permessage-deflate off where the framework has a
switch (uvicorn ``ws_per_message_deflate``, aiohttp ``compress``); the load
generators never offer it outside the memory-with-deflate phase anyway.
daphne (autobahn) does not negotiate permessage-deflate at all.

Channels runs without ``AuthMiddlewareStack`` (it needs a database and
sessions, which none of the other peers pay for either).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Callable
from typing import Any

from benchmarks.apps import Running

UVICORN_PEERS = {
    "starlette": "auto",
    "starlette-wsproto": "wsproto",
    "fastapi": "auto",
    "socketio": "auto",
    "channels-uvicorn": "auto",
}
PEERS = (*UVICORN_PEERS, "channels-daphne", "aiohttp")
"""Every peer kind, in the order of the report."""
REQUIRES = {
    "starlette": ("starlette", "uvicorn"),
    "starlette-wsproto": ("starlette", "uvicorn", "wsproto"),
    "fastapi": ("fastapi", "uvicorn"),
    "socketio": ("socketio", "uvicorn"),
    "channels-uvicorn": ("channels", "django", "uvicorn"),
    "channels-daphne": ("channels", "django", "daphne"),
    "aiohttp": ("aiohttp",),
}
PROTOCOL = {"socketio": "sio"}
"""What the load generators speak to a kind: ``ws`` (plain WebSocket) unless named here."""
FANOUT_LIMIT = {"channels-uvicorn": 1000, "channels-daphne": 1000}
"""Largest fan-out run per kind. Channels' ``InMemoryChannelLayer.receive``
calls ``_clean_expired()``, which walks every channel, for every message a
consumer receives: one broadcast to N members costs O(N**2) (1,000 members x
10 messages already take about 20 s of server CPU), so 5,000 would not end in
a bounded run. The production layer, channels_redis, is another process."""
SIO_PATH = "/socket.io/?EIO=4&transport=websocket"
ROOM = "room"


def missing(kind: str) -> str | None:
    """Return why ``kind`` cannot run here (a package not installed), or None."""
    absent = [name for name in REQUIRES.get(kind, ()) if importlib.util.find_spec(name) is None]
    if absent:
        return f"{kind}: {', '.join(absent)} not installed (pip install -e '.[bench]'): skipped"
    return None


def path_for(kind: str, mode: str) -> str:
    """The request path the load generators use for ``mode`` on ``kind``."""
    return SIO_PATH if kind == "socketio" else "/" + mode


# Starlette and FastAPI ------------------------------------------------------


def starlette_app() -> tuple[Any, set[Any]]:
    """A Starlette app with /echo and /idle; returns it and the room (a set)."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    room: set[WebSocket] = set()

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_text(await ws.receive_text())
        except WebSocketDisconnect:
            pass

    async def idle(ws: WebSocket) -> None:
        await ws.accept()
        room.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            room.discard(ws)

    return Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/idle", idle)]), room


def fastapi_app() -> tuple[Any, set[Any]]:
    """A FastAPI app with /echo and /idle, as FastAPI's WebSockets tutorial writes them."""
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect

    app = FastAPI()
    room: set[WebSocket] = set()

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_text()
                await websocket.send_text(data)
        except WebSocketDisconnect:
            pass

    async def idle(websocket: WebSocket) -> None:
        await websocket.accept()
        room.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            room.discard(websocket)

    # FastAPI injects by annotation; with postponed annotations (this module's
    # ``from __future__``) it would see the string "WebSocket", not the class.
    for endpoint, route in ((echo, "/echo"), (idle, "/idle")):
        endpoint.__annotations__["websocket"] = WebSocket
        app.websocket(route)(endpoint)
    return app, room


def set_broadcast(room: set[Any]) -> Callable[[str], Any]:
    """The user's usual fan-out over a set of Starlette/FastAPI connections."""

    async def broadcast(message: str) -> None:
        for ws in list(room):
            with contextlib.suppress(Exception):  # a client gone mid-loop
                await ws.send_text(message)

    return broadcast


# python-socketio ------------------------------------------------------------


def socketio_app() -> tuple[Any, Callable[[str], Any], Callable[[], int]]:
    """An ``AsyncServer`` ASGI app: ``echo`` events are emitted back, everyone joins the room."""
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    connected: set[str] = set()

    @sio.event
    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        connected.add(sid)
        await sio.enter_room(sid, ROOM)

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        connected.discard(sid)

    @sio.event
    async def echo(sid: str, data: Any) -> None:
        await sio.emit("echo", data, to=sid)

    async def broadcast(message: str) -> None:
        await sio.emit("msg", message, room=ROOM)

    return socketio.ASGIApp(sio), broadcast, lambda: len(connected)


# Django Channels ------------------------------------------------------------


def channels_app() -> tuple[Any, Callable[[str], Any], Callable[[], int]]:
    """A Channels ``ProtocolTypeRouter`` with an echo and a group consumer (in-memory layer)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="benchmark-only",
            ALLOWED_HOSTS=["*"],
            INSTALLED_APPS=["channels"],
            CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
            USE_TZ=True,
        )
        django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.layers import get_channel_layer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    members: set[str] = set()

    class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    class RoomConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def connect(self) -> None:
            await self.channel_layer.group_add(ROOM, self.channel_name)
            members.add(self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            members.discard(self.channel_name)
            await self.channel_layer.group_discard(ROOM, self.channel_name)

        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    application = ProtocolTypeRouter(
        {"websocket": URLRouter([path("echo", EchoConsumer.as_asgi()), path("idle", RoomConsumer.as_asgi())])}
    )
    layer = get_channel_layer()

    async def broadcast(message: str) -> None:
        await layer.group_send(ROOM, {"type": "chat.message", "text": message})

    return application, broadcast, lambda: len(members)


# uvicorn --------------------------------------------------------------------


def asgi_app(kind: str) -> tuple[Any, Callable[[str], Any], Callable[[], int]]:
    """The ASGI application of a uvicorn-served ``kind``, its broadcast and its member count."""
    if kind in ("starlette", "starlette-wsproto"):
        app, room = starlette_app()
        return app, set_broadcast(room), lambda: len(room)
    if kind == "fastapi":
        app, room = fastapi_app()
        return app, set_broadcast(room), lambda: len(room)
    if kind == "socketio":
        return socketio_app()
    if kind in ("channels-uvicorn", "channels-daphne"):
        return channels_app()
    raise ValueError(f"not an ASGI peer: {kind!r}")


class _Uvicorn:
    """A uvicorn server running as a task of the current loop; closable like the others."""

    def __init__(self, server: Any, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 10)


async def start_uvicorn(kind: str, deflate: bool) -> tuple[Any, Running]:
    """Serve ``kind``'s ASGI app with uvicorn on 127.0.0.1 port 0, inside this loop."""
    import uvicorn

    app, broadcast, members = asgi_app(kind)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws=UVICORN_PEERS[kind],
        ws_per_message_deflate=deflate,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(600):  # bounded: 60 s
        if server.started or task.done():
            break
        await asyncio.sleep(0.1)
    if not server.started:
        task.result() if task.done() else task.cancel()
        raise TimeoutError(f"uvicorn did not start {kind}")
    port = int(server.servers[0].sockets[0].getsockname()[1])
    return _Uvicorn(server, task), Running(port, broadcast, members, f"{kind}: uvicorn ws={UVICORN_PEERS[kind]}")


# aiohttp --------------------------------------------------------------------


class _AiohttpRunner:
    def __init__(self, runner: Any) -> None:
        self.runner = runner

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def start_aiohttp(deflate: bool) -> tuple[Any, Running]:
    """Serve aiohttp WebSocket handlers (``web.AppRunner`` + ``TCPSite``) on port 0."""
    from aiohttp import WSMsgType, web

    room: set[web.WebSocketResponse] = set()

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=deflate)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def idle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=deflate)
        await ws.prepare(request)
        room.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            room.discard(ws)
        return ws

    async def broadcast(message: str) -> None:
        for ws in list(room):
            with contextlib.suppress(Exception):
                await ws.send_str(message)

    app = web.Application()
    app.add_routes([web.get("/echo", echo), web.get("/idle", idle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return _AiohttpRunner(runner), Running(port, broadcast, lambda: len(room), "aiohttp: web.AppRunner")


async def start_peer(kind: str, deflate: bool) -> tuple[Any, Running]:
    """Start any peer but daphne (which needs its own reactor: :func:`run_daphne`)."""
    if kind in UVICORN_PEERS:
        return await start_uvicorn(kind, deflate)
    if kind == "aiohttp":
        return await start_aiohttp(deflate)
    raise ValueError(f"unknown peer kind {kind!r} (peers: {', '.join(PEERS)})")


# daphne ---------------------------------------------------------------------


def run_daphne(announce: Callable[[Running, asyncio.AbstractEventLoop], None]) -> None:
    """Serve the Channels app with daphne on 127.0.0.1 port 0 until the reactor stops.

    daphne installs Twisted's asyncio reactor on a loop of its own when
    ``daphne.server`` is imported, so it cannot join a loop made elsewhere:
    this takes over the process. ``announce(running, loop)`` is called on
    that loop once the port is known; the caller stops the server with
    ``twisted.internet.reactor.stop()``.
    """
    import daphne.server
    from twisted.internet import reactor

    application, broadcast, members = channels_app()
    server = daphne.server.Server(
        application=application,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        signal_handlers=False,
        verbosity=0,
    )

    def ready() -> None:
        if not server.listening_addresses:
            reactor.callLater(0.05, ready)  # type: ignore[attr-defined]
            return
        port = int(server.listening_addresses[0][1])
        note = "channels-daphne: daphne (Twisted asyncio reactor, asyncio loop)"
        announce(Running(port, broadcast, members, note), daphne.server.twisted_loop)

    reactor.callLater(0, ready)  # type: ignore[attr-defined]
    server.run()
