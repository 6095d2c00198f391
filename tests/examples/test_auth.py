"""examples/auth: its README's commands print what it says; tokens, Origins and admins checked before the upgrade."""

from __future__ import annotations

import asyncio
import json

from exampletest import EXAMPLES, Server, command_with, error_lines, free_port, readme_commands, run
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

COMMANDS = readme_commands("auth")


def readme_outputs() -> list[str]:
    """The lines of the README's ``text`` block: what the client commands print, in order."""
    text = (EXAMPLES / "auth" / "README.md").read_text()
    start = text.index("```text\n") + len("```text\n")
    return text[start : text.index("```", start)].splitlines()


async def status_of(url: str, headers: dict[str, str]) -> int:
    """The HTTP status a handshake to ``url`` with ``headers`` was refused with."""
    try:
        async with connect(url, additional_headers=headers):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code
    raise AssertionError(f"{url} with {headers} was accepted")


async def test_readme_client_commands_print_what_the_readme_shows() -> None:
    """Each client command of the README prints the README's line, against the README's server command."""
    port = free_port()
    clients = [command for command in COMMANDS if "client.py" in command]
    with Server(command_with(COMMANDS, "wsroute run", {"8765": port}), port) as server:
        printed = []
        for command in clients:
            result = await asyncio.to_thread(run, command.replace(" 8765", f" {port}"))
            assert result.returncode == 0, result.stdout
            printed.append(result.stdout.strip())
        assert printed == readme_outputs()
        assert server.stop() == 0
        assert error_lines(server.log()) == []


async def test_origin_allow_list_and_query_tokens() -> None:
    """A foreign Origin is refused even with a good token; an allowed one and ?token= reach the handler."""
    port = free_port()
    with Server(command_with(COMMANDS, "wsroute run", {"8765": port}), port) as server:
        base = f"ws://127.0.0.1:{port}"
        good = {"Authorization": "Bearer t-ann"}
        assert await status_of(f"{base}/me", {**good, "Origin": "https://evil.example"}) == 403
        assert await status_of(f"{base}/me?token=nope", {"Origin": "http://localhost:8000"}) == 401
        assert await status_of(f"{base}/me", {}) == 401
        async with connect(f"{base}/me?token=t-ann", origin="http://localhost:8000") as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv()) == {"type": "hello", "user": "ann", "admin": False}
            await ws.send("echo")
            assert await ws.recv() == "echo"
        assert server.stop() == 0
        assert error_lines(server.log()) == []
