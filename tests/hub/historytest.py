"""Helpers for the history tests: ``wsroute run`` processes of ``history_app`` and its clients.

A :class:`Subscriber` reads what ``/sub/{name}`` sends -- replayed
envelopes, the ``{"recovery": ...}`` summary, live envelopes -- and keeps
every offset it ever received, across its connections, so a test can check
that each offset arrived exactly once and in order.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

import wsroute

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
sys.path.insert(0, str(Path(__file__).parents[1]))

from clitest import Server, wsroute_env
from timing import timeout

HERE = Path(__file__).parent


def load_app(monkeypatch: pytest.MonkeyPatch | None = None, **env: str) -> wsroute.App:
    """A fresh copy of ``history_app.app`` (its settings read from ``env``)."""
    if monkeypatch is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("history_app_copy", HERE / "history_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: wsroute.App = module.app
    return app


def start_server(tmp: Path, redis_url: str, **env: str) -> Server:
    """``wsroute run history_app:app --broker REDIS``: the app's memory broker is replaced at start-up."""
    server = Server(tmp, "history_app:app", "--app-dir", str(HERE), "--broker", redis_url,
                    env=wsroute_env(**env))
    server.wait_ready()
    return server


async def publish(url: str, name: str, messages: list[str], *, retry_for: float = 0) -> None:
    """Publish ``messages`` to ``h:<name>`` through a server, each acknowledged; retry while unavailable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout(retry_for)
    async with connect(f"{url}/pub/{name}") as ws:
        for message in messages:
            while True:
                await ws.send(message)
                async with asyncio.timeout(timeout(10)):
                    answer = await ws.recv()
                if answer == "ok":
                    break
                assert answer == "unavailable", answer
                assert loop.time() < deadline, "the broker stayed unavailable"
                await asyncio.sleep(timeout(0.05))


class Subscriber:
    """One client of ``/sub/{name}`` that reconnects with its last position."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.position = ""
        self.offsets: list[int] = []
        self.data: list[Any] = []
        self.ws: ClientConnection | None = None

    async def connect(self, url: str, since: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Connect since ``since`` (default: the last position seen); return (replayed, recovery)."""
        since = self.position if since is None else since
        self.ws = await connect(f"{url}/sub/{self.name}?since={since}")
        replayed = []
        while True:
            message = await self.recv()
            if "recovery" in message:
                recovery: dict[str, Any] = message["recovery"]
                self.position = recovery["position"]
                return replayed, recovery
            replayed.append(message)

    async def recv(self) -> dict[str, Any]:
        """One message; an envelope is recorded (offset, data, position)."""
        assert self.ws is not None
        async with asyncio.timeout(timeout(10)):
            message: dict[str, Any] = json.loads(await self.ws.recv())
        if "offset" in message:
            self.offsets.append(message["offset"])
            self.data.append(message["data"])
            self.position = f"{message['offset']}:{message['epoch']}"
        return message

    async def receive(self, count: int) -> list[dict[str, Any]]:
        """Exactly ``count`` envelopes."""
        return [await self.recv() for _ in range(count)]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None
