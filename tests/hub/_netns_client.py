"""A websocket client run inside a network namespace by the several-machines test.

Usage: ``python _netns_client.py WS_URL``. Connects, waits for the
handler's "ready" and prints ``READY``; then reads commands from stdin, one
per line: ``send TEXT`` sends TEXT, ``recv N`` prints the next N messages
(``MSG text`` each, failing after 10 s), ``quit`` closes.
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.client import connect


async def main(url: str) -> None:
    """Run commands from stdin against one connection."""
    loop = asyncio.get_running_loop()
    async with connect(url) as ws:
        assert await ws.recv() == "ready"
        print("READY", flush=True)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).rstrip("\n")
            op, _, arg = line.partition(" ")
            if op == "send":
                await ws.send(arg)
            elif op == "recv":
                async with asyncio.timeout(10):
                    for _ in range(int(arg)):
                        print(f"MSG {await ws.recv()}", flush=True)
            else:
                return


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
