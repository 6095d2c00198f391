"""examples/scale: two worker processes on a real Redis share a room, with the README's commands."""

from __future__ import annotations

import asyncio
import re

from exampletest import Server, command_with, error_lines, free_port, readme_commands, run
from hubtest import RedisProcess

COMMANDS = readme_commands("scale")


async def test_two_processes_share_a_room_through_redis(redis_process: RedisProcess) -> None:
    """ann is told, across processes, that bob joined, and gets bob's message from the other worker."""
    port = free_port()
    serve = command_with(COMMANDS, "wsroute run", {"8765": port, "6379": redis_process.port})
    assert "--workers 2" in serve
    with Server(serve, port) as server:
        # The port answers once one worker listens; wait for the second too, or every
        # connection of the client may land on the first (a start-up race, not a bug).
        for _ in range(200):
            if server.log().count("wsroute serving on") >= 2:
                break
            await asyncio.sleep(0.05)
        assert server.log().count("wsroute serving on") >= 2, server.log()
        result = await asyncio.to_thread(run, command_with(COMMANDS, "client.py", {"8765": port}))
        assert result.returncode == 0, result.stdout + server.log()
        lines = result.stdout.splitlines()
        assert len(lines) == 4, result.stdout
        ann_pid = re.fullmatch(r"ann joined on process (\d+)", lines[0])
        bob = re.fullmatch(r"bob joined on process (\d+)", lines[1])
        assert ann_pid and bob and ann_pid[1] != bob[1], result.stdout
        assert lines[2] == "ann saw bob join"
        assert lines[3] == f"ann got 'hello from the other process' from bob (sent by process {bob[1]})"
        assert await asyncio.to_thread(server.stop) == 0
        assert error_lines(server.log()) == []
