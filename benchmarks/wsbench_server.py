"""wsroute's benchmark app speaking the protocol of the independent harness.

``/work/shared/bench/wsbench.py`` (see its README) drives any server given as
``--server-cmd NAME=COMMAND``; the server must answer ``/echo`` (echo every
message), ``/sub`` (stay subscribed to broadcasts) and ``/ctl`` (``count``,
``bcast M SIZE binary|text``). This module serves exactly the app of
:mod:`benchmarks.wsroute_app` (50 routes, auth middleware, headers and health
plugins) plus those two routes, so the harness measures the same app as
``python -m benchmarks``::

    python wsbench.py run --server raw --loop uvloop --no-compression \\
        --server-cmd 'wsroute={python} -m benchmarks.wsbench_server --port {port} --loop {loop}'

Run it from the repository root. The harness's client sends no
``Authorization`` header, so the auth middleware's table also maps the empty
value to a user: the lookup still runs on every handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from benchmarks import procs
from benchmarks.apps import serve_options
from benchmarks.wsroute_app import VALID_TOKENS, build_app


def add_protocol_routes(app: Any) -> None:
    """Add the harness's ``/sub`` and ``/ctl`` routes to ``app``."""
    subscribers: set[Any] = set()

    @app.route("/sub")
    async def sub(ws: Any) -> None:
        subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)

    @app.route("/ctl")
    async def ctl(ws: Any) -> None:
        async for message in ws:
            parts = (message.decode() if isinstance(message, bytes) else message).split()
            if parts[:1] == ["count"]:
                await ws.send(str(len(subscribers)))
            elif parts[:1] == ["bcast"]:
                count, size = int(parts[1]), int(parts[2])
                payload: str | bytes = "b" * size if parts[3:4] == ["text"] else b"b" * size
                started = time.perf_counter()
                for _ in range(count):
                    app.hub.broadcast(payload)
                    await asyncio.sleep(0)
                await ws.send(f"done {time.perf_counter() - started:.6f}")
            else:
                await ws.send("error unknown command")


async def serve(port: int, backlog: int, compression: bool) -> None:
    """Serve the app on 127.0.0.1:``port`` until killed."""
    app, _ = build_app(tokens={**VALID_TOKENS, "": "anonymous"})
    add_protocol_routes(app)
    options = dict(serve_options(compression), backlog=backlog)
    async with app.serve("127.0.0.1", port, **options):
        await asyncio.Future()


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.wsbench_server --port P [--loop uvloop] [--backlog 1024]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wsbench_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--backlog", type=int, default=1024, help="listen backlog (the harness's built-ins use 1024)")
    parser.add_argument("--compression", action="store_true", help="negotiate permessage-deflate (default: off)")
    args = parser.parse_args(argv)
    procs.raise_nofile_limit()
    procs.run_in_loop(args.loop, lambda: serve(args.port, args.backlog, args.compression))


if __name__ == "__main__":
    main()
