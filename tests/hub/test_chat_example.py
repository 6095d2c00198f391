"""The chat example (examples/chat) works end to end on the hub."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hubtest import eventually

from wsroute.testing import serve_app

ENTERED = [{"type": "members", "users": ["alice"], "partial": False}, {"type": "join", "user": "alice"}]
EXAMPLE = Path(__file__).parents[2] / "examples" / "chat" / "app.py"


def load_app() -> Any:
    """Import a fresh copy of the example's ``app``."""
    spec = importlib.util.spec_from_file_location("chat_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


async def recv_json(ws: Any) -> Any:
    """One JSON message, failing after 10 s; a room message's envelope is unwrapped, the history report skipped."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "history":
                return message["data"] if "offset" in message else message


@pytest.mark.asyncio
async def test_chat_rooms_presence_and_whispers() -> None:
    """Members see joins, room messages and whispers addressed to them."""
    app = load_app()
    async with serve_app(app) as server:
        assert await server.rejection("/rooms/lobby") == 401
        async with server.connect("/rooms/lobby?token=alice") as alice:
            first = [await recv_json(alice), await recv_json(alice)]
            assert sorted(first, key=str) == sorted(ENTERED, key=str)
            async with server.connect("/rooms/lobby?token=bob") as bob:
                assert await recv_json(alice) == {"type": "join", "user": "bob"}
                await bob.send(json.dumps({"type": "say", "text": "hi all"}))
                assert await recv_json(alice) == {"type": "say", "user": "bob", "text": "hi all"}
                await bob.send(json.dumps({"type": "whisper", "to": "alice", "text": "psst"}))
                assert await recv_json(alice) == {"type": "whisper", "from": "bob", "text": "psst"}
            assert await recv_json(alice) == {"type": "leave", "user": "bob"}


@pytest.fixture(params=["memory", "redis"])
def chat_broker(request: pytest.FixtureRequest) -> str | None:
    """The example runs on the memory broker and on a real Redis."""
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


async def join_room(server: Any, count: int) -> list[Any]:
    """Connect ``count`` users one after the other; each sees every member so far."""
    clients = []
    for i in range(count):
        ws = await server.connect(f"/rooms/lobby?token=u{i}")
        clients.append(ws)
        while (message := await recv_json(ws))["type"] != "members":
            pass
        assert message["users"] == sorted(f"u{j}" for j in range(i + 1))
    return clients


def error_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every ERROR (or worse) record, with its logger name."""
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.asyncio
@pytest.mark.parametrize("count", [3, 10])
async def test_everyone_leaving_at_once_logs_no_error(
    count: int, chat_broker: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """When every member leaves at the same moment, the leave events aimed at closing connections log no ERROR."""
    caplog.set_level(logging.DEBUG)
    app = load_app()
    app.hub.use_broker(chat_broker)
    async with serve_app(app) as server:
        clients = await join_room(server, count)
        await asyncio.gather(*(ws.close() for ws in clients))
        await eventually(lambda: app.hub.connections == 0)
        assert await app.hub.presence("room:lobby") == set()
    assert error_records(caplog) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("count", [3, 10])
async def test_members_leaving_one_by_one_are_announced_without_errors(
    count: int, chat_broker: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Members leaving one after the other are announced to the last one, and nothing is logged as an ERROR."""
    caplog.set_level(logging.DEBUG)
    app = load_app()
    app.hub.use_broker(chat_broker)
    async with serve_app(app) as server:
        clients = await join_room(server, count)
        last = clients.pop()
        for ws in clients:
            await ws.close()
        left = []
        while len(left) < count - 1:
            message = await recv_json(last)
            if message["type"] == "leave":
                left.append(message["user"])
        assert sorted(left) == [f"u{i}" for i in range(count - 1)]
        await last.close()
    assert error_records(caplog) == []
