"""The load-generator process: handshakes, echo round trips, idle receivers.

One client process runs one command at a time from the orchestrator and
replies with its measurements and its own CPU time. Several client processes
run the same command at once; the orchestrator adds their results up.

Every loop stops at whichever comes first, its operation budget or its
deadline, and every network wait has a timeout: a stalled server produces an
error count, never a hung benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing.connection
import time
import urllib.parse
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from benchmarks import light, procs
from benchmarks.apps import TOKEN

Conn = multiprocessing.connection.Connection
NETWORK_ERRORS = (OSError, TimeoutError, WebSocketException)
"""What a loaded server may legitimately cause: counted as errors, never fatal."""
MAX_SAMPLES = 200_000
"""Latency samples kept per process; bounds memory and pipe traffic."""
HEADERS = {"Authorization": TOKEN}
CLIENT_OPTIONS: dict[str, Any] = {
    "additional_headers": HEADERS,
    "compression": None,
    "ping_interval": None,
    "open_timeout": 10,
    "close_timeout": 5,
}


def client_main(conn: Conn) -> None:
    """Entry point of a spawned client process: serve commands until stop."""
    procs.raise_nofile_limit()
    procs.run_in_loop(procs.client_loop_name(), lambda: Client(conn).run())


class Budget:
    """Shared stop condition: ``max_ops`` operations or ``duration`` seconds."""

    def __init__(self, duration: float, max_ops: int) -> None:
        self.end = time.perf_counter() + duration
        self.max_ops = max_ops
        self.ops = 0
        self.errors = 0
        self.latencies: list[float] = []

    def more(self) -> bool:
        """Return True while both the count and the time budget remain."""
        return self.ops < self.max_ops and time.perf_counter() < self.end

    def record(self, started: float) -> None:
        """Count one completed operation that started at ``started``."""
        self.ops += 1
        if len(self.latencies) < MAX_SAMPLES:
            self.latencies.append(time.perf_counter() - started)


class Client:
    """Command loop of one client process (see the module docstring)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.idle: list[light.Receiver] = []
        self.received = 0
        self.last_receipt = 0.0
        self.target = 0
        self.reached = asyncio.Event()

    async def run(self) -> None:
        """Receive commands from the pipe without blocking the loop."""
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[Any] = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: commands.put_nowait(self._recv()))
        self.conn.send({"ready": True})
        while True:
            command = await commands.get()
            if command[0] == "stop":
                break
            handler = getattr(self, "cmd_" + command[0])
            cpu0 = procs.cpu_seconds()
            result = await handler(*command[1:])
            result["cpu"] = procs.cpu_seconds() - cpu0
            self.conn.send(result)
        loop.remove_reader(self.conn.fileno())
        await self.cmd_close_idle()

    def _recv(self) -> Any:
        try:
            return self.conn.recv()
        except EOFError:
            return ("stop",)

    async def cmd_handshake(self, uri: str, concurrency: int, duration: float, max_ops: int) -> dict[str, Any]:
        """Open and close connections, ``concurrency`` at a time."""
        budget = Budget(duration, max_ops)

        async def worker() -> None:
            while budget.more():
                started = time.perf_counter()
                try:
                    ws = await connect(uri, **CLIENT_OPTIONS)
                    await ws.close()
                except NETWORK_ERRORS:  # refused, reset, timeout: count, go on
                    budget.errors += 1
                    continue
                budget.record(started)

        wall = await _timed_gather([worker() for _ in range(concurrency)], duration)
        return {"ops": budget.ops, "errors": budget.errors, "wall": wall, "latencies": budget.latencies}

    async def cmd_echo(self, uri: str, connections: int, message: str, duration: float, max_ops: int) -> dict[str, Any]:
        """Round-trip ``message`` on ``connections`` connections, one in flight each.

        Connections are opened (and warmed with one round trip) before the
        clock starts, so this measures messages only, not handshakes.
        """
        sockets = await _connect_many(uri, connections, 25)
        for ws in sockets:
            await ws.send(message)
            await asyncio.wait_for(ws.recv(), 10)
        cpu0 = procs.cpu_seconds()
        budget = Budget(duration, max_ops)

        async def worker(ws: ClientConnection) -> None:
            try:
                while budget.more():
                    started = time.perf_counter()
                    await ws.send(message)
                    await asyncio.wait_for(ws.recv(), 10)
                    budget.record(started)
            except NETWORK_ERRORS:
                budget.errors += 1

        wall = await _timed_gather([worker(ws) for ws in sockets], duration)
        cpu = procs.cpu_seconds() - cpu0
        await _close_all(sockets)
        errors = budget.errors + connections - len(sockets)
        return {"ops": budget.ops, "errors": errors, "wall": wall, "latencies": budget.latencies, "cpu_measured": cpu}

    async def cmd_idle(self, uri: str, count: int, concurrency: int) -> dict[str, Any]:
        """Open ``count`` light receivers (see :mod:`benchmarks.light`) and count messages."""
        self.received, self.last_receipt, self.target = 0, 0.0, 0
        parsed = urllib.parse.urlsplit(uri)
        host, port, path = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> light.Receiver | None:
            async with semaphore:
                return await light.open_receiver(host, port, path, HEADERS, self._count)

        opened = await asyncio.gather(*(one() for _ in range(count)))
        self.idle = [r for r in opened if r is not None]
        return {"connected": len(self.idle)}

    def _count(self) -> None:
        """Called by a receiver for each data frame: the process-wide tally."""
        self.received += 1
        self.last_receipt = time.monotonic()
        if self.received == self.target:
            self.reached.set()

    async def cmd_expect(self, per_connection: int, timeout: float) -> dict[str, Any]:
        """Wait until every idle connection has received ``per_connection`` messages."""
        self.target = per_connection * len(self.idle)
        if self.received < self.target:
            self.reached.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reached.wait(), timeout)
        return {"received": self.received, "t_last": self.last_receipt, "complete": self.received >= self.target}

    async def cmd_close_idle(self) -> dict[str, Any]:
        """Close every idle receiver cleanly, waiting (bounded) for the server's FIN."""
        for receiver in self.idle:
            receiver.close()
        if self.idle:
            await asyncio.wait([r.closed for r in self.idle], timeout=10)
        for receiver in self.idle:
            if receiver.transport is not None:
                receiver.transport.close()
        self.idle = []
        return {"closed": True}


async def _connect_many(uri: str, count: int, concurrency: int) -> list[ClientConnection]:
    """Open ``count`` connections, at most ``concurrency`` handshakes at a time.

    Bounded concurrency keeps the server's listen backlog (100 by default)
    from overflowing, which would show up as SYN retries of one second.
    """
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> ClientConnection | None:
        async with semaphore:
            try:
                return await connect(uri, **CLIENT_OPTIONS)
            except NETWORK_ERRORS:
                return None

    results = await asyncio.gather(*(one() for _ in range(count)))
    return [ws for ws in results if ws is not None]


async def _close_all(sockets: list[ClientConnection]) -> None:
    if sockets:
        await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in sockets], timeout=10)


async def _timed_gather(coros: list[Any], duration: float) -> float:
    """Run the workers to completion (hard cap: duration + 10 s); return wall time."""
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(c) for c in coros]
    _, pending = await asyncio.wait(tasks, timeout=duration + 10)
    for task in pending:
        task.cancel()
    return time.perf_counter() - started
