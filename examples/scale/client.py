"""Show examples/scale sharing a room across two processes.

Usage: ``.venv/bin/python examples/scale/client.py [PORT]`` (default 8765).

Connects ``ann``, then ``bob`` until one of bob's connections lands on
another process than ann's (the kernel picks a process per connection),
waits until ann is told that bob joined, and has bob say hello in the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ATTEMPTS = 40  # two workers: 40 connections all on one process would be a bug
TIMEOUT = 10.0


async def next_of(ws: ClientConnection, kind: str, user: str | None = None) -> Any:
    """The next JSON message of type ``kind`` (from ``user``), skipping others; at most TIMEOUT seconds."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind and user in (None, message.get("user")):
                return message


async def main(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/rooms/lobby"
    async with contextlib.AsyncExitStack() as stack:
        ann = await stack.enter_async_context(connect(f"{url}?user=ann"))
        ann_pid = (await next_of(ann, "welcome"))["pid"]
        print(f"ann joined on process {ann_pid}")
        for _ in range(ATTEMPTS):  # keep every attempt open: bob stays a member meanwhile
            bob = await stack.enter_async_context(connect(f"{url}?user=bob"))
            bob_pid = (await next_of(bob, "welcome"))["pid"]
            if bob_pid != ann_pid:
                break
        else:
            sys.exit(f"all {ATTEMPTS} connections landed on process {ann_pid}: is --workers 2 set?")
        print(f"bob joined on process {bob_pid}")
        await next_of(ann, "join", "bob")
        print("ann saw bob join")
        await bob.send("hello from the other process")
        said = await next_of(ann, "say")
        print(f"ann got {said['text']!r} from {said['user']} (sent by process {said['pid']})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
