"""Running one server process until it is told to stop, and exiting in bounded time.

``app.run()``, ``wsroute run`` and every worker process of ``--workers`` /
``--reload`` call :func:`run_config`. On SIGINT or SIGTERM it stops the app
through the one stop path, :meth:`wsroute.serving.Serving.stop` (close with
1001, cancel handlers after the drain timeout). Then it cancels what is left
on the event loop and gives threads :data:`EXIT_GRACE` seconds; a thread
still running then (a handler's ``asyncio.to_thread(time.sleep, 3600)``)
would keep Python from ever exiting, so it is logged by name and route and
the process leaves with ``os._exit()`` after flushing the logs. A stop
therefore takes at most the drain timeout plus :data:`STOP_GRACE` seconds.

Exit statuses: 0 after a stop by signal, even when handlers were cancelled
or threads abandoned (both are logged as warnings); 1 when a second signal
cuts the drain short, or when start-up fails.

A second SIGINT/SIGTERM exits at once with status 1. It is handled in the
Python signal handler itself, not on the event loop, so it works even while
a handler blocks the loop.

A process managed by a supervisor (``--workers``, ``--reload``) ignores
SIGINT (the supervisor forwards SIGTERM), treats SIGHUP as "restart" (close
with 1012) and stops when its parent dies.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
from websockets.frames import CloseCode

from .descriptors import raise_nofile_limit
from .errors import ServerError
from .lag import LagMonitor
from .leftovers import TrackedExecutor, wind_down
from .logs import ensure_logging, flush_logs
from .serving import DRAIN_TIMEOUT
from .serving import STOP_GRACE as SERVING_GRACE

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "EXIT_GRACE",
    "LOOPS",
    "STOP_GRACE",
    "ServeConfig",
    "StopRequest",
    "exit_process",
    "explain_os_error",
    "loop_factory",
    "run",
    "run_config",
    "serve_until_stopped",
]

logger = logging.getLogger("wsroute.server")

LOOPS = ("auto", "asyncio", "uvloop")
#: Seconds tasks and threads left after the server stopped get before they are abandoned.
EXIT_GRACE = 1.0
#: The most seconds a process takes to exit beyond its drain timeout.
STOP_GRACE = SERVING_GRACE + EXIT_GRACE

ReadyCallback = Callable[[list[str]], None]


@attrs.frozen
class ServeConfig:
    """How to listen and how to stop; picklable, so workers receive it as is.

    Attributes:
        host, port: where to listen (ignored when ``uds`` is set).
        uds: a Unix domain socket path instead of host and port.
        drain_timeout: seconds connections get to close before handlers are cancelled.
        keep_connections: on stop, let clients leave by themselves until the
            drain timeout, then close the rest with 1012.
        loop: ``"auto"`` (uvloop when installed), ``"asyncio"`` or ``"uvloop"``.
        debug: asyncio debug mode and the event-loop lag monitor.
        lag_threshold: seconds of blocked event loop that ``debug`` warns about.
        reuse_port: set ``SO_REUSEPORT`` so several processes share the port.
        managed: run under a supervisor (see the module docstring).
        cli: started by ``wsroute run``: error messages name its options
            (``--port``) rather than ``app.run()``'s arguments.
    """

    host: str | None = "127.0.0.1"
    port: int | None = 8765
    uds: str | None = None
    drain_timeout: float = DRAIN_TIMEOUT
    keep_connections: bool = False
    loop: str = "auto"
    debug: bool = False
    lag_threshold: float = 0.1
    reuse_port: bool = False
    managed: bool = False
    cli: bool = False

    @property
    def where(self) -> str:
        """The address as logs and errors show it."""
        if self.uds is not None:
            return f"unix:{self.uds}"
        host = self.host or "*"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def run(
    app: App,
    host: str | None = "127.0.0.1",
    port: int | None = 8765,
    *,
    drain_timeout: float = DRAIN_TIMEOUT,
    keep_connections: bool = False,
    uds: str | None = None,
    loop: str = "auto",
    debug: bool = False,
    **options: Any,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then drain (blocking); what ``app.run()`` does.

    Logs to stderr at INFO unless logging is configured already, so the
    line saying where the app serves is seen.

    Raises:
        ServerError: the server could not listen (the message says why and what to do).
    """
    config = ServeConfig(
        host=host, port=port, uds=uds, drain_timeout=drain_timeout,
        keep_connections=keep_connections, loop=loop, debug=debug,
    )
    ensure_logging()
    run_config(app, config, **options)


def run_config(
    app: App,
    config: ServeConfig,
    *,
    on_ready: ReadyCallback | None = None,
    watch_fd: int | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` as ``config`` says until stopped (blocking); see the module docstring.

    Returns once the server stopped and nothing it started still runs. When
    threads it started are still running :data:`EXIT_GRACE` seconds after
    the stop, they are logged and the process exits with ``os._exit()``
    (status 0, or 1 after a failure): Python could not exit otherwise.

    Args:
        on_ready: called with the listening addresses once the server accepts.
        watch_fd: a file descriptor that becomes readable when the process
            should stop (a supervisor's ``parent_process().sentinel``).
        **options: websockets ``serve()`` options.

    Raises:
        ServerError: the server could not listen.
    """
    raise_nofile_limit()
    factory = loop_factory(config.loop)
    loop = factory() if factory is not None else asyncio.new_event_loop()
    if config.debug:
        loop.set_debug(True)
    executor = TrackedExecutor()
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    threads_before = threading.enumerate()
    stop = StopRequest(loop)
    stop.install(config.managed)
    failure: BaseException | None = None
    try:
        try:
            serving = serve_until_stopped(app, config, stop, on_ready=on_ready, watch_fd=watch_fd, **options)
            loop.run_until_complete(serving)
        except BaseException as exc:
            failure = exc
        left = loop.run_until_complete(wind_down(executor, threads_before, EXIT_GRACE))
    finally:
        stop.uninstall()
        asyncio.set_event_loop(None)
        loop.close()
    if left.tasks:
        logger.warning("abandoned %d task(s) that ignored cancellation: %s", len(left.tasks), ", ".join(left.tasks))
    if stop.started is not None:
        logger.info("stopped in %.2f s", time.monotonic() - stop.started)
    if left.threads:
        logger.warning(
            "exiting without waiting for %d thread(s) still running: %s", len(left.threads), ", ".join(left.threads)
        )
        if failure is not None and not isinstance(failure, KeyboardInterrupt | SystemExit):
            logger.error("%s", failure)
        exit_process(0 if failure is None else 1)
    if failure is not None:
        raise failure


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory for ``--loop``; ``None`` is asyncio's default.

    Raises:
        ImportError: ``"uvloop"`` asked for but not installed.
        ValueError: an unknown loop name.
    """
    if name not in LOOPS:
        raise ValueError(f"loop {name!r}: expected one of {', '.join(LOOPS)}")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "auto":
            return None
        raise ImportError("--loop uvloop needs uvloop: pip install 'wsroute[uvloop]'") from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def exit_process(status: int) -> NoReturn:
    """Flush the logs and leave now with ``status``, without waiting for threads (``os._exit``)."""
    flush_logs()
    os._exit(status)


class StopRequest:
    """Why the server stops and with which close code; a second request exits at once.

    Signals are handled with ``signal.signal`` rather than the event loop's
    ``add_signal_handler``: Python runs the handler between two bytecodes of
    the main thread, so a second signal ends the process even while a
    handler blocks the event loop (``time.sleep()`` in a coroutine).

    Attributes:
        event: set when the stop should start.
        code: the close code for open connections (1001, or 1012 on SIGHUP).
        started: ``time.monotonic()`` of the first request, or None.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.code: int = CloseCode.GOING_AWAY
        self.started: float | None = None
        self._restart_only = False
        self._previous: dict[int, Any] = {}

    def install(self, managed: bool) -> None:
        """Handle SIGTERM, and SIGINT (or SIGHUP as "restart" when ``managed``); main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return
        handled: dict[signal.Signals, tuple[str, int]] = {signal.SIGTERM: ("SIGTERM", CloseCode.GOING_AWAY)}
        if managed:
            handled[signal.SIGHUP] = ("SIGHUP (restart)", CloseCode.SERVICE_RESTART)
        else:
            handled[signal.SIGINT] = ("SIGINT", CloseCode.GOING_AWAY)
        for signum, (why, code) in handled.items():
            self._previous[signum] = signal.signal(signum, functools.partial(self._on_signal, why, code))

    def uninstall(self) -> None:
        """Put back the signal handlers found by :meth:`install`."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def request(self, why: str, code: int = CloseCode.GOING_AWAY) -> None:
        """Start the stop (from the event loop's thread); a second request exits with status 1."""
        if self._again(why, code):
            return
        self._start(why, code)

    def _on_signal(self, why: str, code: int, signum: int, frame: Any) -> None:
        if self._again(why, code):
            return
        self.loop.call_soon_threadsafe(self._start, why, code)

    def _again(self, why: str, code: int) -> bool:
        """Note a request; True when a stop is under way already (a second one exits the process).

        A stop after a restart (SIGTERM while draining for SIGHUP: the
        supervisor stopping during a reload) is not a second request: the
        drain goes on and the exit status stays 0.
        """
        if self.started is None:
            self.started = time.monotonic()
            self._restart_only = code == CloseCode.SERVICE_RESTART
            return False
        if self._restart_only and code != CloseCode.SERVICE_RESTART:
            self._restart_only = False
            self.loop.call_soon_threadsafe(logger.info, "%s: already stopping for a restart; draining on", why)
            return True
        self._exit_now(why)

    def _start(self, why: str, code: int) -> None:
        logger.info("%s: stopping, draining connections", why)
        self.code = code
        self.event.set()

    def _exit_now(self, why: str) -> NoReturn:
        logger.warning("%s again: stopping now without draining (exit status 1)", why)
        exit_process(1)


async def serve_until_stopped(
    app: App,
    config: ServeConfig,
    stop: StopRequest,
    *,
    on_ready: ReadyCallback | None = None,
    watch_fd: int | None = None,
    **options: Any,
) -> None:
    """Serve until ``stop`` is requested, then stop through ``Serving.stop()``.

    Raises:
        ServerError: the server could not listen.
    """
    loop = asyncio.get_running_loop()
    monitor = LagMonitor(loop, config.lag_threshold) if config.debug else None
    if monitor is not None:
        monitor.start()
    if config.uds is not None:
        serving = app.serve(None, None, unix=True, path=config.uds, **options)
    else:
        serving = app.serve(config.host, config.port, **({"reuse_port": True} if config.reuse_port else {}), **options)
    try:
        try:
            server = await serving.start()
        except OSError as exc:
            raise ServerError(explain_os_error(exc, config)) from None
        addresses = [_format_address(s.getsockname()) for s in server.sockets]
        logger.info("wsroute serving on %s (loop: %s)", ", ".join(addresses), _loop_name(loop))
        logger.info("max_connections %d (past it: 503); see docs/security.md", app.stats().max_connections)
        if watch_fd is not None:
            loop.add_reader(watch_fd, _parent_gone, loop, watch_fd, stop)
        try:
            if on_ready is not None:
                on_ready(addresses)
            await stop.event.wait()
            await serving.stop(stop.code, timeout=config.drain_timeout, keep_connections=config.keep_connections)
        finally:
            if watch_fd is not None:
                loop.remove_reader(watch_fd)
    finally:
        if monitor is not None:
            monitor.stop()


def _parent_gone(loop: asyncio.AbstractEventLoop, fd: int, stop: StopRequest) -> None:
    loop.remove_reader(fd)
    if stop.started is None:
        stop.request("supervisor exited")


#: How to say "change this" for ``wsroute run`` (True) and ``app.run()`` (False).
_HINTS = {
    True: {
        "port": "pass another --port",
        "host": "check --host",
        "ipv4": "pass --host 0.0.0.0 or an IPv4 address such as 127.0.0.1",
        "low": "pass --port 1024 or higher",
    },
    False: {
        "port": "pass another port to app.run()",
        "host": "check the host passed to app.run()",
        "ipv4": "pass the host 0.0.0.0 or an IPv4 address such as 127.0.0.1 to app.run()",
        "low": "pass a port of 1024 or higher to app.run()",
    },
}


def explain_os_error(exc: OSError, config: ServeConfig) -> str:
    """Turn a listening error into a sentence that says what to do.

    The advice names ``wsroute run``'s options when ``config.cli`` is true,
    ``app.run()``'s arguments otherwise.
    """
    where = config.where
    hint = _HINTS[config.cli]
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: unknown host {config.host!r} ({exc.strerror or exc}); {hint['host']}"
    if exc.errno == errno.EADDRINUSE:
        if config.uds is not None:
            return f"cannot listen on {where}: address already in use; is another server using this socket?"
        return f"cannot listen on {where}: address already in use; stop the other server or {hint['port']}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: address not available on this machine [Errno 99] (with 'localhost' "
            f"or '::1' this usually means IPv6 is disabled); {hint['ipv4']}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        if config.uds is not None:
            return f"cannot listen on {where}: permission denied; pick a socket path in a directory you may write to"
        return (
            f"cannot listen on {where}: permission denied; ports below 1024 need privileges, "
            f"{hint['low']} (and a reverse proxy on the low port)"
        )
    return f"cannot listen on {where}: {exc.strerror or exc}"


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _format_address(address: Any) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"unix:{address}" if address else "unix"
