"""Running an app until it is told to stop, and stopping it gracefully.

``app.run()`` and ``wsroute run`` end here. On SIGINT or SIGTERM the server
stops accepting, readiness turns 503, open connections are closed with 1001
("going away") and handlers still running after the drain timeout are
cancelled. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from typing import TYPE_CHECKING, Any

from .errors import ServerError

if TYPE_CHECKING:
    from .app import App
    from .serving import Serving

__all__ = ["run", "serve_until_stopped"]

logger = logging.getLogger("wsroute.server")


def run(app: App, host: str = "127.0.0.1", port: int = 8765, *, drain_timeout: float = 10.0, **options: Any) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (blocking)."""
    asyncio.run(serve_until_stopped(app, host, port, drain_timeout=drain_timeout, **options))


async def serve_until_stopped(
    app: App, host: str | None, port: int | None, *, drain_timeout: float = 10.0, **options: Any
) -> None:
    """Serve until a stop signal, then drain."""
    serving = app.serve(host, port, **options)
    try:
        server = await serving.start()
    except OSError as exc:
        raise ServerError(explain_os_error(exc, host, port)) from None
    addresses = ", ".join(_format_address(s.getsockname()) for s in server.sockets)
    logger.info("wsroute serving on %s", addresses)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, stop)
    try:
        await stop.wait()
        await drain(serving, drain_timeout)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _on_signal(stop: asyncio.Event) -> None:
    if stop.is_set():
        logger.warning("second stop signal: exiting now")
        raise SystemExit(1)
    logger.info("stop signal received: draining connections")
    stop.set()


async def drain(serving: Serving, timeout: float, code: int = 1001) -> None:
    """Stop accepting, close connections with ``code``, cancel stragglers."""
    serving.app.shutting_down = True
    server = serving.server
    if server is not None:
        server.close(close_connections=True, code=code)
        try:
            await asyncio.wait_for(asyncio.shield(server.wait_closed()), timeout)
        except TimeoutError:
            logger.warning("drain timeout (%gs): cancelling %d handlers", timeout, len(server.handler_tasks))
            for task in list(server.handler_tasks):
                task.cancel()
            await server.wait_closed()
    await serving.app.shutdown()


def explain_os_error(exc: OSError, host: str | None, port: int | None) -> str:
    """Turn a listening error into a sentence that says what to do."""
    where = f"{host or '*'}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: address already in use; stop the other server or pass another --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: address not available on this machine (for 'localhost' this is often "
            "IPv6 being disabled); pass --host 127.0.0.1, another IPv4 address, or 0.0.0.0"
        )
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied; ports below 1024 need privileges, use a port >= 1024"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def _format_address(address: Any) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)
