"""The load-generator process: handshakes, echo round trips, idle receivers.

One client process runs one command at a time from the orchestrator and
replies with its measurements and its own CPU time. Several client processes
run the same command at once; the orchestrator adds their results up. All
connections use the minimal client of :mod:`benchmarks.light`, so that the
server, not the load generator, is what runs out of CPU first.

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

from benchmarks import light, procs
from benchmarks.apps import TOKEN

Conn = multiprocessing.connection.Connection
MAX_SAMPLES = 200_000
"""Latency samples kept per process; bounds memory and pipe traffic."""
HEADERS = {"Authorization": TOKEN}
"""Sent by every client to every server kind, so client work is identical."""
NETWORK_ERRORS = (OSError, TimeoutError)
"""What a loaded server may legitimately cause: counted as errors, never fatal."""


def client_main(conn: Conn) -> None:
    """Entry point of a spawned client process: serve commands until stop."""
    procs.raise_nofile_limit()
    procs.pin("clients")
    procs.run_in_loop(procs.client_loop_name(), lambda: Client(conn).run())


def target(uri: str) -> tuple[str, int, str]:
    """Split ``ws://host:port/path`` into what :func:`light.open_receiver` takes."""
    parsed = urllib.parse.urlsplit(uri)
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    return parsed.hostname or "127.0.0.1", parsed.port or 80, path


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

    def result(self, wall: float) -> dict[str, Any]:
        """Return the phase's measurements for the orchestrator."""
        return {"ops": self.ops, "errors": self.errors, "wall": wall, "latencies": self.latencies}


def _ignore() -> None:
    """Frame callback of connections that only wait for replies."""


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
        procs.reply(self.conn, {"ready": True})
        while True:
            command = await commands.get()
            if command[0] == "stop":
                break
            handler = getattr(self, "cmd_" + command[0])
            cpu0 = procs.cpu_seconds()
            result = await handler(*command[1:])
            result["cpu"] = procs.cpu_seconds() - cpu0
            procs.reply(self.conn, result)
        loop.remove_reader(self.conn.fileno())
        await self.cmd_close_idle()

    def _recv(self) -> Any:
        try:
            return self.conn.recv()
        except EOFError:
            return ("stop",)

    async def cmd_handshake(
        self, uri: str, concurrency: int, duration: float, max_ops: int, protocol: str = "ws"
    ) -> dict[str, Any]:
        """Open a connection, close it (closing handshake and TCP), repeat; ``concurrency`` at a time.

        For Socket.IO (``protocol="sio"``) a connection counts as open once
        its namespace is joined, which is when a Socket.IO app can use it.
        """
        budget = Budget(duration, max_ops)
        host, port, path = target(uri)

        async def worker() -> None:
            while budget.more():
                started = time.perf_counter()
                receiver = await light.open_receiver(host, port, path, HEADERS, _ignore, protocol_name=protocol)
                if receiver is None or not await _close(receiver):
                    budget.errors += 1
                    continue
                budget.record(started)

        wall = await _timed_gather([worker() for _ in range(concurrency)], duration)
        return budget.result(wall)

    async def cmd_echo(
        self, uri: str, connections: int, message: str, duration: float, max_ops: int, protocol: str = "ws"
    ) -> dict[str, Any]:
        """Round-trip ``message`` on ``connections`` connections, one in flight each.

        Connections are opened (and warmed with one round trip) before the
        clock starts, so this measures messages only, not handshakes.
        """
        frame = light.client_frame(message.encode())
        receivers = await _open_many(uri, connections, 25, _ignore, protocol)
        for receiver in list(receivers):
            try:
                await asyncio.wait_for(receiver.round_trip(frame), 10)
            except NETWORK_ERRORS:
                receivers.remove(receiver)
        budget = Budget(duration, max_ops)

        async def worker(receiver: light.Receiver) -> None:
            try:
                while budget.more():
                    started = time.perf_counter()
                    await asyncio.wait_for(receiver.round_trip(frame), 10)
                    budget.record(started)
            except NETWORK_ERRORS:
                budget.errors += 1

        wall = await _timed_gather([worker(r) for r in receivers], duration)
        await asyncio.gather(*(_close(r) for r in receivers))
        budget.errors += connections - len(receivers)
        return budget.result(wall)

    async def cmd_idle(
        self, uri: str, count: int, concurrency: int, protocol: str = "ws", deflate: bool = False
    ) -> dict[str, Any]:
        """Open ``count`` receivers that count every data frame they get.

        Returns how many connected, how many of them negotiated
        permessage-deflate, and the seconds it took.
        """
        self.received, self.last_receipt, self.target = 0, 0.0, 0
        started = time.perf_counter()
        self.idle += await _open_many(uri, count, concurrency, self._count, protocol, deflate)
        return {
            "connected": len(self.idle),
            "deflate": sum(r.deflate for r in self.idle),
            "seconds": time.perf_counter() - started,
        }

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
        """Close every idle receiver cleanly (bounded in time)."""
        await asyncio.gather(*(_close(r) for r in self.idle))
        self.idle = []
        return {"closed": True}


async def _open_many(
    uri: str, count: int, concurrency: int, on_message: Any, protocol: str = "ws", deflate: bool = False
) -> list[light.Receiver]:
    """Open ``count`` connections, at most ``concurrency`` handshakes at a time.

    Bounded concurrency keeps the server's listen backlog (100 by default)
    from overflowing, which would show up as SYN retries of one second.
    """
    host, port, path = target(uri)
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> light.Receiver | None:
        async with semaphore:
            return await light.open_receiver(
                host, port, path, HEADERS, on_message, protocol_name=protocol, deflate=deflate
            )

    opened = await asyncio.gather(*(one() for _ in range(count)))
    return [r for r in opened if r is not None]


async def _close(receiver: light.Receiver, timeout: float = 10) -> bool:
    """Run the closing handshake and wait for the server's FIN; False on timeout."""
    receiver.close()
    try:
        await asyncio.wait_for(asyncio.shield(receiver.closed), timeout)
    except TimeoutError:
        if receiver.transport is not None:
            receiver.transport.close()
        return False
    return True


async def _timed_gather(coros: list[Any], duration: float) -> float:
    """Run the workers to completion (hard cap: duration + 10 s); return wall time."""
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(c) for c in coros]
    _, pending = await asyncio.wait(tasks, timeout=duration + 10)
    for task in pending:
        task.cancel()
    return time.perf_counter() - started
