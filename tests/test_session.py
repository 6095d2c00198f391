"""wsroute.session: one connection after the upgrade — hub registration, hooks, task names, close codes."""

from __future__ import annotations

import asyncio

import pytest
from timing import MS, until
from websockets.exceptions import ConnectionClosedError

import wsroute
from wsroute.testing import serve_app


class Observer:
    """A plugin recording the per-connection hooks with what they saw."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    @wsroute.hookimpl
    async def wsroute_connection_open(self, app, conn) -> None:
        self.events.append(("open", conn.route.label, app.hub.connections))

    @wsroute.hookimpl
    def wsroute_connection_closed(self, app, conn, code, reason) -> None:
        self.events.append(("closed", conn.path, code, reason, app.hub.connections))


async def test_connection_is_attached_to_the_hub_while_its_handler_runs() -> None:
    """The hub counts the connection during the handler and forgets it afterwards."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/count")
    async def count(ws):
        await ws.send(str(app.hub.connections))

    async with serve_app(app) as server:
        async with server.connect("/count") as ws:
            assert await ws.recv() == "1"
        await until(lambda: app.hub.connections == 0)  # the handler task ends right after the close


async def test_open_and_closed_hooks_bracket_the_handler_with_the_final_code() -> None:
    """wsroute_connection_open runs before the handler; wsroute_connection_closed gets the final code and reason."""
    observer = Observer()
    app = wsroute.App(load_entrypoints=False, plugins=[observer])

    @app.route("/items/{n:int}")
    async def item(ws, n):
        observer.events.append(("handler", n))
        await ws.close(4001, "done")

    async with serve_app(app) as server, server.connect("/items/7") as ws:
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 1000 * MS)
        assert (ws.close_code, ws.close_reason) == (4001, "done")
    await until(lambda: len(observer.events) == 3)
    assert observer.events == [
        ("open", "/items/{n:int}", 1),
        ("handler", 7),
        ("closed", "/items/7", 4001, "done", 0),
    ]


async def test_handler_returning_closes_with_1000_and_the_closed_hook_sees_it() -> None:
    """A handler that returns closes the connection normally; the closed hook reports 1000."""
    observer = Observer()
    app = wsroute.App(load_entrypoints=False, plugins=[observer])

    @app.route("/bye")
    async def bye(ws):
        await ws.send("bye")

    async with serve_app(app) as server, server.connect("/bye") as ws:
        assert await ws.recv() == "bye"
        await asyncio.wait_for(ws.wait_closed(), 1000 * MS)
        assert ws.close_code == 1000
    await until(lambda: bool(observer.events) and observer.events[-1][0] == "closed")
    assert observer.events[-1] == ("closed", "/bye", 1000, "", 0)


async def test_failing_open_hook_ends_the_connection_like_a_handler_failure(caplog) -> None:
    """An exception in wsroute_connection_open closes with 1011 and the handler never runs."""
    ran: list[str] = []

    class Broken:
        @wsroute.hookimpl
        def wsroute_connection_open(self, conn):
            raise RuntimeError("observer broke")

    app = wsroute.App(load_entrypoints=False, plugins=[Broken()])

    @app.route("/x")
    async def x(ws):
        ran.append("handler")

    async with serve_app(app) as server, server.connect("/x") as ws:
        await asyncio.wait_for(ws.wait_closed(), 1000 * MS)
        assert ws.close_code == 1011
    assert ran == []
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["handler for route /x failed"]


async def test_connection_task_is_named_after_its_route() -> None:
    """The task running a connection is named 'wsroute <pattern>', or '<pattern>[type]' once the first message chose."""
    names: list[str] = []
    app = wsroute.App(load_entrypoints=False)

    @app.route("/rooms/{room}")
    async def room(ws, room):
        names.append(asyncio.current_task().get_name())

    @app.route("/play", message="join")
    async def join(ws):
        names.append(asyncio.current_task().get_name())

    async with serve_app(app) as server:
        async with server.connect("/rooms/a") as ws:
            await asyncio.wait_for(ws.wait_closed(), 1000 * MS)
        async with server.connect("/play") as ws:
            await ws.send('{"type": "join"}')
            await asyncio.wait_for(ws.wait_closed(), 1000 * MS)
    assert names == ["wsroute /rooms/{room}", "wsroute /play[join]"]
