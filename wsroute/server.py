"""Running an app until it is told to stop, and stopping it gracefully.

``app.run()`` and ``wsroute run`` end here. On SIGINT or SIGTERM the server
stops accepting, ``app.shutting_down`` turns true (readiness answers 503),
open connections are closed with 1001 ("going away") and handlers still
running after the drain timeout are cancelled; the process exits 0. With
``keep_connections=True`` clients may leave by themselves until the drain
timeout, then the rest are closed with 1012 ("service restart"). A second
signal stops at once.

A process managed by a supervisor (``--workers``, ``--reload``) ignores
SIGINT (the supervisor forwards SIGTERM), treats SIGHUP as "restart" (close
with 1012) and stops when its parent dies.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ServerError
from .lag import LagMonitor

if TYPE_CHECKING:
    from websockets.asyncio.server import Server

    from .app import App
    from .serving import Serving

__all__ = [
    "LOOPS",
    "ServeConfig",
    "configure_logging",
    "drain",
    "explain_os_error",
    "loop_factory",
    "run",
    "run_config",
    "serve_until_stopped",
]

logger = logging.getLogger("wsroute.server")

LOOPS = ("auto", "asyncio", "uvloop")
GOING_AWAY = 1001
SERVICE_RESTART = 1012
#: Seconds handlers get to finish after their connection was closed at the
#: drain timeout, before they are cancelled (``keep_connections``) or after
#: they were cancelled (both modes).
GRACE = 1.0

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
    """

    host: str | None = "127.0.0.1"
    port: int | None = 8765
    uds: str | None = None
    drain_timeout: float = 10.0
    keep_connections: bool = False
    loop: str = "auto"
    debug: bool = False
    lag_threshold: float = 0.1
    reuse_port: bool = False
    managed: bool = False

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
    drain_timeout: float = 10.0,
    keep_connections: bool = False,
    uds: str | None = None,
    loop: str = "auto",
    debug: bool = False,
    **options: Any,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then drain (blocking).

    Raises:
        ServerError: the server could not listen (the message says why and what to do).
    """
    config = ServeConfig(
        host=host, port=port, uds=uds, drain_timeout=drain_timeout,
        keep_connections=keep_connections, loop=loop, debug=debug,
    )
    run_config(app, config, **options)


def run_config(
    app: App,
    config: ServeConfig,
    *,
    on_ready: ReadyCallback | None = None,
    watch_fd: int | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` as ``config`` says until stopped (blocking).

    Args:
        on_ready: called with the listening addresses once the server accepts.
        watch_fd: a file descriptor that becomes readable when the process
            should stop (a supervisor's ``parent_process().sentinel``).
        **options: websockets ``serve()`` options.
    """
    factory = loop_factory(config.loop)
    coro = serve_until_stopped(app, config, on_ready=on_ready, watch_fd=watch_fd, **options)
    with asyncio.Runner(debug=config.debug or None, loop_factory=factory) as runner:
        runner.run(coro)


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


class _Stop:
    """The stop request: which close code to use; a second request exits at once."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.code = GOING_AWAY

    def request(self, why: str, code: int = GOING_AWAY) -> None:
        if self.event.is_set():
            logger.warning("%s again: stopping now without draining", why)
            logging.shutdown()
            os._exit(1)
        logger.info("%s: stopping, draining connections", why)
        self.code = code
        self.event.set()


async def serve_until_stopped(
    app: App,
    config: ServeConfig | str | None = None,
    port: int | None = None,
    *,
    drain_timeout: float | None = None,
    on_ready: ReadyCallback | None = None,
    watch_fd: int | None = None,
    **options: Any,
) -> None:
    """Serve until a stop signal, then drain.

    ``config`` is a :class:`ServeConfig`; ``serve_until_stopped(app, host,
    port, drain_timeout=...)`` is accepted too.

    Raises:
        ServerError: the server could not listen.
    """
    if not isinstance(config, ServeConfig):
        config = ServeConfig(host=config, port=port, drain_timeout=10.0 if drain_timeout is None else drain_timeout)
    elif drain_timeout is not None:
        config = attrs.evolve(config, drain_timeout=drain_timeout)
    loop = asyncio.get_running_loop()
    monitor = LagMonitor(loop, config.lag_threshold) if config.debug else None
    if monitor is not None:
        monitor.start()
    try:
        await _serve(app, config, loop, on_ready, watch_fd, options)
    finally:
        if monitor is not None:
            monitor.stop()


async def _serve(
    app: App,
    config: ServeConfig,
    loop: asyncio.AbstractEventLoop,
    on_ready: ReadyCallback | None,
    watch_fd: int | None,
    options: dict[str, Any],
) -> None:
    if config.uds is not None:
        serving = app.serve(None, None, unix=True, path=config.uds, **options)
    else:
        if config.reuse_port:
            options = {**options, "reuse_port": True}
        serving = app.serve(config.host, config.port, **options)
    try:
        server = await serving.start()
    except OSError as exc:
        raise ServerError(explain_os_error(exc, config)) from None
    addresses = [_format_address(s.getsockname()) for s in server.sockets]
    logger.info("wsroute serving on %s (loop: %s)", ", ".join(addresses), _loop_name(loop))
    stop = _Stop()
    handled = [signal.SIGTERM]
    if config.managed:
        handled.append(signal.SIGHUP)
        loop.add_signal_handler(signal.SIGHUP, stop.request, "SIGHUP (restart)", SERVICE_RESTART)
    else:
        handled.append(signal.SIGINT)
        loop.add_signal_handler(signal.SIGINT, stop.request, "SIGINT")
    loop.add_signal_handler(signal.SIGTERM, stop.request, "SIGTERM")
    if watch_fd is not None:
        loop.add_reader(watch_fd, _parent_gone, loop, watch_fd, stop)
    try:
        if on_ready is not None:
            on_ready(addresses)
        await stop.event.wait()
        started = loop.time()
        await drain(serving, config.drain_timeout, stop.code, keep_connections=config.keep_connections)
        logger.info("stopped in %.2f s", loop.time() - started)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        if watch_fd is not None:
            loop.remove_reader(watch_fd)


def _parent_gone(loop: asyncio.AbstractEventLoop, fd: int, stop: _Stop) -> None:
    loop.remove_reader(fd)
    if not stop.event.is_set():
        stop.request("supervisor exited")


async def drain(serving: Serving, timeout: float, code: int = GOING_AWAY, *, keep_connections: bool = False) -> None:
    """Stop accepting, close connections, cancel stragglers, shut the app down.

    Args:
        timeout: seconds connections get before they are forced.
        code: the close code (1001 on stop, 1012 on restart).
        keep_connections: close nothing until ``timeout``; then close the
            remaining connections with 1012.
    """
    app = serving.app
    app.shutting_down = True
    server = serving.server
    try:
        if server is not None:
            await _drain_server(server, timeout, code, keep_connections)
    finally:
        await app.shutdown()


async def _drain_server(server: Server, timeout: float, code: int, keep_connections: bool) -> None:
    server.close(close_connections=not keep_connections, code=code)
    if await _closed_within(server, timeout):
        return
    if keep_connections:
        remaining = list(server.connections)
        logger.info("drain timeout (%gs): closing %d connection(s) with 1012", timeout, len(remaining))
        closing = [asyncio.ensure_future(conn.close(SERVICE_RESTART, "server restarting")) for conn in remaining]
        if closing:
            await asyncio.wait(closing, timeout=GRACE)
        if await _closed_within(server, GRACE):
            return
    running = [task for task in server.handler_tasks if not task.done()]
    names = sorted({task.get_name().removeprefix("wsroute ") for task in running})
    logger.warning(
        "drain timeout (%gs): cancelling %d handler(s) still running: %s", timeout, len(running), ", ".join(names)
    )
    for conn in list(server.all_connections):
        conn.transport.abort()
    for task in running:
        task.cancel()
    if not await _closed_within(server, GRACE):
        logger.error("handlers did not finish %gs after being cancelled; giving up on them", GRACE)


async def _closed_within(server: Server, timeout: float) -> bool:
    try:
        await asyncio.wait_for(server.wait_closed(), timeout)
    except TimeoutError:
        return False
    return True


def explain_os_error(exc: OSError, config: ServeConfig | str | None, port: int | None = None) -> str:
    """Turn a listening error into a sentence that says what to do.

    ``config`` is a :class:`ServeConfig`, or the host (then pass ``port``).
    """
    if not isinstance(config, ServeConfig):
        config = ServeConfig(host=config, port=port)
    where = config.where
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: unknown host {config.host!r} ({exc.strerror or exc}); check --host"
    if exc.errno == errno.EADDRINUSE:
        if config.uds is not None:
            return f"cannot listen on {where}: address already in use; is another server using this socket?"
        return f"cannot listen on {where}: address already in use; stop the other server or pass another --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: address not available on this machine [Errno 99] (with 'localhost' "
            "or '::1' this usually means IPv6 is disabled); pass --host 0.0.0.0 or an IPv4 address such as 127.0.0.1"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        if config.uds is not None:
            return f"cannot listen on {where}: permission denied; pick a socket path in a directory you may write to"
        return (
            f"cannot listen on {where}: permission denied; ports below 1024 need privileges, "
            "pass --port 1024 or higher (and a reverse proxy on the low port)"
        )
    return f"cannot listen on {where}: {exc.strerror or exc}"


def configure_logging(level: str = "info", prefix: str = "") -> None:
    """Log to stderr as ``time LEVEL [prefix] logger: message``; for the CLI and workers.

    websockets' per-connection INFO messages are shown only at ``debug``.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r}: expected debug, info, warning, error or critical")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("websockets").setLevel(max(numeric, logging.WARNING) if numeric > logging.DEBUG else numeric)


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _format_address(address: Any) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"unix:{address}" if address else "unix"
