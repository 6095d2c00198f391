"""Several server processes on one port, and the supervisor that keeps them up.

``wsroute run app:app --workers 4`` starts four *spawned* processes. Each one
imports the app from its import string and listens on the same port with
``SO_REUSEPORT``, so the kernel spreads new connections over them. The
supervisor (this process) does not import the app; it:

* checks the address first (port in use, address not available…) so such
  mistakes are reported once, before any worker starts;
* waits until every worker says it is ready; a worker that fails during its
  first start-up stops everything with that worker's error message;
* restarts a worker that dies later (with a back-off when it keeps dying);
* forwards SIGTERM/SIGINT as SIGTERM to every worker (workers ignore SIGINT,
  so Ctrl-C in a terminal drains once, not twice); a second signal makes
  the workers stop at once (and kills them :data:`FORCE_AFTER` seconds
  later if they have not);
* on SIGHUP restarts the workers (they close connections with 1012);
* kills (SIGKILL) any worker told to stop or restart that is still running
  the drain timeout plus :data:`~wsroute.server.STOP_GRACE` plus
  :data:`KILL_MARGIN` seconds later (a worker whose event loop is blocked
  cannot even run its own stop), and replaces it when it was restarting.

Exit status: 0 when every process exited 0 after the stop; 1 when start-up
failed, a second signal cut the stop short, or a process exited otherwise
(or had to be killed) while stopping. Workers that died and were replaced
earlier do not count.

``--reload`` uses the same supervisor with one process and a file watcher
(:mod:`wsroute.reload`): a change restarts the process; a process that fails
to start waits for the next change instead of stopping the supervisor.

Every worker's log lines start with ``[worker N pid P]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import attrs

from .errors import ServerError, WsrouteError
from .loading import AppSpec
from .logs import configure_logging
from .multiproc import MultiprocessDir
from .reload import Watcher
from .server import STOP_GRACE, ServeConfig, exit_process, explain_os_error, run_config

__all__ = ["Launch", "Supervisor", "child_main", "probe_address"]

logger = logging.getLogger("wsroute.workers")

#: Seconds between a crashing worker's restarts, doubled each time up to the last.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
#: A worker that lived this long before dying is restarted without back-off.
STABLE_AFTER = 10.0
#: Seconds, beyond the drain timeout and STOP_GRACE, before a stopping worker is killed.
KILL_MARGIN = 2.0
#: Seconds after a second signal before workers that did not exit are killed.
FORCE_AFTER = 1.0


@attrs.frozen
class Launch:
    """What a server process needs (picklable: sent to spawned processes)."""

    spec: AppSpec
    config: ServeConfig
    log_level: str = "info"
    log_format: str = "text"


def child_main(launch: Launch, label: str, channel: multiprocessing.connection.Connection) -> None:
    """The body of a worker process: load the app, serve, report to the supervisor.

    Always ends with :func:`~wsroute.server.exit_process`: a process that
    stopped serving must go, even if a thread it started never returns.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Told to stop or restart while still importing the app: nothing to drain, leave quietly.
    # run_config() replaces these handlers with its own as soon as it starts.
    signal.signal(signal.SIGTERM, _leave_before_serving)
    signal.signal(signal.SIGHUP, _leave_before_serving)
    configure_logging(launch.log_level, prefix=f"[{label} pid {os.getpid()}] ", log_format=launch.log_format)
    parent = multiprocessing.parent_process()

    def ready(addresses: list[str]) -> None:
        channel.send(("ready", addresses))

    status = 1
    try:
        app = launch.spec.load()
        run_config(app, launch.config, on_ready=ready, watch_fd=parent.sentinel if parent else None)
        status = 0
    except (WsrouteError, ImportError, ValueError) as exc:
        logger.error("%s", exc)
        with contextlib.suppress(OSError):
            channel.send(("server" if isinstance(exc, ServerError) else "error", str(exc)))
    except BaseException:
        logger.exception("%s crashed", label)
    finally:
        exit_process(status)


def _leave_before_serving(signum: int, frame: Any) -> None:
    logger.info("%s before serving: exiting", signal.Signals(signum).name)
    exit_process(0)


def probe_address(config: ServeConfig) -> ServeConfig:
    """Bind (without listening, without ``SO_REUSEPORT``) to check the address.

    Returns ``config`` with the port the OS chose when it was 0.

    Raises:
        ServerError: the address cannot be used; the message says what to do.
    """
    if config.uds is not None:
        return config

    async def probe() -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, config.host, config.port or 0, start_serving=False)
        port = int(server.sockets[0].getsockname()[1])
        server.close()
        await server.wait_closed()
        return port

    try:
        port = asyncio.run(probe())
    except OSError as exc:
        raise ServerError(explain_os_error(exc, config)) from None
    return attrs.evolve(config, port=port)


@attrs.define
class _Worker:
    number: int
    process: BaseProcess
    channel: multiprocessing.connection.Connection | None
    started: float
    ready: bool = False
    restarting: bool = False
    error: str | None = None
    kill_at: float | None = None  # time.monotonic() after which a stopping worker is killed


class Supervisor:
    """Start ``workers`` processes, keep them running, stop them on a signal.

    Args:
        launch: the app and server settings for each process.
        workers: how many processes.
        reload_dirs: with a value, watch these directories and restart on changes.

    Attributes:
        failure: why the supervisor gave up (a message for the user), or None.
    """

    def __init__(self, launch: Launch, workers: int, *, reload_dirs: Sequence[str] | None = None) -> None:
        self.launch = launch
        self.count = workers
        self.reload = reload_dirs is not None
        self.watcher = Watcher(reload_dirs or ["."]) if reload_dirs is not None else None
        self.label = "server" if self.reload else "worker"
        self.failure: str | None = None
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._pending: dict[int, float] = {}  # worker number -> when to (re)start it
        self._crashes: dict[int, int] = {}
        self._all_ready = False
        self._stopping = False
        self._exit_code = 0
        self._metrics_dir = MultiprocessDir()

    def run(self) -> int:
        """Supervise until stopped; return the exit code (see :attr:`failure` too)."""
        config = probe_address(self.launch.config)
        config = attrs.evolve(config, managed=True, reuse_port=self.count > 1)
        self.launch = attrs.evolve(self.launch, config=config)
        wake_reader, wake_writer = socket.socketpair()
        wake_reader.setblocking(False)
        wake_writer.setblocking(False)
        previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        previous_fd = signal.set_wakeup_fd(wake_writer.fileno())
        self._metrics_dir.create()  # before spawning: workers read it when they import prometheus_client
        try:
            logger.info("supervisor pid %d starting %d %s process(es) on %s", os.getpid(), self.count, self.label,
                        config.where)
            for number in range(1, self.count + 1):
                self._spawn(number)
            if self.watcher is not None:
                self.watcher.start()
            while self._workers or (not self._stopping and (self._pending or self.reload)):
                self._step(wake_reader)
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake_reader.close()
            wake_writer.close()
            if self.watcher is not None:
                self.watcher.stop()
            for worker in self._workers.values():  # only after an unexpected error
                worker.process.kill()
            self._metrics_dir.remove()
        logger.info("supervisor stopped")
        return self._exit_code

    # -- the loop -------------------------------------------------------------

    def _step(self, wake: socket.socket) -> None:
        now = time.monotonic()
        for number, when in list(self._pending.items()):
            if when <= now and not self._stopping:
                del self._pending[number]
                self._spawn(number)
        for worker in self._workers.values():
            if worker.kill_at is not None and now > worker.kill_at:
                logger.error("%s %d pid %s still running after being told to stop: killing it (SIGKILL)",
                             self.label, worker.number, worker.process.pid)
                worker.process.kill()
                worker.kill_at = None
        objects: list[Any] = [wake]
        for worker in self._workers.values():
            objects.append(worker.process.sentinel)
            if worker.channel is not None:
                objects.append(worker.channel)
        if self.watcher is not None:
            objects.append(self.watcher)
        timeout = min([0.5, *(max(0.0, when - now) for when in self._pending.values())])  # kill_at: 0.5 s late at most
        for ready in multiprocessing.connection.wait(objects, timeout):
            if ready is wake:
                self._on_signals(wake)
            elif isinstance(ready, Watcher):
                self._on_changes(ready.take())
            elif isinstance(ready, int):
                self._on_exit(ready)
            elif isinstance(ready, multiprocessing.connection.Connection):
                self._on_message(ready)

    def _on_signals(self, wake: socket.socket) -> None:
        try:
            data = wake.recv(64)
        except BlockingIOError:
            return
        for signum in data:
            if signum == signal.SIGHUP:
                if not self._stopping:
                    logger.info("SIGHUP: restarting the %s processes", self.label)
                    self._restart_all()
            elif signum in (signal.SIGINT, signal.SIGTERM):
                self._stop(signal.Signals(signum).name)

    def _stop(self, why: str) -> None:
        if self._stopping:
            logger.warning("%s again: telling the processes to stop now (exit status 1)", why)
            self._exit_code = 1
            for worker in self._workers.values():
                self._tell(worker, signal.SIGTERM, FORCE_AFTER)
            return
        logger.info("%s: stopping %d %s process(es)", why, len(self._workers), self.label)
        self._stopping = True
        self._pending.clear()
        for worker in self._workers.values():
            self._tell(worker, signal.SIGTERM)

    def _restart_all(self) -> None:
        for worker in self._workers.values():
            worker.restarting = True
            self._tell(worker, signal.SIGHUP)
        if not self._workers:
            for number in range(1, self.count + 1):
                self._pending.setdefault(number, time.monotonic())

    def _on_changes(self, changed: list[str]) -> None:
        if not changed or self._stopping:
            return
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        logger.info("changes detected in %s: reloading", shown)
        self._restart_all()

    def _on_message(self, channel: multiprocessing.connection.Connection) -> None:
        worker = next((w for w in self._workers.values() if w.channel is channel), None)
        if worker is not None:
            self._read(worker)

    def _read(self, worker: _Worker) -> None:
        channel = worker.channel
        if channel is None:
            return
        try:
            kind, payload = channel.recv()
        except (EOFError, OSError):
            channel.close()
            worker.channel = None
            return
        if kind == "ready":
            worker.ready = True
            logger.info("%s %d pid %s ready on %s", self.label, worker.number, worker.process.pid, ", ".join(payload))
            if not self._all_ready and all(w.ready for w in self._workers.values()) and not self._pending:
                self._all_ready = True
                logger.info("all %d %s process(es) ready", self.count, self.label)
        else:
            worker.error = payload
            if kind == "server":  # the address: no use retrying
                self.failure = payload

    def _on_exit(self, sentinel: int) -> None:
        worker = next(w for w in self._workers.values() if w.process.sentinel == sentinel)
        worker.process.join(timeout=1)
        while worker.channel is not None and worker.channel.poll():
            self._read(worker)
        if worker.channel is not None:
            worker.channel.close()
        del self._workers[worker.number]
        self._metrics_dir.process_gone(worker.process.pid)
        code = worker.process.exitcode
        name = f"{self.label} {worker.number} pid {worker.process.pid}"
        # A worker told to stop before it could even set up its handlers (it was
        # just spawned) dies of that SIGTERM: it had nothing to drain, not a failure.
        if self._stopping and code != 0 and not (code == -signal.SIGTERM and not worker.ready):
            self._exit_code = 1
        if self._stopping:
            logger.info("%s exited (%s)", name, _describe_exit(code))
            return
        if worker.restarting:
            self._pending[worker.number] = time.monotonic()
            return
        if not worker.ready:
            if self.failure is not None or (not self._all_ready and not self.reload):
                self.failure = (
                    self.failure or worker.error or f"{name} exited ({_describe_exit(code)}) before it was ready"
                )
                self._stop("start-up failed")
                return
            if self.reload:
                logger.error("%s failed to start; waiting for a change to reload", name)
                return
        lived = time.monotonic() - worker.started
        crashes = 0 if lived > STABLE_AFTER else self._crashes.get(worker.number, 0) + 1
        self._crashes[worker.number] = crashes
        delay = BACKOFF[min(crashes, len(BACKOFF)) - 1] if crashes else 0.0
        logger.warning("%s died (%s); restarting it%s", name, _describe_exit(code),
                       f" in {delay:g} s" if delay else "")
        self._pending[worker.number] = time.monotonic() + delay

    def _tell(self, worker: _Worker, signum: int, within: float | None = None) -> None:
        """Send ``signum`` (stop or restart) and note when to kill the worker if it is still there."""
        if within is None:
            within = self.launch.config.drain_timeout + STOP_GRACE + KILL_MARGIN
        kill_at = time.monotonic() + within
        worker.kill_at = kill_at if worker.kill_at is None else min(worker.kill_at, kill_at)
        _send(worker.process, signum)

    def _spawn(self, number: int) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        label = f"{self.label} {number}" if not self.reload else self.label
        process = self._ctx.Process(
            target=child_main, args=(self.launch, label, writer), name=f"wsroute-{self.label}-{number}"
        )
        process.start()
        writer.close()
        self._workers[number] = _Worker(number, process, reader, time.monotonic())
        logger.debug("started %s %d pid %s", self.label, number, process.pid)


def _ignore(signum: int, frame: Any) -> None:
    """Signals are read from the wake-up socket; the handler only has to exist."""


def _send(process: BaseProcess, signum: int) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
