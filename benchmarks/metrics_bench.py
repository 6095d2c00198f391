"""What wsroute-metrics costs: handshakes/s and echo messages/s with the plugin on and off, same run.

Run ``python -m benchmarks.metrics_bench`` (about a minute; ``--rounds``,
``--seconds`` to change it). Two server processes serve the same app on
127.0.0.1, one with wsroute-metrics (``/metrics``, and the core's per-route
counting of traffic, handshakes and closes it switches on), one without any plugin; the
load generator (this process) measures them in alternating order, round
after round, so that the machine's background load hits both alike, and
reports the median of each and the ratio on/off. The issue's bar: ratio
>= 0.95 for both.

Two measures per scenario: the wall-clock rate (operations per second) and
the rate per second of *server CPU time* (operations divided by the user +
system CPU the server process used meanwhile, read from ``/proc`` through
psutil). On a busy machine the wall-clock rate mostly measures the other
processes; the CPU-time rate is what the plugin's cost changes.

* handshakes/s: ``concurrency`` clients each open a connection to ``/echo``
  and close it, again and again, for ``seconds``.
* echo msg/s: ``concurrency`` connections each send a 32-byte text message
  and wait for its echo, again and again, for ``seconds`` (a function
  handler with its own ``async for`` loop: the case where only the
  connection class can count messages).

``--in-process`` measures differently, for a machine too busy for the
above: both apps (on and off) are served in this process, and the client in
the same event loop; the cost is this process's CPU time per operation
(client and server together), alternating on/off for ``--rounds``; the ratio
is off/on CPU per operation, i.e. the rate ratio on/off.

Every phase is bounded by its duration or its count; the servers are
stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import sys, wsroute
plugins = []
if sys.argv[2] == "on":
    import wsroute_metrics
    plugins.append(wsroute_metrics)
app = wsroute.App(load_entrypoints=False, plugins=plugins)

@app.route("/echo")
async def echo(ws):
    async for message in ws:
        await ws.send(message)

app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(mode: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start one server process (``mode`` "on" or "off") and wait until it listens (at most 20 s)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSROUTE_", "PROMETHEUS_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), mode], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server ({mode}) did not listen within 20 s")


async def handshakes(port: int, seconds: float, concurrency: int) -> float:
    """Open-and-close connections per second."""
    url = f"ws://127.0.0.1:{port}/echo"
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with connect(url, compression=None, open_timeout=10, close_timeout=10):
                pass
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def echoes(port: int, seconds: float, concurrency: int) -> float:
    """Echoed messages per second over ``concurrency`` connections."""
    url = f"ws://127.0.0.1:{port}/echo"
    done = 0
    message = "x" * 32
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        async with connect(url, compression=None, open_timeout=10) as ws:
            while time.perf_counter() < deadline:
                await ws.send(message)
                await asyncio.wait_for(ws.recv(), 10)
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time the process used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(
    servers: dict[str, tuple[int, psutil.Process]], rounds: int, seconds: float, concurrency: int
) -> dict[str, dict[str, list[float]]]:
    """``{scenario: {"on"|"off": [per-round rates]}}`` for wall-clock and CPU-time rates, order alternating."""
    scenarios = {"handshakes": handshakes, "echo": echoes}
    results: dict[str, dict[str, list[float]]] = {}
    for name in scenarios:
        for kind in ("", " per cpu-s"):
            results[name + kind] = {"on": [], "off": []}
    for number in range(rounds):
        order = ("off", "on") if number % 2 == 0 else ("on", "off")
        for mode in order:
            port, process = servers[mode]
            for name, scenario in scenarios.items():
                cpu = cpu_seconds(process)
                rate = await scenario(port, seconds, concurrency)
                used = cpu_seconds(process) - cpu
                results[name][mode].append(rate)
                results[name + " per cpu-s"][mode].append(rate * seconds / used if used > 0 else float("nan"))
    return results


def summary(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Median per mode and the ratio on/off, per scenario."""
    out: dict[str, dict[str, float]] = {}
    for scenario, modes in results.items():
        on, off = statistics.median(modes["on"]), statistics.median(modes["off"])
        out[scenario] = {"on": round(on, 1), "off": round(off, 1), "ratio": round(on / off, 3)}
    return out


def in_process_app(on: bool) -> Any:
    """The benchmark app, with wsroute-metrics when ``on``."""
    import wsroute

    plugins: list[Any] = []
    if on:
        import wsroute_metrics

        plugins.append(wsroute_metrics)
    app = wsroute.App(load_entrypoints=False, plugins=plugins)

    @app.route("/echo")
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    return app


async def in_process(rounds: int, handshakes_per_round: int = 300, echoes_per_round: int = 3000) -> dict[str, Any]:
    """CPU microseconds per handshake and per echo (client + server), on and off, alternating."""
    from wsroute.testing import serve_app

    async def cost_handshakes(url: str) -> float:
        start = time.process_time()
        for _ in range(handshakes_per_round):
            async with connect(url, compression=None):
                pass
        return (time.process_time() - start) / handshakes_per_round * 1e6

    async def cost_echoes(url: str) -> float:
        async with connect(url, compression=None) as ws:
            start = time.process_time()
            for _ in range(echoes_per_round):
                await ws.send("x" * 32)
                await asyncio.wait_for(ws.recv(), 10)
            return (time.process_time() - start) / echoes_per_round * 1e6

    costs: dict[str, dict[str, list[float]]] = {"handshakes": {"on": [], "off": []}, "echo": {"on": [], "off": []}}
    async with serve_app(in_process_app(False)) as off, serve_app(in_process_app(True)) as on:
        servers = {"off": off.url("/echo"), "on": on.url("/echo")}
        for number in range(rounds):
            for mode in ("off", "on") if number % 2 == 0 else ("on", "off"):
                costs["handshakes"][mode].append(await cost_handshakes(servers[mode]))
                costs["echo"][mode].append(await cost_echoes(servers[mode]))
    out: dict[str, Any] = {}
    for scenario, modes in costs.items():
        cost_off, cost_on = statistics.median(modes["off"]), statistics.median(modes["on"])
        ratio = round(cost_off / cost_on, 3)
        out[scenario] = {"off_us": round(cost_off, 1), "on_us": round(cost_on, 1), "ratio": ratio}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="alternating on/off rounds (default 6)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per scenario and mode (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--in-process", action="store_true", help="CPU time per operation, client and servers in this process"
    )
    args = parser.parse_args(argv)
    if args.in_process:
        costs = asyncio.run(in_process(args.rounds))
        if args.json:
            print(json.dumps(costs))
        else:
            print(f"{'scenario':<12}{'off us/op':>12}{'on us/op':>12}{'rate on/off':>13}")
            for scenario, row in costs.items():
                print(f"{scenario:<12}{row['off_us']:>12.1f}{row['on_us']:>12.1f}{row['ratio']:>13.3f}")
        return 0
    servers = {mode: start_server(mode) for mode in ("off", "on")}
    try:
        watched = {mode: (port, psutil.Process(proc.pid)) for mode, (proc, port) in servers.items()}
        results = asyncio.run(measure(watched, args.rounds, args.seconds, args.concurrency))
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    table = summary(results)
    if args.json:
        print(json.dumps(table))
    else:
        print(f"{'scenario':<24}{'off':>12}{'on':>12}{'on/off':>9}")
        for scenario, row in table.items():
            print(f"{scenario:<24}{row['off']:>12.1f}{row['on']:>12.1f}{row['ratio']:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
