"""The servers measured by ``benchmarks.cluster_bench``, one per child process.

``python -m benchmarks.cluster_peers KIND BROKER_URL`` serves on a free
127.0.0.1 port, prints ``PORT <n>`` and stops when its stdin closes. Kinds:

- ``wsroute``: a hub on ``BROKER_URL`` (``memory://``, ``redis://``,
  ``redis+cluster://``). ``?topics=a,b`` subscribes; text ``pub TOPIC DATA``
  publishes to a topic; ``echo DATA`` answers DATA directly.
- ``channels``: Django Channels with channels_redis on ``BROKER_URL``, under
  uvicorn. On connect the consumer joins group ``room``; ``g…`` is sent to
  the group with ``group_send``, ``e…`` is echoed directly.
- ``socketio``: python-socketio with ``AsyncRedisManager`` on ``BROKER_URL``,
  under uvicorn. On connect the client enters room ``room``; event ``g`` is
  emitted to the room as event ``m``; event ``e`` is answered by its ack.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import sys
import types
import urllib.parse
from typing import Any


def raise_nofile() -> None:
    """Allow as many open files as the hard limit (10,000 connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def wait_stdin_eof() -> None:
    """Return when the parent closes our stdin."""
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def serve_wsroute(broker: str) -> None:
    """A hub on ``broker`` behind a websockets server."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    from wsroute.hub import Hub

    hub = Hub(broker=broker)

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        ws.ctx = types.SimpleNamespace(user_id=None)  # type: ignore[attr-defined]
        hub.attach(ws)
        try:
            for topic in query.get("topics", [""])[0].split(","):
                if topic:
                    await hub.subscribe(ws, topic)
            await ws.send("ready")
            async for message in ws:  # the idle clients of the benchmark just drop TCP: ends quietly
                op, _, rest = str(message).partition(" ")
                if op == "pub":
                    topic, _, data = rest.partition(" ")
                    await hub.publish(topic, data)
                elif op == "echo":
                    await ws.send(rest)
        except ConnectionClosed:
            pass
        finally:
            hub.detach(ws)

    await hub.start()
    try:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=4) as server:
            print(f"PORT {next(iter(server.sockets)).getsockname()[1]}", flush=True)
            await wait_stdin_eof()
    finally:
        await hub.stop()


def channels_app(redis_url: str) -> Any:
    """The Django Channels ASGI application (settings configured in code)."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="benchmark", ALLOWED_HOSTS=["*"], INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                    "CONFIG": {"hosts": [redis_url]}}},
    )
    django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    class Room(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def connect(self) -> None:
            await self.channel_layer.group_add("room", self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard("room", self.channel_name)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            text = text_data or ""
            if text.startswith("e"):
                await self.send(text_data=text)
            else:
                await self.channel_layer.group_send("room", {"type": "room.message", "text": text})

        async def room_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    return ProtocolTypeRouter({"websocket": URLRouter([path("ws/", Room.as_asgi())])})


def socketio_app(redis_url: str) -> Any:
    """The python-socketio ASGI application on an ``AsyncRedisManager``."""
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", client_manager=socketio.AsyncRedisManager(redis_url))

    @sio.event  # type: ignore[misc]
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        await sio.enter_room(sid, "room")

    @sio.on("g")  # type: ignore[misc]
    async def group(sid: str, data: str) -> None:
        await sio.emit("m", data, room="room")

    @sio.on("e")  # type: ignore[misc]
    async def echo(sid: str, data: str) -> str:
        return data

    return socketio.ASGIApp(sio)


async def serve_uvicorn(app: Any) -> None:
    """Serve an ASGI app with uvicorn on a free port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await wait_stdin_eof()
    server.should_exit = True
    await task


def main(argv: list[str]) -> None:
    """Dispatch on the kind of server."""
    raise_nofile()
    kind, url = argv
    if kind == "wsroute":
        asyncio.run(serve_wsroute(url))
    elif kind == "channels":
        asyncio.run(serve_uvicorn(channels_app(url)))
    elif kind == "socketio":
        asyncio.run(serve_uvicorn(socketio_app(url)))
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
