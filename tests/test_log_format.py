"""Connection-level log lines carry the connection id, route pattern, client IP and user (issue 17, logs)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

import wsroute
from wsroute.logs import ConnectionContext, JsonFormatter, configure_logging
from wsroute.testing import serve_app

TEXT = "%(levelname)s %(name)s: %(message)s%(connection)s"


@contextlib.contextmanager
def captured(formatter: logging.Formatter, *names: str) -> Iterator[io.StringIO]:
    """Send the named loggers' records through a handler set up as configure_logging does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ConnectionContext())
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def make_app() -> wsroute.App:
    """An app whose middleware names the user from ?user=, with a failing, a message-routed and a slow route."""
    app = wsroute.App(load_entrypoints=False, hub_options={"max_queue": 2, "max_buffer": 1024, "close_timeout": 0.5})

    @app.middleware
    def user(conn: Any, request: Any) -> None:
        conn.ctx.user_id = conn.query.get("user", [None])[0]

    @app.route("/rooms/{room}/fail")
    async def fail(ws: wsroute.Connection, room: str) -> None:
        await ws.recv()
        raise ValueError("boom")

    @app.route("/play", message="join")
    async def join(ws: wsroute.Connection) -> None:
        await ws.send("joined")

    @app.route("/feed")
    async def feed(ws: wsroute.Connection) -> None:
        await ws.send("ready")
        await ws.wait_closed()

    return app


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line of the stream, parsed: each must be one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_handler_failure_in_json_names_the_connection() -> None:
    """A handler failure is one JSON line with conn_id, the route pattern, client_ip, user_id and the traceback."""
    with captured(JsonFormatter(), "wsroute") as stream:
        async with serve_app(make_app()) as server, server.connect("/rooms/red/fail?user=alice") as ws:
            await ws.send("go")
            await ws.wait_closed()
    (entry,) = [e for e in json_lines(stream) if e["level"] == "ERROR"]
    assert entry["message"] == "handler for route /rooms/{room}/fail failed"
    assert entry["route"] == "/rooms/{room}/fail"
    assert entry["client_ip"] == "127.0.0.1"
    assert entry["user_id"] == "alice"
    assert re.fullmatch(r"[0-9a-f]{8}", entry["conn_id"])
    assert "ValueError: boom" in entry["exc"]
    assert entry["logger"] == "wsroute" and isinstance(entry["pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


async def test_handler_failure_in_text_ends_with_the_connection() -> None:
    """In the text format the failure line ends with [conn … route … ip … user …]."""
    with captured(logging.Formatter(TEXT), "wsroute") as stream:
        async with serve_app(make_app()) as server, server.connect("/rooms/red/fail?user=bob") as ws:
            await ws.send("go")
            await ws.wait_closed()
    first = stream.getvalue().splitlines()[0]
    assert re.fullmatch(
        r"ERROR wsroute: handler for route /rooms/\{room\}/fail failed "
        r"\[conn [0-9a-f]{8} route /rooms/\{room\}/fail ip 127\.0\.0\.1 user bob\]",
        first,
    ), first


async def test_first_message_rejection_and_close_lines_carry_the_connection() -> None:
    """The first-message rejection and websockets' close line carry the route pattern and IP, and no user when unset."""
    with captured(JsonFormatter(), "wsroute", "websockets") as stream:
        async with serve_app(make_app()) as server, server.connect("/play") as ws:
            await ws.send('{"type": "leave"}')
            await ws.wait_closed()
            await asyncio.sleep(0.05)  # let the server log its side of the close
    entries = json_lines(stream)
    (rejected,) = [e for e in entries if e["message"].startswith("first message rejected")]
    assert rejected["message"] == "first message rejected with 1008: unknown message type 'leave' (expected: join)"
    assert (rejected["route"], rejected["client_ip"]) == ("/play", "127.0.0.1")
    assert "user_id" not in rejected
    closed = [e for e in entries if e["message"] == "connection closed"]
    assert closed and all(e["route"] == "/play" and e["conn_id"] == rejected["conn_id"] for e in closed)


async def test_slow_consumer_line_in_json_has_the_fields() -> None:
    """The hub's slow-consumer line, logged through conn.logger, has the four fields as JSON keys."""
    app = make_app()
    options: dict[str, Any] = {"compression": None, "max_size": None, "close_timeout": 0.5}
    with captured(JsonFormatter(), "websockets") as stream:
        async with serve_app(app) as server, server.connect("/feed?user=carol", **options) as ws:
            assert await ws.recv() == "ready"  # and never reads again
            for _ in range(2000):  # bounded: 2,000 x 64 KiB is far beyond every buffer
                await app.hub.broadcast(bytes(64 * 1024))
                await asyncio.sleep(0)
                if app.hub.stats.slow_disconnects:
                    break
    (entry,) = [e for e in json_lines(stream) if e["message"].startswith("closing slow consumer")]
    assert (entry["route"], entry["client_ip"], entry["user_id"]) == ("/feed", "127.0.0.1", "carol")
    assert entry["message"].startswith(f"closing slow consumer /feed from 127.0.0.1 user carol (id {entry['conn_id']})")


def test_text_suffix_is_left_out_when_the_message_names_the_connection() -> None:
    """A hub line that passes Who(conn) gets no second description from the text format."""

    class Conn:
        id = "0123456789abcdef"
        route = None
        request = None
        remote_address = ("192.0.2.1", 5000)

    from wsroute.hub.who import Who

    logger = logging.getLogger("tests.logformat")
    with captured(logging.Formatter(TEXT), "tests.logformat") as stream:
        logger.info("closing %s", Who(Conn()), extra={"websocket": Conn()})
        logger.info("plain", extra={"websocket": Conn()})
    assert stream.getvalue().splitlines() == [
        "INFO tests.logformat: closing ? from 192.0.2.1 (id 01234567)",
        "INFO tests.logformat: plain [conn 01234567 route None ip 192.0.2.1]",
    ]


def test_configure_logging_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """WSROUTE_LOG_FORMAT=json installs the JSON formatter; an unknown format is a ValueError naming the choices."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("websockets").level)
    try:
        monkeypatch.setenv("WSROUTE_LOG_FORMAT", "json")
        configure_logging("info", prefix="[worker 2 pid 9] ")
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter) and handler.formatter.worker == "worker 2 pid 9"
        with pytest.raises(ValueError, match="expected text or json"):
            configure_logging("info", log_format="xml")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("websockets").setLevel(saved[2])
