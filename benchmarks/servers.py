"""The server process: one server of one kind, driven over a control pipe.

The orchestrator never talks to the server under test through its sockets
except for the load itself; control (stats, broadcast, stop) goes over a
``multiprocessing`` pipe watched with ``loop.add_reader``, so no extra route,
task or thread exists inside the server being measured.

Commands (tuples) and replies:

- ``("stats", collect)`` → ``{"cpu": s, "rss": bytes, "connections": n}``
  (``collect``: run ``gc.collect()`` first, so RSS is not inflated by garbage)
- ``("broadcast", count, size)`` → ``{"t0": monotonic, "t1": ..., "cpu": s}``
  (``time.monotonic`` is CLOCK_MONOTONIC, shared by every process on Linux,
  so the clients' receive times are comparable with ``t0``)
- ``("stop",)`` → the process closes the server and exits.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import inspect
import multiprocessing.connection
import time
from collections.abc import Callable
from typing import Any

from benchmarks import procs
from benchmarks.apps import Running, start

Conn = multiprocessing.connection.Connection
_TASKS: set[asyncio.Future[None]] = set()


def server_main(conn: Conn, kind: str, mode: str, loop: str, profile: str, deflate: bool = False) -> None:
    """Entry point of the spawned server process.

    Args:
        conn: the control pipe.
        kind: ``raw``, ``werkzeug``, ``wsroute`` or a peer (:mod:`benchmarks.peers`).
        mode: the endpoint the load will use (``echo``, ``json``, ``idle``).
        loop: ``asyncio`` or ``uvloop`` (daphne always runs its own asyncio loop).
        profile: a path to write cProfile stats to, or ``""`` for none.
        deflate: serve with the kind's default permessage-deflate.
    """
    procs.raise_nofile_limit()
    procs.pin("server")
    profiler = cProfile.Profile() if profile else None
    try:
        if kind == "channels-daphne":
            _serve_daphne(conn)
        else:
            procs.run_in_loop(loop, lambda: _serve(conn, kind, mode, profiler, deflate))
    finally:
        if profiler is not None:
            profiler.dump_stats(profile)
        conn.close()


def _serve_daphne(conn: Conn) -> None:
    """Run daphne's reactor; the control pipe is watched by the loop under it."""
    import daphne.server  # noqa: F401  (first: it installs Twisted's asyncio reactor)
    from twisted.internet import reactor

    from benchmarks.peers import run_daphne

    def announce(running: Running, loop: asyncio.AbstractEventLoop) -> None:
        def stop() -> None:
            loop.remove_reader(conn.fileno())
            if reactor.running:  # type: ignore[attr-defined]
                reactor.stop()  # type: ignore[attr-defined]

        loop.add_reader(conn.fileno(), _on_command, conn, running, stop)
        gc.collect()
        procs.reply(conn, {"port": running.port, "note": running.note})

    run_daphne(announce)


async def _serve(conn: Conn, kind: str, mode: str, profiler: Any, deflate: bool) -> None:
    closable, running = await start(kind, "/" + mode, deflate)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), _on_command, conn, running, stopped.set)
    gc.collect()
    procs.reply(conn, {"port": running.port, "note": running.note})
    if profiler is not None:
        profiler.enable()
    try:
        await stopped.wait()
    finally:
        if profiler is not None:
            profiler.disable()
        loop.remove_reader(conn.fileno())
        await _close(closable)
        await _cancel_leftovers()


async def _cancel_leftovers() -> None:
    """Cancel tasks a framework leaves behind on shutdown (python-socketio's
    pingers, say), so the loop closes without "Task was destroyed" noise."""
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=5)


async def _close(closable: Any) -> None:
    """Close a websockets Server or an async context manager, bounded in time."""
    try:
        if hasattr(closable, "__aexit__"):
            await asyncio.wait_for(closable.__aexit__(None, None, None), 5)
        else:
            closable.close()
            await asyncio.wait_for(closable.wait_closed(), 5)
    except (TimeoutError, OSError):
        pass


def _on_command(conn: Conn, running: Running, stop: Callable[[], None]) -> None:
    """Handle one control command; called by the loop when the pipe is readable."""
    try:
        command = conn.recv()
    except EOFError:
        stop()
        return
    name = command[0]
    if name == "stop":
        stop()
    elif name == "stats":
        cpu = procs.cpu_seconds()
        if len(command) > 1 and command[1]:  # only for memory: a full collection is not load
            gc.collect()
        procs.reply(conn, {"cpu": cpu, "rss": procs.rss_bytes(), "connections": running.connections()})
    elif name == "broadcast":
        task = asyncio.ensure_future(_broadcast(conn, running, command[1], command[2]))
        _TASKS.add(task)  # the loop only keeps weak references to tasks
        task.add_done_callback(_TASKS.discard)


async def _broadcast(conn: Conn, running: Running, count: int, size: int) -> None:
    """Broadcast ``count`` messages of about ``size`` bytes, back to back.

    Each message starts with its sequence number so clients can tell them
    apart; the padding makes every kind send exactly the same bytes.
    """
    cpu0 = procs.cpu_seconds()
    t0 = time.monotonic()
    for seq in range(count):
        message = f"{seq:08d}".ljust(size, "x")
        result = running.broadcast(message)
        if inspect.isawaitable(result):
            await result
    t1 = time.monotonic()
    procs.reply(conn, {"t0": t0, "t1": t1, "cpu": procs.cpu_seconds() - cpu0})
