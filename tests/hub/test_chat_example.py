"""The chat example (examples/chat) works end to end on the hub."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from wsroute.testing import serve_app

ENTERED = [{"type": "members", "users": ["alice"]}, {"type": "join", "user": "alice"}]
EXAMPLE = Path(__file__).parents[2] / "examples" / "chat" / "app.py"


def load_app() -> Any:
    """Import a fresh copy of the example's ``app``."""
    spec = importlib.util.spec_from_file_location("chat_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


async def recv_json(ws: Any) -> Any:
    """One JSON message, failing after 10 s."""
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


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
