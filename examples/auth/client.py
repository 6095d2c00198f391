"""Connect to examples/auth with a token and print what happens.

Usage: ``.venv/bin/python examples/auth/client.py TOKEN [PORT] [PATH]``
(defaults: port 8765, path /me). Prints the server's first message, or the
HTTP status the handshake was refused with.
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def main(token: str, port: int, path: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with connect(f"ws://127.0.0.1:{port}{path}", additional_headers=headers) as ws:
            print(await ws.recv())
    except InvalidStatus as exc:
        print(f"refused: HTTP {exc.response.status_code} {exc.response.body.decode().strip()}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    asyncio.run(main(args[0], int(args[1]) if len(args) > 1 else 8765, args[2] if len(args) > 2 else "/me"))
