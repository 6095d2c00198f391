"""Process plumbing shared by the server and the client processes.

Why separate processes: a load generator that shares an event loop (or a GIL)
with the server it measures cannot tell server cost from client cost. Each
process here measures its own CPU time with :func:`cpu_seconds` so the report
can say who was the limit (a process near 1.0 CPU-second per wall-second was
saturated on this machine).

Children are started with the ``spawn`` method: a forked child would inherit
the parent's event loop and selectors, which is not a state anyone wants to
benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import resource
import time
from collections.abc import Callable
from typing import Any

CTX = multiprocessing.get_context("spawn")


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit and return it.

    Fan-out to 5,000 clients needs 5,000 sockets in the server and as many
    across the client processes; the usual soft limit of 1,024 would fail
    with EMFILE long before that.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


PIN_ENV = "WSROUTE_BENCH_PIN"


def prepare_children(pin: bool) -> None:
    """Set what every spawned child inherits: CPU pinning and a fixed hash seed.

    Children are new interpreters started with this process's environment,
    so the settings travel as environment variables. A fixed
    ``PYTHONHASHSEED`` gives every server process the same dict and set
    layouts, which removes one source of process-to-process variation.
    """
    os.environ[PIN_ENV] = "1" if pin else "0"
    os.environ["PYTHONHASHSEED"] = "0"


def pin(role: str) -> None:
    """Pin this process: the server to CPU 0, clients to the other CPUs.

    On a small machine the scheduler otherwise moves the server between
    cores and onto the core a client is busy on; the round-to-round spread
    that causes is larger than the differences being measured. No-op with
    one CPU, on platforms without affinity, or when pinning is off.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if os.environ.get(PIN_ENV) != "1" or len(cpus) < 2:
        return
    os.sched_setaffinity(0, {cpus[0]} if role == "server" else set(cpus[1:]))


def reply(conn: multiprocessing.connection.Connection, message: Any) -> None:
    """Send ``message`` on a control pipe that the loop also watches.

    uvloop's ``add_reader`` switches the pipe to non-blocking mode; a large
    reply (a client's latency samples) then fails half-written with EAGAIN
    as soon as the pipe buffer is full. Sending in blocking mode waits for
    the orchestrator to read instead.
    """
    os.set_blocking(conn.fileno(), True)
    conn.send(message)


def cpu_seconds() -> float:
    """Return user + system CPU seconds consumed by this process so far."""
    times = os.times()
    return times.user + times.system


def machine_busy_seconds() -> float:
    """Return CPU-seconds all cores have spent not idle since boot (/proc/stat).

    Subtracting the server's and the clients' own CPU from the machine's
    over a phase gives the *background* load: what other programs took
    from this shared 2-core machine while the phase ran.
    """
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    """Return this process's resident set size, read from /proc (Linux only).

    Reading /proc avoids a psutil dependency; VmRSS is what ``ps`` shows.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """Create an event loop of the requested kind (``asyncio`` or ``uvloop``)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name != "asyncio":
        raise ValueError(f"loop must be 'asyncio' or 'uvloop' (got {name!r})")
    return asyncio.new_event_loop()


def client_loop_name() -> str:
    """Return the loop the load generators use: uvloop when it is installed.

    Clients always take the cheaper loop so that, as far as possible, the
    server is the bottleneck being measured; the server's loop is the
    variable under test (``--loop``).
    """
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_in_loop(loop_name: str, main: Callable[[], Any]) -> Any:
    """Run coroutine function ``main`` to completion on a fresh loop."""
    loop = new_loop(loop_name)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main())
    finally:
        loop.close()


class Child:
    """A spawned process with a duplex pipe to the orchestrator.

    Every wait on the pipe has a timeout, and :meth:`stop` kills the process
    if it does not exit in time: a benchmark must never hang the suite.
    """

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self.conn, child_conn = CTX.Pipe()
        self.process = CTX.Process(target=target, args=(child_conn, *args), daemon=True)
        self.process.start()
        child_conn.close()

    def send(self, message: Any) -> None:
        """Send one command to the child."""
        self.conn.send(message)

    def recv(self, timeout: float) -> Any:
        """Receive one reply, raising TimeoutError after ``timeout`` seconds."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f"child {self.process.name} silent for {timeout:.0f}s")
        try:
            return self.conn.recv()
        except EOFError:
            raise EOFError(f"child {self.process.name} exited (code {self.process.exitcode})") from None

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the child to exit, then kill it if it is still alive."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(("stop",))
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()


def wait_all(children: list[Child], timeout: float) -> list[Any]:
    """Receive one reply from each child, sharing one overall deadline."""
    end = time.monotonic() + timeout
    return [child.recv(max(0.1, end - time.monotonic())) for child in children]
