"""pytest fixtures for testing wsroute apps; installed as a ``pytest11`` entry point.

Installing wsroute makes these fixtures available in every test suite of the
environment, as pytest-asyncio's or anyio's are:

``wsroute_client`` (any pytest)
    A factory: ``client = wsroute_client(app)`` starts a
    :class:`~wsroute.testing.TestClient` (the app served on 127.0.0.1 in a
    background thread) and stops it after the test.

``wsroute_server`` (when pytest-asyncio is installed)
    An async factory: ``server = await wsroute_server(app)`` serves the app
    in the test's event loop with :func:`~wsroute.testing.serve_app` and
    stops it after the test.

Example::

    def test_echo(wsroute_client):
        client = wsroute_client(app)
        with client.websocket_connect("/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from .testing import TestClient, TestServer, serve_app

if TYPE_CHECKING:
    from .app import App

__all__ = ["wsroute_client", "wsroute_server"]


@pytest.fixture
def wsroute_client() -> Iterator[Callable[..., TestClient]]:
    """Start TestClients for apps; every one is stopped after the test."""
    with ExitStack() as stack:

        def start(app: App, **options: Any) -> TestClient:
            return stack.enter_context(TestClient(app, **options))

        yield start


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def wsroute_server() -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
        """Serve apps in the test's event loop; every one is stopped after the test."""
        async with AsyncExitStack() as stack:

            async def start(app: App, **options: Any) -> TestServer:
                return await stack.enter_async_context(serve_app(app, **options))

            yield start
