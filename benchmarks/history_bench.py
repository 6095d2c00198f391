"""What message history costs: publish throughput, recovery time, memory per topic.

Run from the repository root (``redis-server`` on PATH for the Redis rows)::

    python -m benchmarks.history_bench            # ~1 min on 2 shared cores
    python -m benchmarks.history_bench --smoke    # seconds, for the test suite

Three measurements, each for the memory broker and for Redis, in one run:

* **Publish throughput**, a history topic (``hub.history("h:*")``) against
  a plain topic *on the same broker, same run, alternated*: sequential
  ``await hub.publish()`` (one round trip each with Redis) and 64
  concurrent publishers. For Redis the redis-server's own CPU time per
  message is read from ``/proc`` (psutil), because Centrifugo reports that
  history roughly doubles Redis CPU.
* **Recovery of 1,000 missed messages**: a real server (``serve_app``), a
  websockets client reconnecting ``?since=`` a position 1,000 messages
  old; the time from ``connect()`` until the last replayed envelope and
  the recovery summary arrived (median of the rounds).
* **Memory per topic**: topics filled with ``size`` (100) messages of
  100 bytes; memory broker by ``tracemalloc``, Redis by ``used_memory``.

Results go to ``benchmarks/results/history.json`` and, as a table,
``benchmarks/results/history.md`` (included by docs/history.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
PAYLOAD = "x" * 100


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class Redis:
    """A throwaway redis-server (no persistence) on a free port."""

    def __init__(self, binary: str, directory: str) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu(self) -> float:
        """CPU seconds redis-server used so far (user + system)."""
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


async def make_hub(broker: str | None) -> Any:
    from wsroute.hub import Hub

    hub = Hub(broker=broker)
    hub.history("h:*", size=1000, ttl=300)
    await hub.start()
    return hub


async def publish_rate(hub: Any, topic: str, count: int, concurrency: int) -> float:
    """Messages per second for ``count`` publishes by ``concurrency`` tasks."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await hub.publish(topic, PAYLOAD)

    start = time.perf_counter()
    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    return (count // concurrency * concurrency) / (time.perf_counter() - start)


async def throughput(broker: str | None, redis: Redis | None, count: int, rounds: int) -> dict[str, Any]:
    """History vs plain topic, alternated, sequential and concurrent; Redis CPU per message."""
    hub = await make_hub(broker)
    rows: dict[str, Any] = {}
    try:
        await publish_rate(hub, "p:warm", 100, 1)  # connections, script load
        await publish_rate(hub, "h:warm", 100, 1)
        for mode, concurrency in (("sequential", 1), ("concurrent_64", 64)):
            rates: dict[str, list[float]] = {"plain": [], "history": []}
            cpu: dict[str, list[float]] = {"plain": [], "history": []}
            for i in range(rounds):
                for kind in ("plain", "history") if i % 2 == 0 else ("history", "plain"):
                    topic = f"{'h' if kind == 'history' else 'p'}:{mode}:{i}"
                    before = redis.cpu() if redis else 0.0
                    rates[kind].append(await publish_rate(hub, topic, count, concurrency))
                    if redis:
                        cpu[kind].append((redis.cpu() - before) / count * 1e6)
            row = {kind: round(statistics.median(values)) for kind, values in rates.items()}
            row["history_vs_plain"] = round(row["history"] / row["plain"], 2)
            if redis:
                row["redis_cpu_us_per_msg"] = {k: round(statistics.median(v), 1) for k, v in cpu.items()}
            rows[mode] = row
    finally:
        await hub.stop()
    return rows


async def recovery_time(broker: str | None, missed: int, rounds: int) -> dict[str, Any]:
    """Median seconds to reconnect and receive ``missed`` replayed envelopes."""
    from websockets.asyncio.client import connect

    import wsroute
    from wsroute.testing import serve_app

    app = wsroute.App(broker=broker)
    app.hub.history("h:*", size=max(1000, missed), ttl=300)

    @app.route("/sub")
    class Sub(wsroute.Handler):
        async def on_connect(self) -> None:
            since = wsroute.Position.parse(self.ws.query.get("since", [""])[0])
            result = await self.subscribe("h:bench", since=since)
            assert result is not None
            await self.send_json({"recovery": result.missed})

    times = []
    async with serve_app(app) as server:
        for i in range(rounds):
            _, position = await app.hub.read_history("h:bench", limit=1)
            for _ in range(missed):
                await app.hub.publish("h:bench", PAYLOAD)
            start = time.perf_counter()
            async with connect(server.url(f"/sub?since={position}"), max_size=None) as ws:
                received = 0
                while True:
                    message = json.loads(await ws.recv())
                    if "recovery" in message:
                        break
                    received += 1
                times.append(time.perf_counter() - start)
            if received != missed or message["recovery"] != missed:
                raise RuntimeError(f"round {i}: replayed {received}, expected {missed}")
    return {"missed": missed, "median_ms": round(statistics.median(times) * 1000, 1),
            "per_message_us": round(statistics.median(times) / missed * 1e6, 1), "rounds": rounds}


async def memory_per_topic(broker: str | None, redis: Redis | None, topics: int, size: int) -> dict[str, Any]:
    """Bytes per topic holding ``size`` messages of 100 bytes."""
    hub = await make_hub(broker)
    try:
        from wsroute.hub.history import HistoryConfig

        config = HistoryConfig(size, 300)
        if redis is None:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        else:
            client = hub.broker._client
            await client.execute_command("MEMORY", "PURGE")
            before = int((await client.info("memory"))["used_memory"])
        for t in range(topics):
            for _ in range(size):
                await hub.broker.publish_history(f"h:mem:{t}", b'"' + PAYLOAD.encode() + b'"', config)
        if redis is None:
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        else:
            after = int((await hub.broker._client.info("memory"))["used_memory"])
    finally:
        await hub.stop()
    per_topic = (after - before) / topics
    return {"topics": topics, "messages_per_topic": size, "payload_bytes": 100,
            "bytes_per_topic": round(per_topic), "bytes_per_message": round(per_topic / size, 1)}


async def run(smoke: bool) -> dict[str, Any]:
    count, rounds = (200, 1) if smoke else (5000, 3)
    missed, rec_rounds = (100, 1) if smoke else (1000, 5)
    topics = 10 if smoke else 200
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "nproc": os.cpu_count(), "platform": platform.platform()},
        "settings": {"publishes": count, "rounds": rounds, "payload_bytes": 100, "smoke": smoke},
        "brokers": {},
    }
    binary = redis_binary()
    with tempfile.TemporaryDirectory(prefix="history-bench-") as directory:
        redis = Redis(binary, directory) if binary else None
        try:
            for name, url, proc in (("memory", None, None), ("redis", redis.url if redis else None, redis)):
                if name == "redis" and redis is None:
                    continue
                result["brokers"][name] = {
                    "publish": await throughput(url, proc, count, rounds),
                    "recovery": await recovery_time(url, missed, rec_rounds),
                    "memory": await memory_per_topic(url, proc, topics, 100),
                }
        finally:
            if redis is not None:
                redis.stop()
    if binary is None:
        result["note"] = "redis-server not found: no Redis rows"
    return result


def markdown(result: dict[str, Any]) -> str:
    """The figures as the table docs/history.md includes."""
    lines = [
        "<!-- generated by `python -m benchmarks.history_bench`; do not edit -->",
        "| broker | publish, plain topic (msg/s) | publish, history topic (msg/s) | history / plain "
        "| Redis CPU per message, plain / history (µs) | recover missed messages (ms) "
        "| memory per topic of 100 x 100 B |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rows in result["brokers"].items():
        for mode, row in rows["publish"].items():
            cpu = row.get("redis_cpu_us_per_msg")
            cpu_text = f"{cpu['plain']} / {cpu['history']}" if cpu else "-"
            recovery = rows["recovery"]
            memory = rows["memory"]
            lines.append(
                f"| {name}, {mode.replace('_', ' ')} | {row['plain']:,} | {row['history']:,} | "
                f"{row['history_vs_plain']} | {cpu_text} | {recovery['median_ms']} (of {recovery['missed']:,}) | "
                f"{memory['bytes_per_topic'] / 1024:.1f} KiB |"
            )
    machine = result["machine"]
    lines.append("")
    lines.append(f"Measured on {machine['nproc']} cores ({machine['platform']}), Python {machine['python']}, "
                 f"{result['settings']['publishes']:,} publishes per round, median of "
                 f"{result['settings']['rounds']} rounds.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--output", type=Path, default=RESULTS / "history.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.smoke))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
