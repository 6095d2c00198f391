"""Routing by path against a real server: 404 before the upgrade, params, query."""

from __future__ import annotations

import asyncio
import uuid

import wsroute
from wsroute.testing import serve_app


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.route("/blue")
    async def blue(ws):
        async for message in ws:
            await ws.send(message)

    @app.route("/items/{item_id:int}")
    async def item(ws, item_id):
        await ws.send_json({"item_id": item_id, "type": type(item_id).__name__, "params": ws.params["item_id"]})

    @app.route("/users/{user:uuid}/files/{rest:path}")
    async def files(ws, user, rest):
        await ws.send_json({"user": str(user), "rest": rest})

    @app.route("/query")
    async def query(ws):
        await ws.send_json({"path": ws.path, "query": ws.query})

    @app.route("/task")
    async def task(ws):
        current = asyncio.current_task()
        await ws.send(current.get_name() if current else "")

    return app


async def test_static_route_echoes() -> None:
    """A static route accepts the upgrade and runs its handler."""
    async with serve_app(make_app()) as server, server.connect("/blue") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"


async def test_unknown_path_gets_404_before_upgrade() -> None:
    """A path with no route is refused with HTTP 404 and never upgraded."""
    async with serve_app(make_app()) as server:
        assert await server.rejection("/red") == 404
        answer = await server.http_get("/red")
        assert answer.status == 404


async def test_converted_params_reach_the_handler() -> None:
    """``{item_id:int}`` arrives as an int, as a keyword and in ``ws.params``."""
    async with serve_app(make_app()) as server, server.connect("/items/42") as ws:
        assert await ws.recv() == '{"item_id":42,"type":"int","params":42}'


async def test_converter_rejection_gets_404() -> None:
    """A value the converter rejects (``/items/abc``) gets 404 and no handler runs."""
    async with serve_app(make_app()) as server:
        assert await server.rejection("/items/abc") == 404


async def test_uuid_and_path_converters() -> None:
    """uuid and path converters give a UUID and the rest of the path."""
    user = uuid.uuid4()
    async with serve_app(make_app()) as server, server.connect(f"/users/{user}/files/a/b.txt") as ws:
        assert await ws.recv() == f'{{"user":"{user}","rest":"a/b.txt"}}'


async def test_query_string_is_ignored_for_matching_and_parsed() -> None:
    """The query string does not affect matching and is available parsed."""
    async with serve_app(make_app()) as server, server.connect("/query?a=1&a=2&b=") as ws:
        assert await ws.recv() == '{"path":"/query","query":{"a":["1","2"],"b":[""]}}'
    async with serve_app(make_app()) as server:
        assert await server.rejection("/nope?x=/query") == 404


async def test_connection_task_is_named_after_its_route() -> None:
    """The task running a connection carries the route pattern in its name."""
    async with serve_app(make_app()) as server, server.connect("/task") as ws:
        assert await ws.recv() == "wsroute /task"


async def test_handler_return_closes_with_1000() -> None:
    """A function handler that returns closes the connection normally."""
    async with serve_app(make_app()) as server, server.connect("/items/1") as ws:
        await ws.recv()
        await ws.wait_closed()
        assert ws.close_code == 1000
