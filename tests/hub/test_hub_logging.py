"""The hub's per-connection log lines go through the connection's logger and name the client (issue 19, item 6)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from websockets.frames import CloseCode

import wsroute
from wsroute.hub.delivery import SLOW_CODE
from wsroute.hub.who import describe
from wsroute.testing import serve_app

CONN_LOGGER = "tests.hub.connections"
DESCRIBED = re.compile(r"/(feed|room) from 127\.0\.0\.1 user (carol|dave) \(id [0-9a-f]{8}\)")


def make_app(**options: Any) -> wsroute.App:
    """An app whose connections log to CONN_LOGGER (websockets' ``logger=``), users from ``?user=``."""
    app = wsroute.App(load_entrypoints=False, logger=logging.getLogger(CONN_LOGGER), **options)

    @app.middleware
    def user(conn: Any, request: Any) -> None:
        conn.ctx.user_id = conn.query["user"][0]

    return app


def records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """The captured records whose message contains ``text``."""
    return [r for r in caplog.records if text in r.getMessage()]


@pytest.mark.asyncio
async def test_slow_consumer_close_is_logged_through_the_connection_logger(caplog: pytest.LogCaptureFixture) -> None:
    """Closing a slow consumer logs on the connection's logger with route, client IP, user and id, and uses 1013."""
    caplog.set_level(logging.INFO)
    app = make_app(hub_options={"max_queue": 2, "max_buffer": 1024, "close_timeout": 0.5})

    @app.route("/feed")
    async def feed(ws: Any) -> None:
        await ws.send("ready")
        await ws.wait_closed()

    options: dict[str, Any] = {"compression": None, "max_size": None, "close_timeout": 0.5}
    async with serve_app(app) as server, server.connect("/feed?user=carol", **options) as ws:
        assert await ws.recv() == "ready"  # and never reads again
        for _ in range(2000):  # bounded: 2,000 x 64 KiB is far beyond every buffer
            await app.hub.broadcast(bytes(64 * 1024))
            await asyncio.sleep(0)
            if app.hub.stats.slow_disconnects:
                break
        assert app.hub.stats.slow_disconnects == 1
    (record,) = records(caplog, "closing slow consumer")
    assert record.name == CONN_LOGGER
    assert DESCRIBED.search(record.getMessage()), record.getMessage()
    assert getattr(record, "websocket", None) is not None
    assert SLOW_CODE is CloseCode.TRY_AGAIN_LATER


@pytest.mark.asyncio
async def test_failing_presence_callback_is_logged_through_the_connection_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A presence callback that raises is logged once, on the connection's logger, naming route, IP and user."""
    caplog.set_level(logging.INFO)
    app = make_app()

    @app.route("/room")
    class Room(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe("room", presence=True)
            await self.ws.send("ready")

        async def on_presence(self, topic: str, event: str, user_id: str) -> None:
            raise RuntimeError("boom")

    async with serve_app(app) as server, server.connect("/room?user=dave") as ws:
        assert await ws.recv() == "ready"
        for _ in range(500):  # bounded wait for the callback task
            if records(caplog, "presence callback"):
                break
            await asyncio.sleep(0.01)
    (record,) = records(caplog, "presence callback")
    assert record.name == CONN_LOGGER
    assert record.levelno == logging.ERROR
    assert DESCRIBED.search(record.getMessage()), record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"


def test_describe_falls_back_to_what_a_plain_connection_knows() -> None:
    """A connection without route, client_ip or user is described by its path and peer address."""

    class Request:
        path = "/plain?x=1"

    class Plain:
        request = Request()
        remote_address = ("::1", 5555, 0, 0)
        id = "0123456789abcdef"

    assert describe(Plain()) == "/plain from ::1 (id 01234567)"
