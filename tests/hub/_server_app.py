"""A hub server run as a child process by the multi-process tests.

Usage: ``python _server_app.py REDIS_URL``. Prints ``PORT <n>`` once it
listens on 127.0.0.1, and stops when its stdin is closed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from websockets.asyncio.server import serve

sys.path.insert(0, str(Path(__file__).parent))

from hubtest import hub_handler

from wsroute.hub import Hub


async def main(redis_url: str) -> None:
    """Serve until stdin reaches EOF."""
    hub = Hub(broker=redis_url)
    await hub.start()
    try:
        async with serve(lambda ws: hub_handler(hub, ws), "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"PORT {port}", flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.read)
            server.close()
            await server.wait_closed()
    finally:
        await hub.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
