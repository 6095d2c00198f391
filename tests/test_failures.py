"""A crashing handler: 1011, logged once with its route, others untouched."""

from __future__ import annotations

import asyncio
import logging

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

import wsroute
from wsroute.testing import serve_app


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.route("/echo")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    @app.route("/crash")
    async def crash(ws):
        await ws.recv()
        raise ValueError("handler bug")

    @app.route("/crash-class")
    class Crash(wsroute.Handler):
        async def on_message(self, message):
            raise KeyError("class bug")

    @app.route("/leave")
    async def leave(ws):
        await ws.recv()  # the client closes: ConnectionClosed is not an error

    return app


@pytest.mark.parametrize(("path", "route"), [("/crash", "/crash"), ("/crash-class", "/crash-class")])
async def test_crashing_handler_closes_1011_logged_once_others_fine(caplog, path, route) -> None:
    """The crashing connection gets 1011, one error names the route, a neighbour keeps echoing."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(make_app()) as server, server.connect("/echo") as healthy:
        async with server.connect(path) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1011
        await healthy.send("still here")
        assert await healthy.recv() == "still here"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert f"handler for route {route} failed" in errors[0].getMessage()


async def test_client_close_is_not_logged_as_error(caplog) -> None:
    """A client that leaves mid-handler produces no error log."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(make_app()) as server:
        async with server.connect("/leave"):
            pass
        async with server.connect("/crash-class") as ws:
            await ws.close()
        await asyncio.sleep(0.05)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_plugin_can_choose_the_close_code() -> None:
    """wsroute_handle_exception returning a code replaces 1011."""

    class Codes:
        @wsroute.hookimpl
        def wsroute_handle_exception(self, app, conn, route, exc):
            return 4500 if isinstance(exc, ValueError) else None

    app = make_app()
    app.plugins.register(Codes(), "codes")
    async with serve_app(app) as server, server.connect("/crash") as ws:
        await ws.send("go")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4500


async def test_plugin_close_code_that_is_not_a_code_falls_back_to_1011(caplog) -> None:
    """A wsroute_handle_exception result that is not a valid close code is logged and 1011 is used."""

    class Wrong:
        @wsroute.hookimpl
        def wsroute_handle_exception(self, app, conn, route, exc):
            return "4500"

    app = make_app()
    app.plugins.register(Wrong(), "wrong")
    caplog.set_level(logging.ERROR)
    async with serve_app(app) as server, server.connect("/crash") as ws:
        await ws.send("go")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011
    assert any("returned '4500', not a close code" in r.getMessage() for r in caplog.records)


async def test_on_disconnect_reports_the_code_the_client_received() -> None:
    """When on_message raises, on_disconnect sees the same close code and reason as the client."""
    seen: list[tuple[int, str]] = []
    done = asyncio.Event()

    class Codes:
        @wsroute.hookimpl
        def wsroute_handle_exception(self, app, conn, route, exc):
            return 4001

    app = wsroute.App(load_entrypoints=False, plugins=[Codes()])

    @app.route("/x")
    class X(wsroute.Handler):
        async def on_message(self, message):
            raise RuntimeError("bug")

        async def on_disconnect(self, code, reason):
            seen.append((code, reason))
            done.set()

    async with serve_app(app) as server, server.connect("/x") as ws:
        await ws.send("go")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        client = (ws.close_code, ws.close_reason)
        await asyncio.wait_for(done.wait(), 5)
    assert client == (4001, "internal error")
    assert seen == [client]


async def test_spawned_tasks_finish_before_on_disconnect() -> None:
    """A spawned task's cleanup runs before on_disconnect is called."""
    order: list[str] = []
    done = asyncio.Event()
    app = wsroute.App(load_entrypoints=False)

    @app.route("/x")
    class X(wsroute.Handler):
        async def on_connect(self):
            self.spawn(self.work())
            await self.send("ready")

        async def work(self):
            try:
                await asyncio.sleep(3600)
            finally:
                order.append("task cleanup")

        async def on_disconnect(self, code, reason):
            order.append("disconnect")
            done.set()

    async with serve_app(app) as server:
        async with server.connect("/x") as ws:
            assert await ws.recv() == "ready"
        await asyncio.wait_for(done.wait(), 5)
    assert order == ["task cleanup", "disconnect"]


async def test_failed_startup_hook_stops_the_broker() -> None:
    """A plugin failing in wsroute_startup leaves no broker connected behind."""
    from wsroute.hub import MemoryBroker

    events: list[str] = []

    class SpyBroker(MemoryBroker):
        async def start(self, sink):
            events.append("start")
            await super().start(sink)

        async def stop(self):
            events.append("stop")
            await super().stop()

    class Failing:
        @wsroute.hookimpl
        def wsroute_startup(self, app):
            raise RuntimeError("cannot start")

    app = make_app()
    app.hub.use_broker(SpyBroker())
    app.plugins.register(Failing(), "failing")
    with pytest.raises(wsroute.PluginError, match="failing"):
        async with serve_app(app):
            pass
    assert events == ["start", "stop"]


async def test_connection_closed_from_another_socket_is_a_handler_failure(caplog) -> None:
    """A ConnectionClosed raised by an upstream socket the handler relays to closes with 1011 and is logged."""
    app = make_app()

    @app.route("/relay")
    async def relay(ws):
        async with serve_app(make_app()) as upstream_server, upstream_server.connect("/leave") as upstream:
            await upstream.send("bye")  # /leave returns after one message: upstream closes
            await upstream.recv()

    caplog.set_level(logging.ERROR)
    async with serve_app(app) as server, server.connect("/relay") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("handler for route /relay failed: another connection (to 127.0.0.1:")
    assert ") was closed (ConnectionClosedOK: received 1000 (OK); then sent 1000 (OK))" in errors[0]


async def test_spawned_task_failure_follows_the_exception_hook(caplog) -> None:
    """A spawned task that raises closes with the hook's code, logged once with the route, before on_disconnect."""
    seen: list[tuple[int, str]] = []
    done = asyncio.Event()

    class Codes:
        @wsroute.hookimpl
        def wsroute_handle_exception(self, app, conn, route, exc):
            return 4003 if isinstance(exc, ValueError) else None

    app = wsroute.App(load_entrypoints=False, plugins=[Codes()])

    @app.route("/games/{game}")
    class Game(wsroute.Handler):
        async def on_message(self, message):
            self.spawn(self.tick(), name="ticker")

        async def tick(self):
            raise ValueError("tick bug")

        async def on_disconnect(self, code, reason):
            seen.append((code, reason))
            done.set()

    caplog.set_level(logging.DEBUG)
    async with serve_app(app) as server, server.connect("/games/7") as ws:
        await ws.send("start")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        client = (ws.close_code, ws.close_reason)
        await asyncio.wait_for(done.wait(), 5)
    assert client == (4003, "internal error")
    assert seen == [client]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["background task 'ticker' for route /games/{game} failed"]
    assert isinstance(errors[0].exc_info[1], ValueError)


async def test_spawned_task_failure_without_a_hook_is_1011_named_by_route(caplog) -> None:
    """Without a hook a failing spawned task gives 1011; the log names the route and the default task name."""
    app = make_app()

    @app.route("/work")
    class Work(wsroute.Handler):
        async def on_connect(self):
            self.spawn(self.work())

        async def work(self):
            raise KeyError("work bug")

    caplog.set_level(logging.DEBUG)
    async with serve_app(app) as server, server.connect("/work") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "background task 'wsroute /work:test_spawned_task_failure_without_a_hook_is_1011_named_by_route."
        "<locals>.Work.work' for route /work failed"
    ]


def faq_chat_app(left: dict[str, asyncio.Event]) -> wsroute.App:
    """The websockets FAQ's dict-of-connections chat, with entries never removed (a stale dict)."""
    app = make_app()
    connected: dict[str, wsroute.Connection] = {}

    @app.middleware
    def identify(conn, request):
        conn.ctx.user_id = conn.params["name"]

    @app.route("/chat/{name}")
    async def chat(ws, name):
        connected[name] = ws
        try:
            async for message in ws:
                target, _, text = message.partition(":")
                await connected[target].send(f"{name}: {text}")
        finally:
            left[name].set()

    @app.route("/room/{name}")
    class Room(wsroute.Handler):
        async def on_connect(self):
            connected[self.params["name"]] = self.ws

        async def on_message(self, message):
            target, _, text = message.partition(":")
            await connected[target].send(f"{self.params['name']}: {text}")

        async def on_disconnect(self, code, reason):
            left[self.params["name"]].set()

    return app


@pytest.mark.parametrize("route", ["/chat/{name}", "/room/{name}"])
async def test_sending_to_a_connection_that_left_names_it_and_points_to_the_hub(caplog, route) -> None:
    """Sending through another client's closed connection logs that other connection once and suggests send_to_user."""
    left = {"alice": asyncio.Event(), "bob": asyncio.Event()}
    prefix = route.partition("{")[0]
    caplog.set_level(logging.DEBUG)
    async with serve_app(faq_chat_app(left)) as server, server.connect(prefix + "alice") as alice:
        async with server.connect(prefix + "bob") as bob:
            await alice.send("bob:hello")
            assert await bob.recv() == "alice: hello"
            bob_port = bob.local_address[1]
        await asyncio.wait_for(left["bob"].wait(), 5)
        await alice.send("bob:are you there?")
        with pytest.raises(ConnectionClosed):
            await alice.recv()
        assert alice.close_code == 1011
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage() == (
        f"handler for route {route} failed: another connection (client 127.0.0.1:{bob_port} on route {route}, "
        "user 'bob') was closed (ConnectionClosedOK: received 1000 (OK); then sent 1000 (OK)) and the handler "
        "still used it; this client's own connection is open. To message other clients, use "
        "app.hub.send_to_user(user_id, message) (or hub.publish/broadcast), which skips connections that have "
        "left, instead of keeping connections in a dict; or catch websockets.exceptions.ConnectionClosed around "
        "the send"
    )
    assert errors[0].exc_info[0] is ConnectionClosedOK
