"""``app.serve()``: websockets' ``serve()`` with the app's start-up and shutdown.

``Serving`` behaves like the object websockets' ``serve()`` returns: use it
as ``async with app.serve(host, port) as server`` (preferred: shutdown runs on
exit) or ``server = await app.serve(host, port)``. Plugins are configured,
dependencies bound and the hub started *before* the socket listens, so a
configuration mistake never leaves a half-started server.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, serve

if TYPE_CHECKING:
    from .app import App

__all__ = ["Serving"]


class Serving:
    """Awaitable and async context manager returning websockets' ``Server``."""

    def __init__(self, app: App, host: str | None, port: int | None, options: dict[str, Any]) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.options = options
        self.server: Server | None = None

    async def start(self) -> Server:
        """Start up the app, then listen."""
        app = self.app
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

    async def stop(self, code: int = 1001, reason: str = "") -> None:
        """Close the server and its connections, then shut the app down."""
        self.app.shutting_down = True
        try:
            if self.server is not None:
                self.server.close(close_connections=True, code=code, reason=reason)
                await self.server.wait_closed()
        finally:
            await self.app.shutdown()

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
