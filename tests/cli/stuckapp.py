"""An app whose handlers never finish, for the stop tests (``wsroute run stuckapp:app --app-dir tests/cli``).

Routes: ``/thread`` waits for a thread that sleeps an hour (cancelling the
handler does not stop the thread); ``/block`` blocks the event loop itself
for an hour; ``/pid`` says which process answered.
"""

from __future__ import annotations

import asyncio
import os
import time

import wsroute

app = wsroute.App()


@app.route("/thread")
async def thread(ws):
    await ws.send("waiting for a thread")
    await asyncio.to_thread(time.sleep, 3600)


@app.route("/block")
async def block(ws):
    await ws.send("blocking the event loop")
    time.sleep(3600)


@app.route("/pid")
async def pid(ws):
    await ws.send(str(os.getpid()))
    await ws.wait_closed()
