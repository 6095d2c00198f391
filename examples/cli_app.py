"""An app for trying ``wsroute run`` (and for the CLI tests).

::

    wsroute run examples.cli_app:app --drain-timeout 2
    wsroute routes examples.cli_app:app
    python -m websockets ws://127.0.0.1:8765/echo

Routes: ``/echo``; ``/pid`` (which worker answered); ``/ip`` (``ws.client_ip``);
``/stuck`` (a handler that never returns: shutdown must cancel it);
``/block`` (blocks the event loop, for ``--debug``); ``/hub`` (the broker in
use); ``/rooms/{room}`` (route middleware, bound values, a name and a limit); ``/play`` routed
by the first message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import wsroute

logger = logging.getLogger("cli_app")


def create_app() -> wsroute.App:
    """Build the example app (``wsroute run examples.cli_app:create_app --factory``)."""
    app = wsroute.App()
    app.provide(greeting="hello")

    @app.route("/echo")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    @app.route("/pid")
    async def pid(ws):
        await ws.send(str(os.getpid()))
        await ws.wait_closed()

    @app.route("/ip")
    async def ip(ws):
        await ws.send(str(ws.client_ip))
        await ws.wait_closed()

    @app.route("/hub")
    async def hub(ws):
        await ws.send(type(ws.app.hub.broker).__name__)
        await ws.wait_closed()

    @app.route("/stuck")
    async def stuck(ws):
        await ws.send("stuck")
        try:
            while True:  # ignores its connection closing: only cancellation ends it
                await asyncio.sleep(3600)
        except asyncio.CancelledError:
            logger.warning("stuck handler cancelled")
            raise

    @app.route("/block")
    async def block(ws):
        await ws.recv()
        time.sleep(0.5)  # the FAQ's "only one client can connect at a time"
        await ws.send("done")

    async def tag(conn, request):
        conn.ctx.tagged = True

    @app.route("/rooms/{room}", middleware=[tag], name="room", max_size=4096, size=10)
    async def room(ws, room, size, greeting):
        await ws.send(f"{greeting} {room} {size}")

    @app.route("/play", message="join")
    class Join(wsroute.Handler):
        async def on_connect(self):
            await self.send_json({"joined": True})

    return app


app = create_app()
