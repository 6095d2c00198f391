"""examples/first_message: the README's commands serve the game and play it; bad first messages are refused."""

from __future__ import annotations

import asyncio
import json
import re

from exampletest import Server, command_with, error_lines, free_port, readme_commands, run
from timing import timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

COMMANDS = readme_commands("first_message")


async def close_of(url: str, first: str | bytes) -> tuple[int, str]:
    """Send ``first`` as the first message; the close code and reason the server answered with."""
    async with connect(url) as ws:
        await ws.send(first)
        try:
            async with asyncio.timeout(timeout(10)):
                await ws.recv()
        except ConnectionClosedError as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("the server answered instead of closing")


async def test_readme_commands_serve_and_play_a_game() -> None:
    """The README's server command serves; its client command wins a game; stats count it; SIGTERM exits 0."""
    port = free_port()
    with Server(command_with(COMMANDS, "wsroute run", {"8765": port}), port) as server:
        played = await asyncio.to_thread(run, command_with(COMMANDS, "client.py", {"8765": port}))
        assert played.returncode == 0, played.stdout
        assert re.search(r"^won in \d+ tries$", played.stdout, flags=re.MULTILINE), played.stdout
        assert 'stats: {"type":"stats","played":1,"won":1}' in played.stdout
        url = f"ws://127.0.0.1:{port}/game"
        unknown = "unknown message type 'dance' (expected: start, stats)"
        assert await close_of(url, '{"type": "dance"}') == (1008, unknown)
        binary = "first message must be JSON text with a 'type' field, got binary"
        assert await close_of(url, b"\x01") == (1003, binary)
        bad_max = "'max' must be an integer from 1 to 1000000"
        assert await close_of(url, '{"type": "start", "max": 0}') == (1008, bad_max)
        async with connect(url) as ws:
            await ws.send('{"type": "start", "max": 1}')
            assert json.loads(await ws.recv()) == {"type": "started", "max": 1}
            await ws.send('{"type": "guess", "number": "one"}')
            assert json.loads(await ws.recv()) == {"type": "error", "message": "'number' must be an integer"}
            await ws.send('{"type": "guess", "number": 1}')
            assert json.loads(await ws.recv()) == {"type": "won", "tries": 1}
        assert server.stop() == 0
        assert error_lines(server.log()) == []
