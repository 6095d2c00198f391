"""Presence you can read back, with every broker (issue 10, item 3).

After ``subscribe(..., presence=True)``, ``unsubscribe`` or a disconnect
returns, this process's ``hub.presence()`` reflects it at once -- no
polling -- and with Redis, another process's ``presence()`` reflects a join
or an unsubscribe as soon as the call returned. Each check runs 20 times so
that a race shows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hubtest import eventually

import wsroute
from wsroute.hub import Hub
from wsroute.testing import TestServer, serve_app

ROUNDS = 20


@pytest.fixture(params=["memory", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each test runs with the memory broker and with a real Redis."""
    yield None if request.param == "memory" else request.getfixturevalue("redis_url")


def make_app(broker: str | None, other: Hub | None, plugins: tuple[object, ...]) -> wsroute.App:
    """A room whose handler reads presence right after joining and leaving."""
    app = wsroute.App(load_entrypoints=False, broker=broker, plugins=plugins)

    @app.middleware
    def user(conn: Any, request: Any) -> None:
        conn.ctx.user_id = conn.query["user"][0]

    async def seen() -> dict[str, list[str]]:
        report = {"here": sorted(await app.hub.presence("room"))}
        if other is not None:
            report["other"] = sorted(await other.presence("room"))
        return report

    @app.route("/room")
    class Room(wsroute.Handler):
        async def on_connect(self) -> None:
            await self.subscribe("room", presence=True)
            await self.ws.send_json(await seen())

        @wsroute.on("leave")
        async def leave(self, data: Any) -> None:
            await self.unsubscribe("room")
            await self.ws.send_json(await seen())

    return app


@asynccontextmanager
async def serving(
    broker: str | None, plugins: tuple[object, ...] = ()
) -> AsyncIterator[tuple[TestServer, Hub | None]]:
    """The app, plus with Redis a second hub standing for another process."""
    other = Hub(broker=broker) if broker is not None else None
    if other is not None:
        await other.start()
    try:
        async with serve_app(make_app(broker, other, plugins)) as server:
            yield server, other
    finally:
        if other is not None:
            await other.stop()


async def recv_json(ws: Any) -> Any:
    """One JSON message, failing after 10 s."""
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


@pytest.mark.asyncio
async def test_a_join_is_read_back_as_soon_as_subscribe_returns(broker: str | None) -> None:
    """Right after subscribe(presence=True), presence() here (and in another process) lists the new user, 20 times."""
    async with serving(broker) as (server, other):
        clients = []
        for i in range(ROUNDS):
            ws = await server.connect(f"/room?user=u{i:02}")
            clients.append(ws)
            expected = [f"u{j:02}" for j in range(i + 1)]
            report = await recv_json(ws)
            assert report["here"] == expected
            if other is not None:
                assert report["other"] == expected
        for ws in clients:
            await ws.close()


@pytest.mark.asyncio
async def test_an_unsubscribe_is_read_back_as_soon_as_it_returns(broker: str | None) -> None:
    """Right after unsubscribe(), presence() here (and in another process) no longer lists the user, 20 times."""
    async with serving(broker) as (server, other):
        clients = [await server.connect(f"/room?user=u{i:02}") for i in range(ROUNDS)]
        for ws in clients:
            await recv_json(ws)
        for i, ws in enumerate(clients):
            await ws.send(json.dumps({"type": "leave"}))
            expected = [f"u{j:02}" for j in range(i + 1, ROUNDS)]
            report = await recv_json(ws)
            assert report["here"] == expected
            if other is not None:
                assert report["other"] == expected
        for ws in clients:
            await ws.close()


class PresenceAfterClose:
    """A plugin reading presence right after the hub detached a closed connection."""

    def __init__(self) -> None:
        self.seen: list[set[str]] = []

    @wsroute.hookimpl
    async def wsroute_connection_closed(self, app: Any, conn: Any, code: int | None, reason: str) -> None:
        self.seen.append(await app.hub.presence("room"))


@pytest.mark.asyncio
async def test_a_disconnect_is_read_back_once_the_connection_is_detached(broker: str | None) -> None:
    """After a disconnect, presence() here no longer lists the user (another process: shortly after), 20 times."""
    observer = PresenceAfterClose()
    async with serving(broker, (observer,)) as (server, other):
        clients = [await server.connect(f"/room?user=u{i:02}") for i in range(ROUNDS)]
        for ws in clients:
            await recv_json(ws)
        for i, ws in enumerate(clients):
            await ws.close()
            await eventually(lambda n=i + 1: len(observer.seen) == n)
            expected = {f"u{j:02}" for j in range(i + 1, ROUNDS)}
            assert observer.seen[i] == expected
            if other is not None:
                await eventually(lambda o=other, e=expected: _equals(o.presence("room"), e))


async def _equals(coro: Any, expected: object) -> bool:
    return bool(await coro == expected)
