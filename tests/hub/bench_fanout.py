"""Fan-out throughput: Hub.broadcast vs websockets.broadcast, same run, same clients.

Run: ``python tests/hub/bench_fanout.py [--clients 1000] [--rounds 30] [--size 100]``.

The server runs in this process; the idle clients run in a child process
(they read and discard), so the two cores are split between server and
clients. Each round times a burst of synchronous fan-outs (the server-side
cost) with the protection on, then sleeps so the clients drain. Medians of
all rounds are reported as deliveries per second. Not a test: no timing
assertions anywhere in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

sys.path.insert(0, str(Path(__file__).parents[2]))

from wsroute.hub import Hub


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_clients(port: int, count: int, compression: str | None, ready: Any, stop: Any) -> None:
    """Child process: open ``count`` connections, read and discard everything."""

    async def main() -> None:
        conns = []
        for _ in range(count):
            conns.append(await connect(f"ws://127.0.0.1:{port}/", compression=compression, max_size=None))

        async def drain(ws: Any) -> None:
            async for _ in ws:
                pass

        tasks = [asyncio.create_task(drain(ws)) for ws in conns]
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        for ws in conns:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


async def bench(args: argparse.Namespace) -> None:
    """Start a server, attach N clients, time both fan-outs alternately."""
    hub = Hub(max_queue=64)
    await hub.start()
    conns: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        ws.ctx = types.SimpleNamespace()  # type: ignore[attr-defined]
        conns.add(ws)
        hub.attach(ws)
        try:
            await ws.wait_closed()
        finally:
            hub.detach(ws)
            conns.discard(ws)

    compression = None if args.compression == "none" else "deflate"
    async with serve(handler, "127.0.0.1", 0, compression=compression, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        ready, stop = ctx.Event(), ctx.Event()
        rss_before = rss()
        proc = ctx.Process(target=run_clients, args=(port, args.clients, compression, ready, stop))
        proc.start()
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        while len(conns) < args.clients:
            await asyncio.sleep(0.01)
        rss_after = rss()
        message = "x" * args.size
        results: dict[str, list[float]] = {"websockets.broadcast": [], "Hub.broadcast": []}
        cpu: dict[str, list[float]] = {name: [] for name in results}
        for round_ in range(args.rounds):
            names = list(results) if round_ % 2 else list(results)[::-1]  # alternate who goes first
            for name in names:
                await asyncio.sleep(0.2)  # let the clients drain the previous burst
                start, start_cpu = time.perf_counter(), time.thread_time()
                if name == "websockets.broadcast":
                    for _ in range(args.burst):
                        websockets.broadcast(conns, message)
                else:
                    for _ in range(args.burst):
                        await hub.broadcast(message)
                elapsed, elapsed_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
                results[name].append(args.burst * len(conns) / elapsed)
                cpu[name].append(args.burst * len(conns) / max(elapsed_cpu, 1e-9))
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, proc.join)
    await hub.stop()
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(f"clients={args.clients} size={args.size} B burst={args.burst} rounds={args.rounds} "
          f"compression={args.compression}")
    for name, value in medians.items():
        print(f"  {name:22s} median {value:12,.0f} deliveries/s  (min {min(results[name]):,.0f},"
              f" max {max(results[name]):,.0f})")
    print(f"  ratio Hub/websockets   {medians['Hub.broadcast'] / medians['websockets.broadcast']:.3f} (wall clock)")
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, value in cpu_medians.items():
        print(f"  {name:22s} median {value:12,.0f} deliveries per CPU-second of the server thread")
    cpu_ratio = cpu_medians["Hub.broadcast"] / cpu_medians["websockets.broadcast"]
    print(f"  ratio Hub/websockets   {cpu_ratio:.3f} (CPU time)")
    print(f"  hub stats: {hub.stats}")
    print(f"  server RSS per connection (websockets + hub): {(rss_after - rss_before) / args.clients:,.0f} B")


def hub_bytes_per_connection(count: int = 10_000) -> float:
    """Bytes the hub itself allocates per attached connection (tracemalloc)."""
    hub = Hub()
    conns = []
    for i in range(count):
        conn = types.SimpleNamespace(ctx=types.SimpleNamespace(user_id=f"user{i}"))
        conns.append(types.SimpleNamespace(ctx=conn.ctx))
    hashable = [_Key(c) for c in conns]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for conn in hashable:
        hub.attach(conn)  # type: ignore[arg-type]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return size / count


class _Key:
    """A hashable stand-in for a connection, carrying ``ctx``."""

    def __init__(self, ns: Any) -> None:
        self.ctx = ns.ctx


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    arguments = parser.parse_args()
    asyncio.run(bench(arguments))
    print(f"  hub bookkeeping per connection with a user id: {hub_bytes_per_connection():,.0f} B")
