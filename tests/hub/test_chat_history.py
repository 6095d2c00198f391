"""The chat example (examples/chat) recovers a room's messages across a server restart (issue 15).

Real ``wsroute run`` processes of the example on a real Redis, and
websockets clients that do what the browser page does: keep the position
of the last envelope and reconnect with ``?since=``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from historytest import Server, wsroute_env
from timing import timeout
from websockets.asyncio.client import ClientConnection, connect

CHAT = Path(__file__).parents[2] / "examples" / "chat"


def chat_server(tmp: Path, *args: str, port: int | None = None) -> Server:
    """``wsroute run app:app`` in examples/chat, ready to accept connections."""
    server = Server(tmp, "app:app", "--app-dir", str(CHAT), *args, port=port, env=wsroute_env())
    server.wait_ready()
    return server


class ChatClient:
    """A chat member that keeps its last position, like the browser page."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.position = ""
        self.said: list[str] = []
        self.ws: ClientConnection | None = None

    async def join(self, url: str) -> dict[str, Any]:
        """Connect to the lobby since the last position; return the history report."""
        self.ws = await connect(f"{url}/rooms/lobby?token={self.user}&since={self.position}")
        while True:
            message = await self.recv()
            if message.get("type") == "history":
                self.position = message["position"]
                return message

    async def recv(self) -> dict[str, Any]:
        """One message; a room envelope updates the position and the transcript."""
        assert self.ws is not None
        async with asyncio.timeout(timeout(10)):
            message: dict[str, Any] = json.loads(await self.ws.recv())
        if "offset" in message:
            self.position = f"{message['offset']}:{message['epoch']}"
            if message["data"]["type"] == "say":
                self.said.append(f"{message['data']['user']}: {message['data']['text']}")
        return message

    async def wait_said(self, count: int) -> None:
        while len(self.said) < count:
            await self.recv()

    async def say(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "say", "text": text}))


@pytest.mark.asyncio
async def test_chat_shows_what_was_said_while_the_server_restarted(tmp_path: Path, redis_url: str) -> None:
    """Alice's server is killed and restarted; meanwhile Bob talks on another; Alice gets exactly those lines."""
    a = chat_server(tmp_path, "--broker", redis_url)
    b = chat_server(tmp_path, "--broker", redis_url)
    alice, bob = ChatClient("alice"), ChatClient("bob")
    try:
        await alice.join(a.url)
        await bob.join(b.url)
        await bob.say("before")
        await alice.wait_said(1)
        a.kill()
        await bob.say("during 1")
        await bob.say("during 2")
        await bob.wait_said(3)
        a = chat_server(tmp_path, "--broker", redis_url, port=a.port)
        report = await alice.join(a.url)
        assert (report["recovered"], report["missed"]) == (True, 2)
        assert alice.said == ["bob: before", "bob: during 1", "bob: during 2"]
        await bob.say("after")
        await alice.wait_said(4)
        assert alice.said[-1] == "bob: after"
        assert report["position"].split(":")[0] == "3"
    finally:
        for client in (alice, bob):
            if client.ws is not None:
                await client.ws.close()
        a.kill()
        b.kill()


@pytest.mark.asyncio
async def test_chat_on_one_memory_process_reports_lost_history_after_a_restart(tmp_path: Path) -> None:
    """With the memory broker a restart loses the history: the client is told recovered=false, not fed a gap."""
    server = chat_server(tmp_path)
    alice = ChatClient("alice")
    try:
        await alice.join(server.url)
        await alice.say("hello")
        await alice.wait_said(1)
        server.kill()
        server = chat_server(tmp_path, port=server.port)
        report = await alice.join(server.url)
        assert (report["recovered"], report["missed"]) == (False, 0)
        assert report["position"].startswith("0:")
    finally:
        if alice.ws is not None:
            await alice.ws.close()
        server.kill()


@pytest.mark.asyncio
async def test_chat_refuses_a_malformed_position_with_1008(tmp_path: Path) -> None:
    """?since= that is not '<offset>:<epoch>' closes the connection with 1008 and the reason, never 1011."""
    server = chat_server(tmp_path)
    try:
        async with connect(f"{server.url}/rooms/lobby?token=eve&since=yesterday") as ws:
            await asyncio.wait_for(ws.wait_closed(), timeout(10))
            reason = "position 'yesterday' is not '<offset>:<epoch>' (e.g. '42:e1')"
            assert (ws.close_code, ws.close_reason) == (1008, reason)
        assert "Traceback" not in server.log
    finally:
        server.kill()
