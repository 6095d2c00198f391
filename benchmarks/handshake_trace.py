"""Where does a handshake wait? Count the server's loop iterations, tasks and GC per handshake.

``python -m benchmarks.handshake_trace [--handshakes 400] [--kinds raw,wsroute]``

An extra await between reading the request and writing the 101 (a coroutine
``process_request`` that suspends, a task created for the middleware) shows up
as more event-loop iterations or more tasks per handshake; a framework that
merely does more work shows up as CPU only. This runs each server kind in its
own process on the plain asyncio loop with ``BaseEventLoop._run_once`` and
``create_task`` counted and a ``gc.callbacks`` timer, then opens and closes
``--handshakes`` connections one after another from this process with a
blocking socket (so the counts are per handshake, not mixed between
concurrent ones), and prints per handshake: loop iterations, callbacks run,
tasks created, GC time and collections, and the median time to the 101.

``WSROUTE_BENCH_APP=bare|middleware|headers|health|full`` picks the wsroute
app variant, as for the other benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing.connection
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.apps import TOKEN
from benchmarks.instructions import close_ws, read_head

REQUEST = (
    "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    f"Authorization: {TOKEN}\r\n\r\n"
).encode()


def counted_server(conn: multiprocessing.connection.Connection, kind: str) -> None:
    """Server process: count loop iterations, callbacks, tasks and GC; answer ``snap`` on the pipe."""
    import asyncio.base_events as base

    counts: dict[str, float] = {"iterations": 0, "callbacks": 0, "tasks": 0, "gc_us": 0.0, "collections": 0}
    run_once, create_task = base.BaseEventLoop._run_once, base.BaseEventLoop.create_task  # type: ignore[attr-defined]

    def counting_run_once(self: Any) -> None:
        counts["iterations"] += 1
        counts["callbacks"] += len(self._ready)
        run_once(self)

    def counting_create_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["tasks"] += 1
        return create_task(self, *args, **kwargs)

    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            counts["gc_us"] += (time.perf_counter() - started[0]) * 1e6
            counts["collections"] += 1

    base.BaseEventLoop._run_once = counting_run_once  # type: ignore[attr-defined]
    base.BaseEventLoop.create_task = counting_create_task  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)

    async def main() -> None:
        from benchmarks.apps import start

        _closable, running = await start(kind, "/echo")
        done = asyncio.Event()

        def command() -> None:
            try:
                name = conn.recv()
            except EOFError:
                name = "stop"
            if name == "snap":
                conn.send(dict(counts))
            else:
                done.set()

        asyncio.get_running_loop().add_reader(conn.fileno(), command)
        conn.send(running.port)
        await done.wait()

    asyncio.run(main())


def handshakes(port: int, count: int) -> list[float]:
    """Open, upgrade and close ``count`` connections in turn; return each time to the 101 (s)."""
    times = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        started = time.perf_counter()
        sock.sendall(REQUEST)
        read_head(sock)  # raises unless it is a 101
        times.append(time.perf_counter() - started)
        close_ws(sock)
    return times


def snapshot(parent: multiprocessing.connection.Connection) -> dict[str, float]:
    """The server's counters now."""
    parent.send("snap")
    if not parent.poll(10):
        raise TimeoutError("server did not answer")
    return dict(parent.recv())


def settled(parent: multiprocessing.connection.Connection) -> dict[str, float]:
    """The server's task count once the last connection's close has finished (2 s at most)."""
    last = snapshot(parent)
    for _ in range(20):
        time.sleep(0.1)
        now = snapshot(parent)
        if now["tasks"] == last["tasks"] and now["collections"] == last["collections"]:
            return now
        last = now
    return last


def trace(kind: str, count: int) -> dict[str, float]:
    """Per-handshake counts for one server kind (warm-up of 50 handshakes first)."""
    parent, child = procs.CTX.Pipe()
    process = procs.CTX.Process(target=counted_server, args=(child, kind), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise TimeoutError(f"{kind} server did not start")
        port = parent.recv()
        handshakes(port, 50)
        before = settled(parent)
        times = handshakes(port, count)
        after = settled(parent)
        out = {key: (after[key] - before[key]) / count for key in before}
        out["p50_to_101_us"] = statistics.median(times) * 1e6
        return out
    finally:
        parent.send("stop")
        process.join(5)
        if process.is_alive():
            process.kill()


#: Where ``--output`` writes by default; ANALYSIS.md's ``{trace:KIND:FIELD}`` placeholders read it.
OUTPUT = Path(__file__).parent / "results" / "handshake_trace.json"


def main(argv: list[str] | None = None) -> int:
    """Print the per-handshake counts of each kind; ``--output`` also saves them as JSON.

    Kinds: ``raw``, ``wsroute`` (the app ``WSROUTE_BENCH_APP`` names, default
    full) and ``wsroute-VARIANT`` (``wsroute-bare``, ``wsroute-metrics``…).
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.handshake_trace", description=__doc__)
    parser.add_argument("--handshakes", type=int, default=400)
    parser.add_argument("--kinds", default="raw,wsroute")
    parser.add_argument("--output", type=Path, nargs="?", const=OUTPUT, default=None,
                        help=f"save the figures as JSON (default file: {OUTPUT})")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    for kind in args.kinds.split(","):
        server, _, variant = kind.partition("-")
        previous = os.environ.get("WSROUTE_BENCH_APP")
        if variant:
            os.environ["WSROUTE_BENCH_APP"] = variant  # the server process inherits it
        try:
            figures = trace(server, args.handshakes)
        finally:
            if variant:
                if previous is None:
                    os.environ.pop("WSROUTE_BENCH_APP", None)
                else:
                    os.environ["WSROUTE_BENCH_APP"] = previous
        results[kind] = figures
        print(kind, " ".join(f"{key}={value:.2f}" for key, value in figures.items()))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"handshakes": args.handshakes, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
