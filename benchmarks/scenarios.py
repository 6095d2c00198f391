"""Network scenarios: handshakes, echo round trips, fan-out and memory.

Each round runs every server kind back to back, in an order rotated per
round, so that a slow minute of the noisy machine hurts each kind about
equally. Each server is a fresh process (``benchmarks.servers``); the client
processes (``benchmarks.clients``) are spawned once and reused.

Utilisation (``server_cpu``, ``client_cpu``) is CPU-seconds per wall-second
over the whole command: 1.0 means one core was busy the whole time. On two
cores a server near 1.0 was the limit; clients near 1.0 (of the one core left)
mean the load generator was. ``server_us_per_op`` (server CPU per handshake
or message) is the figure least disturbed by other programs on a shared
machine: they take wall time from the server, not CPU time per operation.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from benchmarks import peers, procs, stats
from benchmarks.clients import client_main
from benchmarks.config import Settings
from benchmarks.servers import server_main

Result = dict[str, Any]


def rotated(items: tuple[str, ...], by: int) -> list[str]:
    """Return ``items`` rotated left by ``by`` (the per-round kind order)."""
    shift = by % len(items) if items else 0
    return list(items[shift:] + items[:shift])


def split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal positive shares."""
    shares = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    return [s for s in shares if s > 0]


FRAMEWORK_KINDS = ("raw", "rawhook", "werkzeug", "wsroute")
"""Kinds that serve ``/json`` (typed JSON dispatch); the peers serve ``/echo`` and ``/idle``."""


class Server:
    """A server process of one kind serving one endpoint.

    Attributes:
        uri: what the clients connect to (Socket.IO's Engine.IO path for ``socketio``).
        protocol: what the clients speak, ``ws`` or ``sio``.
    """

    def __init__(self, kind: str, mode: str, loop: str, profile: str = "", deflate: bool = False) -> None:
        self.child = procs.Child(server_main, kind, mode, loop, profile, deflate)
        hello = self.child.recv(90)
        self.uri = f"ws://127.0.0.1:{hello['port']}{peers.path_for(kind, mode)}"
        self.protocol = peers.PROTOCOL.get(kind, "ws")
        self.note = hello.get("note", "")

    def stats(self, collect: bool = False) -> Result:
        """Return the server's CPU seconds, RSS and open connection count.

        Args:
            collect: run a full garbage collection first (for memory figures).
        """
        self.child.send(("stats", collect))
        return dict(self.child.recv(30))

    def broadcast(self, count: int, size: int) -> Result:
        """Ask the server to broadcast ``count`` messages; return its timings."""
        self.child.send(("broadcast", count, size))
        return dict(self.child.recv(60))

    def stop(self) -> None:
        """Stop the server process (killed if it does not exit in time)."""
        self.child.stop()


def command_all(clients: list[procs.Child], commands: list[tuple[Any, ...]], timeout: float) -> list[Result]:
    """Send one command to each client at once and collect every reply."""
    for child, command in zip(clients, commands, strict=False):
        child.send(command)
    return list(procs.wait_all(clients[: len(commands)], timeout))


def load_phase(server: Server, clients: list[procs.Child], commands: list[tuple[Any, ...]], timeout: float) -> Result:
    """Run one load command on all clients; return rate, latency and CPU use."""
    before = server.stats()
    busy0, started = procs.machine_busy_seconds(), time.monotonic()
    replies = command_all(clients, commands, timeout)
    busy1, elapsed = procs.machine_busy_seconds(), time.monotonic() - started
    after = server.stats()
    server_cpu = (after["cpu"] - before["cpu"]) / elapsed
    client_cpu = sum(r["cpu"] for r in replies) / elapsed
    ops = sum(r["ops"] for r in replies)
    wall = max(r["wall"] for r in replies)
    latencies = [x for r in replies for x in r["latencies"]]
    return {
        "rate": ops / wall if wall > 0 else 0.0,
        "ops": ops,
        "p50_ms": stats.percentile(latencies, 50) * 1e3,
        "p99_ms": stats.percentile(latencies, 99) * 1e3,
        "errors": sum(r["errors"] for r in replies),
        "server_cpu": server_cpu,
        "server_us_per_op": server_cpu * elapsed / ops * 1e6 if ops else math.nan,
        "client_cpu": client_cpu,
        "background_cpu": max(0.0, (busy1 - busy0) / elapsed - server_cpu - client_cpu),
    }


def handshake(server: Server, clients: list[procs.Child], s: Settings) -> Result:
    """Open + close connections at concurrency ``s.handshake_concurrency``."""
    shares = split(s.handshake_concurrency, len(clients))
    budget = s.max_ops // len(shares)
    commands = [("handshake", server.uri, n, s.duration, budget, server.protocol) for n in shares]
    return load_phase(server, clients, commands, s.duration + 60)


def echo_message(mode: str, size: int, protocol: str = "ws") -> str:
    """Return a ``size``-byte message: plain text, JSON with a "type", or a Socket.IO event.

    The Socket.IO packet ``42["echo","xxx..."]`` is padded to the same
    ``size`` bytes on the wire as the others.
    """
    if protocol == "sio":
        envelope = '42["echo",""]'
        return '42["echo","' + "x" * max(0, size - len(envelope)) + '"]'
    if mode == "echo":
        return "x" * size
    envelope = json.dumps({"type": "echo", "data": ""})
    return json.dumps({"type": "echo", "data": "x" * max(0, size - len(envelope))})


def echo(server: Server, clients: list[procs.Child], s: Settings, mode: str, size: int) -> Result:
    """Round trips on ``s.echo_connections`` connections, one in flight each."""
    shares = split(s.echo_connections, len(clients))
    budget = s.max_ops // len(shares)
    message = echo_message(mode, size, server.protocol)
    commands = [("echo", server.uri, n, message, s.duration, budget, server.protocol) for n in shares]
    return load_phase(server, clients, commands, s.duration + 60)


def wait_connections(server: Server, count: int, timeout: float) -> Result:
    """Poll the server until it reports ``count`` open connections.

    The last poll runs a full garbage collection, so its RSS is comparable
    with the baseline taken the same way.
    """
    end = time.monotonic() + timeout
    current = server.stats()
    while current["connections"] < count and time.monotonic() < end:
        time.sleep(0.1)
        current = server.stats()
    return server.stats(collect=True)


def fanout(server: Server, clients: list[procs.Child], s: Settings, count: int) -> Result:
    """Connect ``count`` idle clients, measure memory, then broadcast to them."""
    baseline = server.stats(collect=True)
    shares = split(count, len(clients))
    commands = [("idle", server.uri, n, 50, server.protocol) for n in shares]
    replies = command_all(clients, commands, 60 + count / 50)
    connected = sum(r["connected"] for r in replies)
    loaded = wait_connections(server, connected, 10)
    memory = (loaded["rss"] - baseline["rss"]) / max(1, loaded["connections"])
    first = deliver(server, clients, len(shares), 1, 1, s.fanout_size)
    burst = deliver(server, clients, len(shares), 1 + s.fanout_messages, s.fanout_messages, s.fanout_size)
    delivered = burst["received"] - first["received"]
    command_all(clients, [("close_idle",)] * len(shares), 60)
    return {
        "connected": connected,
        "memory_per_conn": memory,
        "first_last_ms": first["last_ms"],
        "burst_last_ms": burst["last_ms"],
        "rate": delivered / (burst["last_ms"] / 1e3) if burst["last_ms"] > 0 else 0.0,
        "delivered": delivered,
        "expected": connected * s.fanout_messages,
        "send_ms": burst["send_ms"],
        "server_cpu_ms": burst["server_cpu_ms"],
        "client_cpu_ms": burst["client_cpu_ms"],
        "background_cpu": burst["background_cpu"],
    }


def deliver(
    server: Server, clients: list[procs.Child], used: int, per_connection: int, count: int, size: int
) -> Result:
    """Broadcast ``count`` messages and wait for clients to hold ``per_connection``.

    ``server_cpu_ms`` is the server's CPU from the broadcast command until
    every client holds its messages: it includes work a hub defers to tasks
    after ``broadcast()`` returns, which ``send_ms`` (the call alone) misses.
    """
    for child in clients[:used]:
        child.send(("expect", per_connection, 20.0))
    before = server.stats()
    busy0, started = procs.machine_busy_seconds(), time.monotonic()
    sent = server.broadcast(count, size)
    replies = procs.wait_all(clients[:used], 60)
    busy1, elapsed = procs.machine_busy_seconds(), time.monotonic() - started
    after = server.stats()
    last = max(r["t_last"] for r in replies)
    return {
        "received": sum(r["received"] for r in replies),
        "last_ms": max(0.0, last - sent["t0"]) * 1e3,
        "send_ms": (sent["t1"] - sent["t0"]) * 1e3,
        "server_cpu_ms": (after["cpu"] - before["cpu"]) * 1e3,
        "client_cpu_ms": sum(r["cpu"] for r in replies) * 1e3,
        "background_cpu": max(
            0.0, (busy1 - busy0 - (after["cpu"] - before["cpu"]) - sum(r["cpu"] for r in replies)) / elapsed
        ),
    }


def run_loop(s: Settings, loop: str, clients: list[procs.Child], notes: set[str]) -> dict[str, dict[str, list[Result]]]:
    """Run every network scenario for one server loop, ``s.rounds`` times.

    A server that crashes or stalls costs its own measurements only: the
    failure becomes a note, the client processes are replaced (one of them
    may still be busy with the abandoned command), and the run goes on.
    """
    out: dict[str, dict[str, list[Result]]] = {}

    def add(key: str, kind: str, result: Result) -> None:
        out.setdefault(key, {}).setdefault(kind, []).append(result)

    def guarded(label: str, step: Any, *args: Any) -> None:
        try:
            step(*args)
        except (TimeoutError, EOFError, OSError, KeyError, ValueError) as exc:
            notes.add(f"{loop} {label}: failed in some round ({exc!r}); its figures are missing")
            restart_clients(clients)

    for r in range(s.rounds):
        for kind in rotated(s.kinds, r):
            for mode in ("echo", "json") if kind in FRAMEWORK_KINDS else ("echo",):
                guarded(f"{kind} /{mode}", _echo_server, s, loop, kind, mode, clients, add, notes)
        if "fanout" in s.scenarios and r < s.fanout_rounds:
            for kind in rotated(s.fanout_kinds, r):
                for count in s.fanout_clients:
                    if count > peers.FANOUT_LIMIT.get(kind, count):
                        notes.add(f"{kind} fanout_{count}: not run (see FANOUT_LIMIT in benchmarks/peers.py)")
                        continue
                    guarded(f"{kind} fanout_{count}", _fanout_server, s, loop, kind, count, clients, add)
        if "memory" in s.scenarios and r < s.fanout_rounds:
            for kind in rotated(s.memory_kinds, r):
                label = f"memory_deflate_{s.memory_clients}"
                guarded(f"{kind} {label}", _memory_server, s, loop, kind, clients, add)
    return out


def _memory_server(s: Settings, loop: str, kind: str, clients: list[procs.Child], add: Any) -> None:
    """Idle memory per connection with permessage-deflate offered, on a fresh server.

    The server runs with its own default compression; every client offers
    permessage-deflate as browsers do. ``memory_per_conn`` is the idle
    figure (handshake done, no message yet); ``memory_active`` the same
    after one 64-byte broadcast reached every connection (each compressor
    has then been used once); ``negotiated`` how many connections the server
    accepted the extension on.
    """
    server = Server(kind, "idle", loop, deflate=True)
    try:
        baseline = server.stats(collect=True)
        shares = split(s.memory_clients, len(clients))
        commands = [("idle", server.uri, n, 50, server.protocol, True) for n in shares]
        replies = command_all(clients, commands, 60 + s.memory_clients / 50)
        connected = sum(r["connected"] for r in replies)
        loaded = wait_connections(server, connected, 10)
        first = deliver(server, clients, len(shares), 1, 1, s.fanout_size)
        active = server.stats(collect=True)
        command_all(clients, [("close_idle",)] * len(shares), 60)
        per = max(1, loaded["connections"])
        add(
            f"memory_deflate_{s.memory_clients}",
            kind,
            {
                "connected": connected,
                "negotiated": sum(r["deflate"] for r in replies),
                "memory_per_conn": (loaded["rss"] - baseline["rss"]) / per,
                "memory_active": (active["rss"] - baseline["rss"]) / per,
                "delivered": first["received"],
                "first_last_ms": first["last_ms"],
            },
        )
    finally:
        server.stop()


def tenk(s: Settings, loop: str, kind: str, notes: set[str]) -> Result:
    """``s.tenk`` idle connections with deflate offered, on one server process.

    The clients are spread over ``s.tenk_procs`` fresh processes (each holds
    ``s.tenk / s.tenk_procs`` sockets; RLIMIT_NOFILE is raised to its hard
    limit in every process). Reports the server's total RSS, RSS per
    connection, the time to accept them all, and one broadcast to all.
    """
    clients = start_clients(s.tenk_procs)
    server = Server(kind, "idle", loop, deflate=True)
    try:
        baseline = server.stats(collect=True)
        shares = split(s.tenk, len(clients))
        started = time.monotonic()
        # 25 handshakes in flight per process: with 4 processes that is the
        # listen backlog of websockets' serve() (100); more overflow it and
        # SYN retransmits (1 s, 3 s...) make some connections time out.
        commands = [("idle", server.uri, n, 25, server.protocol, True) for n in shares]
        replies = command_all(clients, commands, 120 + s.tenk / 50)
        connected = sum(r["connected"] for r in replies)
        loaded = wait_connections(server, connected, 30)
        accept_s = time.monotonic() - started
        first = deliver(server, clients, len(shares), 1, 1, s.fanout_size)
        after = server.stats(collect=True)
        command_all(clients, [("close_idle",)] * len(shares), 120)
        if connected < s.tenk:
            notes.add(f"{loop} tenk {kind}: only {connected:,} of {s.tenk:,} connections opened")
        return {
            "connected": connected,
            "negotiated": sum(r["deflate"] for r in replies),
            "accept_s": accept_s,
            "rss_base_mib": baseline["rss"] / 2**20,
            "rss_mib": loaded["rss"] / 2**20,
            "rss_after_broadcast_mib": after["rss"] / 2**20,
            "per_conn_kib": (loaded["rss"] - baseline["rss"]) / max(1, loaded["connections"]) / 1024,
            "delivered": first["received"],
            "broadcast_last_ms": first["last_ms"],
            "broadcast_cpu_ms": first["server_cpu_ms"],
        }
    finally:
        server.stop()
        for child in clients:
            child.stop()


def _fanout_server(s: Settings, loop: str, kind: str, count: int, clients: list[procs.Child], add: Any) -> None:
    """Fan-out and memory with ``count`` idle clients on a fresh server."""
    server = Server(kind, "idle", loop)
    try:
        add(f"fanout_{count}", kind, fanout(server, clients, s, count))
    finally:
        server.stop()


def _echo_server(
    s: Settings, loop: str, kind: str, mode: str, clients: list[procs.Child], add: Any, notes: set[str]
) -> None:
    """Handshake and function echo on /echo, or class echo on /json."""
    if mode == "json" and "echo" not in s.scenarios:
        return
    if mode == "echo" and not {"echo", "handshake"} & set(s.scenarios):
        return
    server = Server(kind, mode, loop)
    if server.note and kind in FRAMEWORK_KINDS:
        notes.add(server.note)
    try:
        if mode == "echo" and "handshake" in s.scenarios:
            add("handshake", kind, handshake(server, clients, s))
        if "echo" in s.scenarios:
            label = "echo_fn" if mode == "echo" else "echo_cls"
            for size in s.echo_sizes:
                add(f"{label}_{size}", kind, echo(server, clients, s, mode, size))
    finally:
        server.stop()


def restart_clients(clients: list[procs.Child]) -> None:
    """Replace every client process in place (after a failed phase)."""
    count = len(clients)
    for child in clients:
        child.stop(timeout=2)
    clients[:] = start_clients(count)


def start_clients(count: int) -> list[procs.Child]:
    """Spawn ``count`` client processes and wait until each is ready."""
    clients = [procs.Child(client_main) for _ in range(count)]
    procs.wait_all(clients, 60)
    return clients
