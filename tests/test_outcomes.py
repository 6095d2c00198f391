"""``raise wsroute.Deny`` before the upgrade, ``raise wsroute.Close`` after it, and ``recv_json``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import wsroute
from wsroute.testing import ConnectionClosed, HandshakeRejected, TestClient


def closed_with(ws: Any) -> tuple[int | None, str | None]:
    """Wait for the server's close and return its code and reason."""
    with pytest.raises(ConnectionClosed):
        ws.receive()
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_deny_in_middleware_answers_its_status_body_and_headers(kind: str) -> None:
    """Deny(401, reason, headers) raised by sync or async middleware is the HTTP answer; no handler runs."""
    app = wsroute.App(load_entrypoints=False)
    ran: list[str] = []

    def deny(conn: wsroute.Connection, request: wsroute.Request) -> None:
        raise wsroute.Deny(401, "token expired", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    async def deny_async(conn: wsroute.Connection, request: wsroute.Request) -> None:
        deny(conn, request)

    app.middleware(deny if kind == "sync" else deny_async)

    @app.route("/x")
    async def x(ws: wsroute.Connection) -> None:
        ran.append("handler")

    with TestClient(app) as client, pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/x"):
        pass
    rejected = refused.value
    assert (rejected.status, rejected.body) == (401, b"token expired\n")
    assert rejected.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert ran == []


def test_deny_without_reason_uses_the_status_phrase(caplog: pytest.LogCaptureFixture) -> None:
    """Deny(429) answers 'Too Many Requests', logged at INFO and never as an error."""
    caplog.set_level(logging.INFO, logger="wsroute")
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def slow_down(conn: wsroute.Connection, request: wsroute.Request) -> None:
        raise wsroute.Deny(429)

    app.route("/x")(_never)
    with TestClient(app) as client, pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/x"):
        pass
    assert (refused.value.status, refused.value.body) == (429, b"Too Many Requests\n")
    assert [r.levelname for r in caplog.records if "denied" in r.getMessage()] == ["INFO"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_deny_with_a_header_injection_fails_closed() -> None:
    """A Deny header with CR/LF is never sent: the answer is 500."""
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def bad(conn: wsroute.Connection, request: wsroute.Request) -> None:
        raise wsroute.Deny(403, "no", headers={"X-A": "1\r\nSet-Cookie: x=1"})

    app.route("/x")(_never)
    with TestClient(app) as client, pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/x"):
        pass
    assert refused.value.status == 500 and "set-cookie" not in refused.value.headers


def test_close_in_a_function_handler_sends_its_code_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    """raise Close(4001, reason) closes with exactly that, logged at INFO, no error, no 1011."""
    caplog.set_level(logging.INFO, logger="wsroute")
    app = wsroute.App(load_entrypoints=False)

    @app.route("/game")
    async def game(ws: wsroute.Connection) -> None:
        await ws.recv()
        raise wsroute.Close(4001, "illegal move")

    with TestClient(app) as client, client.websocket_connect("/game") as ws:
        ws.send_text("e9")
        assert closed_with(ws) == (4001, "illegal move")
    assert any(r.levelname == "INFO" and "4001 illegal move" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_close_in_handler_methods_and_spawned_tasks() -> None:
    """Close raised in an @on method or in a task from spawn() closes with its code; on_disconnect sees it."""
    app = wsroute.App(load_entrypoints=False)
    seen: list[tuple[int, str]] = []

    @app.route("/h")
    class Game(wsroute.Handler):
        @wsroute.on("quit")
        async def quit(self, data: dict[str, Any]) -> None:
            raise wsroute.Close(4000, data["why"])

        @wsroute.on("later")
        async def later(self, data: dict[str, Any]) -> None:
            self.spawn(self.closer())

        async def closer(self) -> None:
            await asyncio.sleep(0)
            raise wsroute.Close(4002, "from a task")

        async def on_disconnect(self, code: int, reason: str) -> None:
            seen.append((code, reason))

    with TestClient(app) as client:
        with client.websocket_connect("/h") as ws:
            ws.send_json({"type": "quit", "why": "bye"})
            assert closed_with(ws) == (4000, "bye")
        with client.websocket_connect("/h") as ws:
            ws.send_json({"type": "later"})
            assert closed_with(ws) == (4002, "from a task")
    assert seen == [(4000, "bye"), (4002, "from a task")]


def test_a_long_close_reason_is_cut_to_fit() -> None:
    """A reason over 123 bytes is cut at a character boundary; the code is still delivered."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/x")
    async def x(ws: wsroute.Connection) -> None:
        raise wsroute.Close(4003, "é" * 100)

    with TestClient(app) as client, client.websocket_connect("/x") as ws:
        code, reason = closed_with(ws)
    assert code == 4003 and reason is not None
    assert len(reason.encode()) <= 123 and reason.startswith("é" * 10)


def test_bad_status_or_code_is_refused_at_the_raise() -> None:
    """Deny(200) and Close(1005) are ValueErrors naming what is allowed."""
    with pytest.raises(ValueError, match="from 300 to 599"):
        wsroute.Deny(200)
    with pytest.raises(ValueError, match="3000 to 4999"):
        wsroute.Close(1005)
    assert (wsroute.Close(1000).code, wsroute.Close(4999, "x").reason) == (1000, "x")


def test_recv_json_decodes_and_refuses_non_json_with_1008() -> None:
    """ws.recv_json() returns the decoded value; text that is not JSON (NaN too) closes 1008 with the reason."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/j")
    async def j(ws: wsroute.Connection) -> None:
        while True:
            await ws.send_json({"got": await ws.recv_json()})

    with TestClient(app) as client:
        with client.websocket_connect("/j") as ws:
            ws.send_text('{"a": [1, 2]}')
            assert ws.receive_json() == {"got": {"a": [1, 2]}}
            ws.send_text("not json")
            assert closed_with(ws) == (1008, "message is not valid JSON")
        with client.websocket_connect("/j") as ws:
            ws.send_text("[NaN]")
            assert closed_with(ws) == (1008, "message has NaN, which is not JSON")
        with client.websocket_connect("/j") as ws:
            ws.send_bytes(b"{}")
            assert closed_with(ws) == (1003, "expected a JSON text message, got binary")


def test_bad_message_can_be_caught_to_answer_instead() -> None:
    """A handler catching BadMessage from recv_json keeps the connection and may reply."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/j")
    class J(wsroute.Handler):
        async def on_connect(self) -> None:
            while True:
                try:
                    value = await self.recv_json()
                except wsroute.BadMessage as exc:
                    await self.send_json({"error": exc.problem})
                    continue
                await self.send_json({"ok": value})

    with TestClient(app) as client, client.websocket_connect("/j") as ws:
        ws.send_text("{oops")
        assert ws.receive_json() == {"error": "message is not valid JSON"}
        ws.send_text("3")
        assert ws.receive_json() == {"ok": 3}


async def _never(ws: wsroute.Connection) -> None:
    raise AssertionError("the handler must not run")
