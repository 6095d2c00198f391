"""Play one game against examples/first_message by bisection, then print the stats.

Usage: ``.venv/bin/python examples/first_message/client.py [PORT]`` (default 8765).
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def play(url: str, top: int = 100) -> int:
    """Start a game and guess by bisection; the number of tries it took."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "max": top}))
        print("<", await ws.recv())
        low, high = 1, top
        for _ in range(top.bit_length() + 1):
            guess = (low + high) // 2
            await ws.send(json.dumps({"type": "guess", "number": guess}))
            answer = json.loads(await ws.recv())
            print(">", guess, "<", answer)
            if answer["type"] == "won":
                return int(answer["tries"])
            if answer["hint"] == "higher":
                low = guess + 1
            else:
                high = guess - 1
    raise RuntimeError("bisection did not find the number: the server is inconsistent")


async def main(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/game"
    tries = await play(url)
    print(f"won in {tries} tries")
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "stats"}))
        print("stats:", await ws.recv())


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
