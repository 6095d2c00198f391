"""What the limits cost when not hit, and whether valid clients are served under a refused flood.

``python -m benchmarks.limits_bench [--rounds 5] [--flood 20000]`` writes
``benchmarks/results/limits.json`` and ``docs/snippets/limits.md``, which docs/security.md includes:

* **Overhead.** The same echo app served by ``wsroute run`` twice, without
  limits and with every limit configured but not hit (``max_connections``,
  per IP, per user, ``handshake_rate``, ``message_rate``); rounds alternate
  between the two servers and the ratio of each round is kept, so a noisy,
  shared machine moves both sides alike. Reported: the median ratio of
  handshakes/s and of echo messages/s, by the wall clock and per CPU-second
  of the server process (read from /proc: the steadier figure when other
  processes compete for the cores).
* **Flood.** A server with ``handshake_rate="10/s"`` gets ``--flood``
  handshakes from 127.0.0.1 (50 at a time, raw upgrade requests: each gets
  429) while a well-behaved client bound to 127.0.0.2 connects and echoes
  every 20 ms; reported: refusals per second sustained and the good client's
  connect+echo latency (p50, p99, max) and failures.
* **Hold.** ``--hold`` idle connections to the limited app: server RSS per
  connection, then SIGTERM: the close codes the clients got, the exit
  status and the time to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
APP = '''
import wsroute

def build(limited):
    options = dict(
        max_connections=100_000, max_connections_per_ip=10_000, max_connections_per_user=10_000,
        handshake_rate="1000000/s", message_rate="1000000/s", max_subscriptions=100,
    ) if limited else {}
    app = wsroute.App(load_entrypoints=False, **options)

    @app.middleware
    def user(conn, request):
        conn.ctx.user_id = "bench"

    @app.route("/echo")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    return app

plain = build(False)
limited = build(True)
flood = wsroute.App(load_entrypoints=False, handshake_rate="10/s")

@flood.route("/echo")
async def flood_echo(ws):
    async for message in ws:
        await ws.send(message)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """``wsroute run benchapp:NAME`` in a child process."""

    def __init__(self, folder: str, name: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsroute", "run", f"benchapp:{name}", "--app-dir", folder,
             "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"benchapp:{name} did not start")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/echo"

    def cpu(self) -> float:
        """CPU seconds the server process used so far (user + system, from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        pages = int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def handshakes_per_s(url: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        async with connect(url, compression=None):
            pass
    return count / (time.perf_counter() - started)


async def echoes_per_s(url: str, count: int, clients: int = 4) -> float:
    async def one() -> None:
        async with connect(url, compression=None) as ws:
            for _ in range(count // clients):
                await ws.send("x" * 32)
                await ws.recv()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return count / (time.perf_counter() - started)


async def overhead(folder: str, rounds: int, handshakes: int, messages: int) -> dict[str, Any]:
    servers = {name: Served(folder, name) for name in ("plain", "limited")}
    try:
        metrics = ("handshakes_per_s", "echo_msgs_per_s", "handshakes_per_cpu_s", "echo_msgs_per_cpu_s")
        raw: dict[str, dict[str, list[float]]] = {n: {m: [] for m in metrics} for n in servers}
        for index in range(rounds):
            order = ("plain", "limited") if index % 2 == 0 else ("limited", "plain")
            for name in order:
                server = servers[name]
                cpu = server.cpu()
                raw[name]["handshakes_per_s"].append(await handshakes_per_s(server.url, handshakes))
                raw[name]["handshakes_per_cpu_s"].append(handshakes / max(server.cpu() - cpu, 1e-3))
                cpu = server.cpu()
                raw[name]["echo_msgs_per_s"].append(await echoes_per_s(server.url, messages))
                raw[name]["echo_msgs_per_cpu_s"].append(messages / max(server.cpu() - cpu, 1e-3))
    finally:
        for server in servers.values():
            server.stop()
    ratios = {
        metric: [lim / plain for lim, plain in zip(raw["limited"][metric], raw["plain"][metric], strict=True)]
        for metric in metrics
    }
    return {
        "rounds": rounds,
        "median": {name: {m: statistics.median(v) for m, v in metrics.items()} for name, metrics in raw.items()},
        "median_ratio": {metric: statistics.median(values) for metric, values in ratios.items()},
        "ratios": ratios,
    }


async def refused_handshake(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return int(head.split()[1])


async def flood(folder: str, total: int) -> dict[str, Any]:
    server = Served(folder, "flood")
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    failures = 0
    done = asyncio.Event()

    async def attacker(share: int) -> None:
        for _ in range(share):
            try:
                status = await refused_handshake(server.port)
            except OSError:
                status = 0
            statuses[status] = statuses.get(status, 0) + 1

    async def good_client() -> None:
        nonlocal failures
        while not done.is_set():
            started = time.perf_counter()
            try:
                async with connect(server.url, local_addr=("127.0.0.2", 0), open_timeout=10) as ws:
                    await ws.send("ping")
                    await ws.recv()
                latencies.append(time.perf_counter() - started)
            except Exception:
                failures += 1
            await asyncio.sleep(0.02)

    try:
        good = asyncio.create_task(good_client())
        started = time.perf_counter()
        await asyncio.gather(*(attacker(total // 50) for _ in range(50)))
        elapsed = time.perf_counter() - started
        done.set()
        await good
    finally:
        server.stop()
    latencies.sort()
    ms = [value * 1000 for value in latencies]
    return {
        "handshakes": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": elapsed,
        "refusals_per_s": statuses.get(429, 0) / elapsed,
        "good_client": {
            "connects": len(ms),
            "failures": failures,
            "p50_ms": statistics.median(ms) if ms else None,
            "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else None,
            "max_ms": ms[-1] if ms else None,
        },
    }


async def hold(folder: str, count: int) -> dict[str, Any]:
    """Open ``count`` idle connections to the limited app: server memory per connection, then drain time."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * count + 256)), hard))
    server = Served(folder, "limited")
    clients = []
    try:
        await asyncio.sleep(0.5)
        before = server.rss()
        for start in range(0, count, 100):
            batch = min(100, count - start)
            clients += await asyncio.gather(*(connect(server.url, compression=None) for _ in range(batch)))
        await asyncio.sleep(0.5)
        per_connection = (server.rss() - before) / count
        started = time.perf_counter()
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*(ws.wait_closed() for ws in clients)), 60)
        codes = {ws.close_code for ws in clients}
        await asyncio.to_thread(server.proc.wait, 60)
        drained = time.perf_counter() - started
    finally:
        if server.proc.poll() is None:
            server.stop()
    return {
        "connections": count,
        "rss_per_connection_bytes": per_connection,
        "close_codes": sorted(c for c in codes if c is not None),
        "exit_status": server.proc.returncode,
        "drain_seconds": drained,
    }


def markdown(result: dict[str, Any]) -> str:
    over, fl = result["overhead"], result["flood"]
    good = fl["good_client"]
    rows = [
        "| measure | without limits | all limits, not hit | median ratio of rounds |",
        "| --- | --- | --- | --- |",
    ]
    labels = (
        ("handshakes_per_s", "handshakes/s (wall clock)"),
        ("echo_msgs_per_s", "echo messages/s (wall clock)"),
        ("handshakes_per_cpu_s", "handshakes per server CPU-second"),
        ("echo_msgs_per_cpu_s", "echo messages per server CPU-second"),
    )
    for metric, label in labels:
        rows.append(
            f"| {label} | {over['median']['plain'][metric]:,.0f} | {over['median']['limited'][metric]:,.0f} "
            f"| {over['median_ratio'][metric]:.3f} |"
        )
    return "\n".join([
        f"Measured {result['date']} on {result['machine']} ({over['rounds']} interleaved rounds, `wsroute run`, "
        f"asyncio or uvloop as installed; `python -m benchmarks.limits_bench`).",
        "",
        *rows,
        "",
        f"Flood: {fl['handshakes']:,} handshakes from 127.0.0.1 against `handshake_rate=\"10/s\"` in "
        f"{fl['seconds']:.1f} s, {fl['refusals_per_s']:,.0f} refusals (429) per second sustained "
        f"(statuses: {fl['statuses']}). Meanwhile a client on 127.0.0.2 connected and echoed "
        f"{good['connects']} times with {good['failures']} failures: connect + echo p50 "
        f"{good['p50_ms']:.1f} ms, p99 {good['p99_ms']:.1f} ms, max {good['max_ms']:.1f} ms.",
        "",
        f"Held: {result['hold']['connections']:,} idle connections to the app with every limit configured, "
        f"{result['hold']['rss_per_connection_bytes'] / 1024:.1f} KiB of server RSS each; after SIGTERM every "
        f"client got {result['hold']['close_codes']} and the process exited "
        f"{result['hold']['exit_status']} in {result['hold']['drain_seconds']:.2f} s.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--flood", type=int, default=20_000)
    parser.add_argument("--hold", type=int, default=2000)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "limits.json"))
    parser.add_argument("--snippet", default=str(ROOT / "docs" / "snippets" / "limits.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "benchapp.py").write_text(APP)
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
            "overhead": asyncio.run(overhead(folder, args.rounds, args.handshakes, args.messages)),
            "flood": asyncio.run(flood(folder, args.flood)),
            "hold": asyncio.run(hold(folder, args.hold)),
        }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.snippet).parent.mkdir(parents=True, exist_ok=True)
    Path(args.snippet).write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
