"""wsroute.serving: app.serve() starts the app before listening and shuts it down after closing."""

from __future__ import annotations

import asyncio
import socket

import pytest
from timing import MS
from websockets.asyncio.client import connect

import wsroute
from wsroute import DependencyError
from wsroute.testing import serve_app


class Lifecycle:
    """A plugin recording start-up and shutdown with the app's state."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @wsroute.hookimpl
    def wsroute_startup(self, app) -> None:
        self.events.append(f"startup serving={app.serving}")

    @wsroute.hookimpl
    def wsroute_shutdown(self, app) -> None:
        self.events.append(f"shutdown shutting_down={app.shutting_down}")


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def test_await_form_returns_the_websockets_server_and_stop_shuts_down() -> None:
    """server = await app.serve(...) listens; Serving.stop() closes connections with 1001 and runs shutdown."""
    lifecycle = Lifecycle()
    app = wsroute.App(load_entrypoints=False, plugins=[lifecycle])
    app.add_route("/echo", echo)
    serving = app.serve("127.0.0.1", 0)
    server = await serving
    port = server.sockets[0].getsockname()[1]
    async with connect(f"ws://127.0.0.1:{port}/echo", open_timeout=1000 * MS) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
        assert app.serving
        await serving.stop()
        await asyncio.wait_for(ws.wait_closed(), 1000 * MS)
        assert ws.close_code == 1001
    assert not app.serving
    assert lifecycle.events == ["startup serving=True", "shutdown shutting_down=True"]


async def test_failed_start_up_listens_on_nothing_and_leaves_registration_open() -> None:
    """A start-up error (a missing dependency) raises before listening; the app can be fixed and served."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/x")
    async def x(ws, db):
        await ws.send(db)

    with pytest.raises(DependencyError):
        await app.serve("127.0.0.1", 0)
    assert not app.serving
    app.provide(db="fixed")
    async with serve_app(app) as server, server.connect("/x") as ws:
        assert await ws.recv() == "fixed"


async def test_listen_failure_shuts_the_app_down_again() -> None:
    """When the port is taken, serve() raises OSError after running shutdown (hub stopped, hooks told)."""
    lifecycle = Lifecycle()
    app = wsroute.App(load_entrypoints=False, plugins=[lifecycle])
    app.add_route("/echo", echo)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            await app.serve("127.0.0.1", port)
    assert not app.serving
    assert lifecycle.events[0] == "startup serving=True"
    assert [event.split()[0] for event in lifecycle.events] == ["startup", "shutdown"]
    app.hub.use_broker(None)  # raises RuntimeError while the hub runs: it was stopped


async def test_serve_options_override_the_apps() -> None:
    """An option given to app.serve() wins over the same option given to App()."""
    app = wsroute.App(load_entrypoints=False, server_header="from-app")
    app.add_route("/echo", echo)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["Server"] == "from-app"
    async with serve_app(app, server_header="from-serve") as server, server.connect("/echo") as ws:
        assert ws.response.headers["Server"] == "from-serve"
