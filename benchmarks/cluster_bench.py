"""Scale-out figures: Redis Cluster vs one Redis, wsroute vs Django Channels and python-socketio.

``python -m benchmarks.cluster_bench`` runs once (a few minutes, every
phase bounded in count and time) and writes ``benchmarks/results/cluster.json``
and ``docs/cluster-figures.md``, and refreshes the figures block of
``docs/cluster.md`` from the same numbers (``--docs-only`` regenerates both
pages from the JSON without measuring). Needs ``redis-server`` and
``redis-cli`` 7+, and the ``bench`` extra (channels, channels-redis, django,
python-socketio, uvicorn). ``--quick`` shrinks every phase (for a smoke run).

Phases:

1. **Group round trip** -- one client publishes to a topic it is subscribed
   to and waits for its own copy, alternating with a direct echo on the same
   connection, p50/p99 in ms: wsroute on the memory broker, on one Redis and
   on the 3-master cluster; Django Channels ``group_send`` through
   channels_redis (uvicorn) and python-socketio ``AsyncRedisManager``
   ``emit`` to a room (uvicorn), both on the same redis-server.
2. **Cross-process fan-out** -- 2 and 4 wsroute server processes, 25
   subscribers each on one topic; messages published straight to Redis;
   deliveries/s until every subscriber has every message; one Redis vs the
   cluster.
3. **10,000 idle connections** in one process (cluster broker), 100 per
   topic over 100 topics: RSS per connection, and the time for one broadcast
   to reach all of them.
4. **Failover** -- a master is SIGKILLed while a publisher sends to 12
   topics every 5 ms; the gap seen by a subscriber on the dead master's
   topics, with ``cluster-node-timeout`` 1 s.

The machine is shared (2 cores, other jobs running): figures are from one
run and noisy; ratios measured in the same run mean more than absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from benchmarks.cluster_peers import raise_nofile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "hub"))

from clustertest import RedisCluster  # noqa: E402 - the test suite's cluster launcher

RESULTS = ROOT / "benchmarks" / "results" / "cluster.json"
FIGURES = ROOT / "docs" / "cluster-figures.md"
PAGE = ROOT / "docs" / "cluster.md"
BEGIN, END = "<!-- cluster-figures:begin -->", "<!-- cluster-figures:end -->"


# Processes


class Child:
    """A server from :mod:`benchmarks.cluster_peers` in a child process."""

    def __init__(self, kind: str, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.cluster_peers", kind, url], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode().strip() if readable else "no output in 60 s"
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        self.port = int(line.split()[1])

    def rss(self) -> int:
        """Resident set size of the child, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class SingleRedis:
    """One redis-server on a free port, no persistence."""

    def __init__(self, directory: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not on PATH")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


# 1. Group round trip


async def _pairs(n: int, deadline: float, echo: Callable[[int], Awaitable[None]],
                 group: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Alternate echo and group round trips; 20 warm-up pairs are not counted."""
    echo_ms: list[float] = []
    group_ms: list[float] = []
    for i in range(n + 20):
        start = time.perf_counter()
        await echo(i)
        middle = time.perf_counter()
        await group(i)
        end = time.perf_counter()
        if i >= 20:
            echo_ms.append((middle - start) * 1000)
            group_ms.append((end - middle) * 1000)
        if time.monotonic() > deadline:
            break
    return {
        "samples": len(group_ms),
        "echo_p50_ms": percentile(echo_ms, 50), "echo_p99_ms": percentile(echo_ms, 99),
        "group_p50_ms": percentile(group_ms, 50), "group_p99_ms": percentile(group_ms, 99),
        "ratio_p50": percentile(group_ms, 50) / percentile(echo_ms, 50),
    }


async def _recv_until(ws: ClientConnection, expected: str) -> None:
    async with asyncio.timeout(10):
        while await ws.recv() != expected:
            pass


async def rtt_wsroute(port: int, n: int, seconds: float) -> dict[str, Any]:
    async with connect(f"ws://127.0.0.1:{port}/?topics=rt", compression=None) as ws:
        assert await ws.recv() == "ready"

        async def echo(i: int) -> None:
            await ws.send(f"echo e{i}")
            await _recv_until(ws, f"e{i}")

        async def group(i: int) -> None:
            await ws.send(f"pub rt g{i}")
            await _recv_until(ws, f"g{i}")

        return await _pairs(n, time.monotonic() + seconds, echo, group)


async def rtt_channels(port: int, n: int, seconds: float) -> dict[str, Any]:
    async with connect(f"ws://127.0.0.1:{port}/ws/", compression=None) as ws:

        async def echo(i: int) -> None:
            await ws.send(f"e{i}")
            await _recv_until(ws, f"e{i}")

        async def group(i: int) -> None:
            await ws.send(f"g{i}")
            await _recv_until(ws, f"g{i}")

        return await _pairs(n, time.monotonic() + seconds, echo, group)


async def rtt_socketio(port: int, n: int, seconds: float) -> dict[str, Any]:
    """Socket.IO over its WebSocket transport, spoken directly (Engine.IO 4 framing)."""
    async with connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                       compression=None) as ws:
        assert str(await ws.recv()).startswith("0")  # Engine.IO open
        await ws.send("40")  # Socket.IO connect to "/"
        while not str(await ws.recv()).startswith("40"):
            pass

        async def until(expected: str) -> None:
            async with asyncio.timeout(10):
                while (message := str(await ws.recv())) != expected:
                    if message == "2":
                        await ws.send("3")  # Engine.IO ping/pong

        async def echo(i: int) -> None:
            await ws.send(f'42{i}["e","e{i}"]')
            await until(f'43{i}["e{i}"]')

        async def group(i: int) -> None:
            await ws.send(f'42["g","g{i}"]')
            await until(f'42["m","g{i}"]')

        return await _pairs(n, time.monotonic() + seconds, echo, group)


async def phase_round_trip(redis_url: str, cluster_url: str, quick: bool) -> dict[str, Any]:
    n, seconds = (50, 5.0) if quick else (500, 25.0)
    runs: list[tuple[str, str, str, Callable[[int, int, float], Awaitable[dict[str, Any]]]]] = [
        ("wsroute memory", "wsroute", "memory://", rtt_wsroute),
        ("wsroute Redis", "wsroute", redis_url, rtt_wsroute),
        ("wsroute cluster", "wsroute", cluster_url, rtt_wsroute),
        ("Django Channels + channels_redis (uvicorn)", "channels", redis_url, rtt_channels),
        ("python-socketio AsyncRedisManager (uvicorn)", "socketio", redis_url, rtt_socketio),
    ]
    out: dict[str, Any] = {}
    for name, kind, url, run in runs:
        child = Child(kind, url)
        try:
            out[name] = await run(child.port, n, seconds)
        finally:
            child.close()
        print(f"  {name}: {out[name]}", flush=True)
    return out


# 2. Cross-process fan-out


Publish = Callable[[list[bytes]], Awaitable[None]]


async def redis_publisher(url: str) -> tuple[Publish, Callable[[], Awaitable[None]]]:
    """PUBLISH on the single-Redis broker's channel of topic "fan"."""
    from redis.asyncio import Redis

    from wsroute.hub.wire import Channels

    client = Redis.from_url(url)
    channel = Channels().topic("fan")

    async def publish(frames: list[bytes]) -> None:
        pipe = client.pipeline(transaction=False)
        for frame in frames:
            pipe.publish(channel, frame)
        await pipe.execute()

    return publish, client.aclose


async def cluster_publisher(url: str, channel: str | None = None) -> tuple[Publish, Callable[[], Awaitable[None]]]:
    """SPUBLISH on the cluster broker's channel of topic "fan" (or ``channel``), on its master."""
    from redis.crc import key_slot

    from wsroute.hub.topology import fetch_topology, node_client, parse_cluster_url
    from wsroute.hub.wire import ClusterChannels

    config = parse_cluster_url(url)
    topology, error = await fetch_topology(config.seeds, config.client_options(), 2.0)
    if topology is None:
        raise RuntimeError(f"no cluster map: {error}")
    channel = channel or ClusterChannels().topic("fan")
    client = node_client(topology.owner[key_slot(channel.encode())], config.client_options(), 5.0)

    async def publish(frames: list[bytes]) -> None:
        pipe = client.pipeline(transaction=False)
        for frame in frames:
            pipe.execute_command("SPUBLISH", channel, frame)
        await pipe.execute()

    return publish, client.aclose


async def fanout(url: str, processes: int, clients: int, messages: int) -> dict[str, Any]:
    """Deliveries/s of ``messages`` to ``clients`` subscribers on each of ``processes`` servers."""
    children = [Child("wsroute", url) for _ in range(processes)]
    sockets: list[ClientConnection] = []
    try:
        for child in children:
            for _ in range(clients):
                ws = await connect(f"ws://127.0.0.1:{child.port}/?topics=fan", compression=None,
                                   max_queue=None)
                assert await ws.recv() == "ready"
                sockets.append(ws)

        async def count(ws: ClientConnection) -> int:
            got = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    while got < messages:
                        await ws.recv()
                        got += 1
            return got

        maker = cluster_publisher if url.startswith("redis+cluster") else redis_publisher
        publish, close = await maker(url)
        frames = [b"T" + f"m{i:06d}".encode() for i in range(messages)]
        readers = [asyncio.create_task(count(ws)) for ws in sockets]
        start = time.perf_counter()
        for i in range(0, messages, 100):
            await publish(frames[i:i + 100])
        got = await asyncio.gather(*readers)
        elapsed = time.perf_counter() - start
        await close()
        return {"processes": processes, "subscribers": len(sockets), "messages": messages,
                "deliveries": sum(got), "seconds": elapsed, "deliveries_per_s": sum(got) / elapsed}
    finally:
        for ws in sockets:
            await ws.close()
        for child in children:
            child.close()


async def phase_fanout(redis_url: str, cluster_url: str, quick: bool) -> dict[str, Any]:
    messages, clients = (200, 10) if quick else (2000, 25)
    out: dict[str, Any] = {}
    for processes in (2, 4):
        for name, url in (("Redis", redis_url), ("cluster", cluster_url)):
            key = f"{name}, {processes} processes"
            out[key] = await fanout(url, processes, clients, messages)
            print(f"  {key}: {out[key]}", flush=True)
    return out


# 3. Idle connections


async def _raw_client(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare WebSocket client (no extensions): handshake, then wait for "ready"."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake failed: {head[:40]!r}")
    assert await _raw_frame(reader) == b"ready"
    return reader, writer


async def _raw_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return await reader.readexactly(size)


async def phase_idle(cluster_url: str, quick: bool) -> dict[str, Any]:
    total, topics = (1000, 100) if quick else (10_000, 100)
    child = Child("wsroute", cluster_url)
    pairs: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        await asyncio.sleep(0.5)
        before = child.rss()
        limit = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            async with limit:
                pairs.append(await _raw_client(child.port, f"/?topics=t{i % topics}"))

        start = time.perf_counter()
        await asyncio.gather(*[one(i) for i in range(total)])
        connect_s = time.perf_counter() - start
        await asyncio.sleep(1.0)
        after = child.rss()
        from wsroute.hub.wire import ClusterChannels

        publish, close = await cluster_publisher(cluster_url, ClusterChannels().all)
        start = time.perf_counter()
        await publish([b"Tbroadcast"])
        await asyncio.gather(*[_raw_frame(reader) for reader, _ in pairs])
        fanout_s = time.perf_counter() - start
        await close()
        return {"connections": total, "topics": topics, "connect_seconds": connect_s,
                "rss_before_mb": before / 2**20, "rss_after_mb": after / 2**20,
                "rss_per_connection_kb": (after - before) / total / 1024,
                "broadcast_to_all_ms": fanout_s * 1000}
    finally:
        for _, writer in pairs:
            writer.close()
        await asyncio.gather(*[writer.wait_closed() for _, writer in pairs], return_exceptions=True)
        await asyncio.sleep(0.5)  # let the server see every close before it shuts down
        child.close()


# 4. Failover


async def phase_failover(directory: str) -> dict[str, Any]:
    from wsroute.errors import BrokerUnavailable
    from wsroute.hub import Hub
    from wsroute.hub.cluster import ClusterBroker

    cluster = RedisCluster(Path(directory) / "failover")
    await asyncio.to_thread(cluster.start)
    url = cluster.url(3)
    topics = [f"t{i}" for i in range(12)]
    child = Child("wsroute", url)
    hub = Hub(broker=url)
    await hub.start()
    try:
        broker = hub.broker
        assert isinstance(broker, ClusterBroker)
        owner = {t: broker._owner(broker.channels.topic(t)) for t in topics}
        victim_address = owner["t0"]
        victim = next(n for n in cluster.nodes if (n.host, n.port) == victim_address)
        on_victim = [t for t in topics if owner[t] == victim_address]
        ws = await connect(f"ws://127.0.0.1:{child.port}/?topics=" + ",".join(topics), compression=None)
        assert await ws.recv() == "ready"
        arrivals: dict[str, list[tuple[int, float]]] = {t: [] for t in topics}

        async def read() -> None:
            async for message in ws:
                topic, _, number = str(message).partition(":")
                arrivals[topic].append((int(number), time.monotonic()))

        reader = asyncio.create_task(read())
        killed_at = 0.0
        failures = 0
        start = time.monotonic()
        for i in range(1_000_000):
            if i == 100:
                victim.kill()
                killed_at = time.monotonic()
            for topic in topics:
                try:
                    await hub.publish(topic, f"{topic}:{i}")
                except BrokerUnavailable:
                    failures += 1
            await asyncio.sleep(0.005)
            recovered = killed_at and all(
                arrivals[t] and arrivals[t][-1][1] > killed_at + 0.5 for t in on_victim)
            if recovered and time.monotonic() - max(arrivals[t][-1][1] for t in on_victim) < 0.1:
                await asyncio.sleep(1.0)
                break
            if time.monotonic() - start > 60:
                break
        reader.cancel()
        await ws.close()
        gaps = []
        first_after = []
        for topic in on_victim:
            times = [at for _, at in arrivals[topic]]
            gaps.append(max(b - a for a, b in itertools.pairwise(times)))
            first_after.append(min((at for at in times if at > killed_at + 0.001), default=float("nan"))
                               - killed_at)
        duplicates = sum(len(v) - len({n for n, _ in v}) for v in arrivals.values())
        return {"cluster_node_timeout_ms": 1000, "topics": len(topics), "topics_on_killed_master": len(on_victim),
                "max_gap_s": max(gaps), "kill_to_first_delivery_s": max(first_after),
                "publish_failures": failures, "duplicates": duplicates}
    finally:
        await hub.stop()
        child.close()
        cluster.stop()


# Report


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import redis
    import websockets

    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "websockets": websockets.__version__, "redis_py": redis.__version__,
            "redis_server": next((v[2:] for v in version if v.startswith("v=")), "?"),
            "loadavg_start": os.getloadavg()[0]}


def markdown(result: dict[str, Any]) -> str:
    """The generated figures page (also pasted between the markers of docs/cluster.md)."""
    m = result["machine"]
    lines = [
        f"Measured by `python -m benchmarks.cluster_bench` on {result['date']}: one run on a shared, noisy "
        f"machine ({m['nproc']} cores, {m['cpu_model'] or 'unknown CPU'}, load average {m['loadavg_start']:.1f} "
        f"at start), Python {m['python']}, websockets {m['websockets']}, redis-py {m['redis_py']}, "
        f"redis-server {m['redis_server']}, all on 127.0.0.1. Raw figures: `benchmarks/results/cluster.json`.",
        "",
        "**Group round trip** (publish to a topic one is subscribed to, wait for one's own copy) "
        "against a direct echo on the same connection, in ms:",
        "",
        "| server | echo p50 | echo p99 | group p50 | group p99 | group / echo (p50) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["round_trip"].items():
        lines.append(f"| {name} | {row['echo_p50_ms']:.2f} | {row['echo_p99_ms']:.2f} | {row['group_p50_ms']:.2f} "
                     f"| {row['group_p99_ms']:.2f} | {row['ratio_p50']:.1f}x |")
    rt = result["round_trip"]
    ours = rt["wsroute Redis"]["group_p50_ms"]
    django = rt["Django Channels + channels_redis (uvicorn)"]["group_p50_ms"] / ours
    sio = rt["python-socketio AsyncRedisManager (uvicorn)"]["group_p50_ms"] / ours
    lines += [
        "",
        f"wsroute's Redis topic round trip is {rt['wsroute Redis']['ratio_p50']:.1f}x its direct echo; "
        f"Django Channels' group round trip is {django:.1f}x wsroute's, python-socketio's {sio:.1f}x "
        "(p50, same redis-server, same run). python-socketio's `AsyncRedisManager.emit` delivers to its own "
        "process's room members first and then publishes to Redis for the others, so its figure has no Redis "
        "round trip in it; wsroute's and Channels' own copies come back through Redis (exactly-once by "
        "construction).",
        "",
        "**Cross-process fan-out**: subscribers on every server process, messages published straight to Redis. "
        "One client process reads every delivery, so on this machine the clients bound these figures; compare "
        "the two brokers row by row:",
        "",
        "| broker | processes | subscribers | messages | deliveries/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["fanout"].items():
        lines.append(f"| {name.split(',')[0]} | {row['processes']} | {row['subscribers']} | {row['messages']:,} "
                     f"| {row['deliveries_per_s']:,.0f} |")
    idle = result["idle"]
    fail = result["failover"]
    lines += [
        "",
        f"**{idle['connections']:,} idle connections** in one process (cluster broker, {idle['topics']} topics): "
        f"{idle['rss_per_connection_kb']:.1f} KiB RSS per connection "
        f"({idle['rss_before_mb']:.0f} MiB before, {idle['rss_after_mb']:.0f} MiB after); one broadcast reached all "
        f"of them in {idle['broadcast_to_all_ms']:.0f} ms (including the clients, one Python process, reading "
        f"{idle['connections']:,} frames).",
        "",
        f"**Failover** (`cluster-node-timeout` {fail['cluster_node_timeout_ms']} ms, master SIGKILLed while "
        f"publishing every 5 ms to {fail['topics']} topics, {fail['topics_on_killed_master']} of them on that "
        f"master): deliveries on its topics resumed {fail['kill_to_first_delivery_s']:.1f} s after the kill; "
        f"the longest gap was {fail['max_gap_s']:.1f} s; {fail['publish_failures']} publishes failed "
        f"(raised and counted); {fail['duplicates']} duplicates. Topics on the other masters had no gap.",
        "",
    ]
    return "\n".join(lines)


def write(result: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    body = markdown(result)
    FIGURES.write_text("# Redis Cluster figures\n\n<!-- generated by benchmarks/cluster_bench.py; "
                       "do not edit -->\n\n" + body)
    if PAGE.exists():
        text = PAGE.read_text()
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            PAGE.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")


async def run(quick: bool) -> dict[str, Any]:
    raise_nofile()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "quick": quick, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="wsroute-cluster-bench-") as directory:
        single = SingleRedis(directory)
        cluster = RedisCluster(Path(directory) / "cluster")
        await asyncio.to_thread(cluster.start)
        try:
            print("group round trip", flush=True)
            result["round_trip"] = await phase_round_trip(single.url, cluster.url(), quick)
            print("cross-process fan-out", flush=True)
            result["fanout"] = await phase_fanout(single.url, cluster.url(), quick)
            print("idle connections", flush=True)
            result["idle"] = await phase_idle(cluster.url(), quick)
        finally:
            cluster.stop()
            single.stop()
        print("failover", flush=True)
        result["failover"] = await phase_failover(directory)
        print(f"  {result['failover']}", flush=True)
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep results and docs as they are")
    parser.add_argument("--docs-only", action="store_true",
                        help="measure nothing: regenerate the docs from benchmarks/results/cluster.json")
    args = parser.parse_args(argv)
    if args.docs_only:
        result = json.loads(RESULTS.read_text())
        write(result)
        return 0
    result = asyncio.run(run(args.quick))
    if not args.no_write:
        write(result)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
