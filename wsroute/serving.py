"""``app.serve()``: websockets' ``serve()`` with the app's start-up and the one way to stop.

``Serving`` behaves like the object websockets' ``serve()`` returns: use it
as ``async with app.serve(host, port) as server`` (preferred: it stops on
exit) or ``server = await app.serve(host, port)``. Plugins are configured,
dependencies bound and the hub started *before* the socket listens, so a
configuration mistake never leaves a half-started server.

:meth:`Serving.stop` is the only code that stops a server: ``async with``,
``app.run()``, ``wsroute run`` and every worker process go through it. It
never waits without bound: handlers that outlive the drain timeout are
cancelled, and whatever still runs a grace period later is abandoned and
logged (by route), so the caller can always go on and exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, serve
from websockets.frames import CloseCode

from .descriptors import install_accept_throttle

if TYPE_CHECKING:
    from .app import App

__all__ = ["CLOSE_GRACE", "DRAIN_TIMEOUT", "SHUTDOWN_GRACE", "STOP_GRACE", "Serving"]

logger = logging.getLogger("wsroute.server")

#: Default seconds open connections get to close before handlers are cancelled.
DRAIN_TIMEOUT = 10.0
#: Seconds handlers get to finish after their connection was closed at the
#: drain timeout (``keep_connections``), and again after they were cancelled.
CLOSE_GRACE = 1.0
#: Seconds the app's shutdown (hub, ``wsroute_shutdown`` hooks) gets beyond
#: what is left of the drain timeout.
SHUTDOWN_GRACE = 2.0
#: The most seconds :meth:`Serving.stop` takes beyond its drain timeout.
STOP_GRACE = 2 * CLOSE_GRACE + SHUTDOWN_GRACE


class Serving:
    """Awaitable and async context manager returning websockets' ``Server``."""

    def __init__(self, app: App, host: str | None, port: int | None, options: dict[str, Any]) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.options = options
        self.server: Server | None = None

    async def start(self) -> Server:
        """Start up the app, then listen.

        Raises:
            OSError: the socket cannot listen (the app is shut down again).
            ConfigurationError, PluginError: start-up found a mistake.
        """
        app = self.app
        install_accept_throttle(asyncio.get_running_loop())
        await app.startup()
        try:
            kwargs = app.websockets_options(self.options)
            handler = kwargs.pop("handler")
            self.server = await serve(handler, self.host, self.port, **kwargs)
        except BaseException:
            await app.shutdown()
            raise
        app.shutting_down = False
        return self.server

    async def stop(
        self,
        code: int = CloseCode.GOING_AWAY,
        reason: str = "",
        *,
        timeout: float = DRAIN_TIMEOUT,
        keep_connections: bool = False,
    ) -> None:
        """Stop accepting, close connections, cancel stragglers, shut the app down.

        Takes at most ``timeout`` + :data:`STOP_GRACE` seconds:

        1. ``app.shutting_down`` turns true; new handshakes get 503;
        2. open connections are closed with ``code`` (1001, going away; 1012
           when restarting) — or, with ``keep_connections``, left open until
           ``timeout`` and then closed with 1012;
        3. handlers still running at ``timeout`` are cancelled (logged with
           their routes), their transports aborted; those still running
           :data:`CLOSE_GRACE` later are abandoned (logged too);
        4. ``app.shutdown()`` (hub, plugins) gets what is left of ``timeout``
           plus :data:`SHUTDOWN_GRACE`, then is abandoned.

        Args:
            code: the close code for open connections (a ``CloseCode``).
            reason: the close reason sent with it.
            timeout: seconds (default 10) before handlers are cancelled.
            keep_connections: close nothing until ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.app.shutting_down = True
        try:
            if self.server is not None:
                await _drain(self.server, timeout, code, reason, keep_connections)
        finally:
            await _bounded(self.app.shutdown(), max(0.0, deadline - loop.time()) + SHUTDOWN_GRACE)

    def __await__(self) -> Generator[Any, None, Server]:
        return self.start().__await__()

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def _drain(server: Server, timeout: float, code: int, reason: str, keep_connections: bool) -> None:
    server.close(close_connections=not keep_connections, code=code, reason=reason)
    if await _closed_within(server, timeout):
        return
    if keep_connections:
        remaining = list(server.connections)
        logger.info("drain timeout (%gs): closing %d connection(s) with 1012", timeout, len(remaining))
        closing = [asyncio.ensure_future(c.close(CloseCode.SERVICE_RESTART, "server restarting")) for c in remaining]
        if closing:
            await asyncio.wait(closing, timeout=CLOSE_GRACE)
        if await _closed_within(server, CLOSE_GRACE):
            return
    running = _running(server.handler_tasks)
    logger.warning(
        "drain timeout (%gs): cancelling %d handler(s) still running: %s", timeout, len(running), _routes(running)
    )
    for conn in list(server.all_connections):
        conn.transport.abort()
    for task in running:
        task.cancel()
    if not await _closed_within(server, CLOSE_GRACE):
        stuck = _running(server.handler_tasks)
        logger.error(
            "%d handler(s) still running %gs after being cancelled, abandoned: %s", len(stuck), CLOSE_GRACE,
            _routes(stuck),
        )


async def _bounded(coro: Any, timeout: float) -> None:
    """Await ``coro`` for at most ``timeout`` seconds; past that, cancel it and go on without it."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        logger.error("app shutdown (hub, wsroute_shutdown hooks) still running after %gs: abandoned", timeout)
        return
    task.result()


async def _closed_within(server: Server, timeout: float) -> bool:
    try:
        await asyncio.wait_for(server.wait_closed(), timeout)
    except TimeoutError:
        return False
    return True


def _running(tasks: Collection[asyncio.Task[None]]) -> list[asyncio.Task[None]]:
    return [task for task in tasks if not task.done()]


def _routes(tasks: Collection[asyncio.Task[None]]) -> str:
    """The routes of connection tasks (named ``wsroute <route>``), sorted, comma-separated."""
    return ", ".join(sorted({task.get_name().removeprefix("wsroute ") for task in tasks}))
