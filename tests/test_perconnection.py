"""Per-connection dependencies: ``app.provide_per_connection(name=factory)``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest
from timing import MS, timeout, until

import wsroute
from wsroute.errors import DependencyError
from wsroute.testing import ConnectionClosed, HandshakeRejected, TestClient, serve_app


def tracked_app(events: list[str]) -> wsroute.App:
    """An app with one factory of each kind; each records its calls and cleanups in ``events``."""
    app = wsroute.App(load_entrypoints=False)
    app.provide(prefix="user-")

    @app.middleware
    def token(conn: wsroute.Connection, request: wsroute.Request) -> None:
        events.append("middleware")
        conn.ctx.token = request.headers.get("X-Token", "")

    def user(conn: wsroute.Connection, prefix: str) -> str:  # sync: the connection and a provided value
        events.append("user")
        if conn.ctx.token == "bad":
            raise wsroute.Deny(403, "unknown token", headers={"X-Reason": "token"})
        return prefix + conn.ctx.token

    async def profile(user: str) -> dict[str, str]:  # async, depends on another factory
        events.append("profile")
        return {"name": user}

    def session(user: str) -> Iterator[str]:  # generator
        events.append("session open")
        try:
            yield f"session of {user}"
        except Exception as exc:
            events.append(f"session saw {type(exc).__name__}")
            raise
        finally:
            events.append("session close")

    async def transaction(ws: wsroute.Connection, session: str) -> AsyncIterator[str]:  # async generator
        events.append("transaction begin")
        try:
            yield f"transaction in {session}"
        finally:
            events.append("transaction end")

    app.provide_per_connection(user=user, profile=profile, session=session, transaction=transaction)

    @app.route("/inbox")
    async def inbox(ws: wsroute.Connection, profile: dict[str, str], transaction: str) -> None:
        events.append("handler")
        await ws.send_json({"profile": profile, "transaction": transaction})
        async for message in ws:  # until the client leaves
            if message == "fail":
                raise RuntimeError("handler failed")

    @app.route("/plain")
    async def plain(ws: wsroute.Connection) -> None:
        await ws.send("no dependencies")

    return app


def test_factories_run_once_after_the_middleware_and_clean_up_after_the_handler() -> None:
    """Each kind of factory runs once, in dependency order after the middleware; cleanups run in reverse at the end."""
    events: list[str] = []
    with TestClient(tracked_app(events)) as client:
        with client.websocket_connect("/inbox", headers={"X-Token": "ada"}) as ws:
            assert ws.receive_json() == {
                "profile": {"name": "user-ada"},
                "transaction": "transaction in session of user-ada",
            }
            assert events == ["middleware", "user", "profile", "session open", "transaction begin", "handler"]
        wait_for(lambda: "session close" in events)
    assert events[6:] == ["transaction end", "session close"]


def test_routes_that_do_not_ask_run_no_factory() -> None:
    """A route whose handler takes no per-connection dependency never calls a factory."""
    events: list[str] = []
    with TestClient(tracked_app(events)) as client, client.websocket_connect("/plain") as ws:
        assert ws.receive_text() == "no dependencies"
    assert events == ["middleware"]


def test_generator_cleanup_sees_the_handlers_failure() -> None:
    """A failing function handler: its exception is thrown in at the yield, then the cleanup runs; client gets 1011."""
    events: list[str] = []
    with TestClient(tracked_app(events)) as client, client.websocket_connect("/inbox", headers={"X-Token": "a"}) as ws:
        ws.receive_json()
        ws.send_text("fail")
        with pytest.raises(ConnectionClosed):
            ws.receive_text()
        assert ws.close_code == 1011
        wait_for(lambda: "session close" in events)
    assert events[-3:] == ["transaction end", "session saw RuntimeError", "session close"]


def test_generator_cleanup_runs_at_shutdown() -> None:
    """A connection still open when the server stops: the handler ends and the cleanups run."""
    events: list[str] = []
    with TestClient(tracked_app(events)) as client, client.websocket_connect("/inbox", headers={"X-Token": "a"}) as ws:
        ws.receive_json()
        client.__exit__(None, None, None)  # stop the server under the open connection
        assert events[-2:] == ["transaction end", "session close"]


def test_deny_in_a_factory_answers_http_and_the_handler_never_runs() -> None:
    """raise Deny(403, ..., headers=...) in a factory: the client gets that status, body and header; no handler."""
    events: list[str] = []
    with (
        TestClient(tracked_app(events)) as client,
        pytest.raises(HandshakeRejected) as refused,
        client.websocket_connect("/inbox", headers={"X-Token": "bad"}),
    ):
        pass
    rejected = refused.value
    assert (rejected.status, rejected.body, rejected.headers["x-reason"]) == (403, b"unknown token\n", "token")
    assert "handler" not in events and "session open" not in events


def test_deny_after_a_generator_yielded_closes_that_generator() -> None:
    """A later factory denying: the generator that already yielded is cleaned up before the 403 is sent."""
    events: list[str] = []
    app = wsroute.App(load_entrypoints=False)

    def opened() -> Iterator[str]:
        events.append("open")
        try:
            yield "resource"
        finally:
            events.append("closed")

    def gate(opened: str) -> None:
        raise wsroute.Deny(401, "log in first")

    app.provide_per_connection(opened=opened, gate=gate)

    @app.route("/x")
    async def x(ws: wsroute.Connection, gate: None) -> None: ...

    with TestClient(app) as client, pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/x"):
        pass
    assert refused.value.status == 401
    assert events == ["open", "closed"]


def test_a_factory_failure_answers_500_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A factory raising something else fails closed with 500, logged once as a dependency failure."""
    app = wsroute.App(load_entrypoints=False)

    def broken(conn: wsroute.Connection) -> None:
        raise KeyError("nope")

    app.provide_per_connection(broken=broken)

    @app.route("/x")
    async def x(ws: wsroute.Connection, broken: None) -> None: ...

    with TestClient(app) as client, pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/x"):
        pass
    assert refused.value.status == 500
    failures = [r for r in caplog.records if "per-connection dependency" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None


def test_handler_classes_receive_them_as_constructor_arguments() -> None:
    """A Handler declared with attrs gets per-connection values and path parameters in its constructor."""
    app = wsroute.App(load_entrypoints=False)
    app.provide_per_connection(shout=lambda room: room.upper())

    @app.route("/rooms/{room}")
    @attrs.define
    class Room(wsroute.Handler):
        shout: str

        async def on_connect(self) -> None:
            await self.send(self.shout)

    with TestClient(app) as client, client.websocket_connect("/rooms/lobby") as ws:
        assert ws.receive_text() == "LOBBY"


def test_on_a_message_routed_path_they_run_after_the_first_message() -> None:
    """The route is known only after the first message: factories run then, and Deny closes with 1008."""
    app = wsroute.App(load_entrypoints=False)

    def player(conn: wsroute.Connection) -> str:
        name = conn.first_message.get("name")
        if not name:
            raise wsroute.Deny(403, "a name is required")
        return name

    app.provide_per_connection(player=player)

    @app.route("/play", message="join")
    async def join(ws: wsroute.Connection, player: str) -> None:
        await ws.send(f"welcome {player}")

    with TestClient(app) as client:
        with client.websocket_connect("/play") as ws:
            ws.send_json({"type": "join", "name": "ada"})
            assert ws.receive_text() == "welcome ada"
        with client.websocket_connect("/play") as ws:
            ws.send_json({"type": "join"})
            with pytest.raises(ConnectionClosed):
                ws.receive_text()
            assert (ws.close_code, ws.close_reason) == (1008, "a name is required")


async def test_start_up_refuses_a_cycle() -> None:
    """a -> b -> a is a DependencyError at start-up naming the cycle."""
    app = wsroute.App(load_entrypoints=False)
    app.provide_per_connection(a=lambda b: b, b=lambda a: a)
    app.route("/x")(_takes_a)
    with pytest.raises(DependencyError, match="form a cycle: a -> b -> a"):
        async with serve_app(app):
            pass


async def test_start_up_refuses_a_parameter_nothing_provides() -> None:
    """A factory parameter that is no dependency, path parameter or default fails start-up naming it."""
    app = wsroute.App(load_entrypoints=False)
    app.provide_per_connection(a=lambda missing: missing)
    app.route("/x")(_takes_a)
    with pytest.raises(DependencyError, match=r"dependency 'a'.*parameter 'missing'"):
        async with serve_app(app):
            pass


async def test_a_path_parameter_must_exist_on_every_route_that_uses_the_factory() -> None:
    """A factory taking {room} is fine on /rooms/{room} and an error on /lobby, naming that route."""
    app = wsroute.App(load_entrypoints=False)
    app.provide_per_connection(a=lambda room: room)
    app.route("/rooms/{room}")(_takes_a)
    app.route("/lobby")(_takes_a)
    with pytest.raises(DependencyError, match="path parameter of route '/lobby'"):
        async with serve_app(app):
            pass


async def test_a_name_given_both_ways_is_refused() -> None:
    """The same name in app.provide and provide_per_connection is ambiguous and refused at start-up."""
    app = wsroute.App(load_entrypoints=False)
    app.provide(a=1)
    app.provide_per_connection(a=lambda: 2)
    app.route("/x")(_takes_a)
    with pytest.raises(DependencyError, match=r"both by app\.provide"):
        async with serve_app(app):
            pass


def test_declaration_checks_the_factory() -> None:
    """A non-callable factory, or one with positional-only parameters, is refused when declared."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(DependencyError, match="is not callable"):
        app.provide_per_connection(a=42)  # type: ignore[arg-type]

    def positional(conn: Any, /) -> None: ...

    with pytest.raises(DependencyError, match="positional-only"):
        app.provide_per_connection(a=positional)


async def test_cleanup_runs_when_the_handshake_fails_after_the_factories() -> None:
    """A header plugin failing after the factories ran: no handler, and the generator is still closed."""
    events: list[str] = []

    class BadHeaders:
        @wsroute.hookimpl
        def wsroute_extra_headers(self, app: Any, request: Any, response: Any) -> Any:
            raise RuntimeError("header plugin broke")

    app = wsroute.App(load_entrypoints=False, plugins=[BadHeaders()])

    def held() -> Iterator[str]:
        try:
            yield "x"
        finally:
            events.append("closed")

    app.provide_per_connection(a=held)
    app.route("/x")(_takes_a)
    async with serve_app(app) as server:
        assert await server.rejection("/x") == 500
        await until(lambda: events == ["closed"])


async def _takes_a(ws: wsroute.Connection, a: Any) -> None:
    await ws.send(str(a))


def wait_for(predicate: Any, seconds: float = 2.0) -> None:
    """Poll ``predicate`` from a sync test (the server runs in the TestClient's thread), bounded."""
    deadline = time.monotonic() + timeout(seconds)
    while not predicate():
        assert time.monotonic() < deadline, "condition still false"
        time.sleep(5 * MS)
