"""examples/health: probed as a load balancer would, with the README's own commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from exampletest import Server, command_with, error_lines, free_port, readme_commands, run
from timing import timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

COMMANDS = readme_commands("health")
FLAG = "/tmp/wsroute-health-example.maintenance"


def probe(commands: list[str], needle: str, port: int, flag: Path) -> str:
    """Run the README command containing ``needle`` (port and flag file replaced); what it printed."""
    command = command_with(commands, needle, {"8765": port}).replace(FLAG, str(flag))
    result = run(command)
    assert result.returncode == 0, result.stdout
    return result.stdout.replace("\r\n", "\n")


async def test_load_balancer_probes_and_maintenance_flag(tmp_path: Path) -> None:
    """Liveness and readiness answer 200 with the configured headers; the maintenance flag turns readiness 503."""
    port = free_port()
    flag = tmp_path / "maintenance"
    env = {"MAINTENANCE_FILE": str(flag)}
    with Server(command_with(COMMANDS, "wsroute run", {"8765": port}), port, env) as server:
        live = await asyncio.to_thread(probe, COMMANDS, "-si http://127.0.0.1:8765/healthz", port, flag)
        assert live.startswith("HTTP/1.1 200 OK\n")
        assert "\nServer: health-example\n" in live
        assert "\nCache-Control: no-store\n" in live
        assert "\nX-Content-Type-Options: nosniff\n" in live
        assert live.endswith("\n\nOK")

        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert ws.response.headers["Server"] == "health-example"
            ready = await asyncio.to_thread(run, f"curl -si http://127.0.0.1:{port}/ready")
            assert ready.stdout.startswith("HTTP/1.1 200 OK")
            assert json.loads(ready.stdout.split("\n\n", 1)[1])["checks"]["maintenance"]["status"] == "pass"
            head = await asyncio.to_thread(probe, COMMANDS, "-sI", port, flag)
            assert head.startswith("HTTP/1.1 200 OK\n")

            await asyncio.to_thread(run, command_with(COMMANDS, "touch", {}).replace(FLAG, str(flag)))
            out = await asyncio.to_thread(run, f"curl -si http://127.0.0.1:{port}/ready")
            assert out.stdout.startswith("HTTP/1.1 503 Service Unavailable")
            body = json.loads(out.stdout.split("\n\n", 1)[1])
            assert body["status"] == "fail"
            assert body["checks"]["maintenance"]["status"] == "fail"
            await ws.send("still served")
            assert await ws.recv() == "still served"

            await asyncio.to_thread(run, command_with(COMMANDS, "rm ", {}).replace(FLAG, str(flag)))
            back = await asyncio.to_thread(run, f"curl -si http://127.0.0.1:{port}/ready")
            assert back.stdout.startswith("HTTP/1.1 200 OK")

            assert await asyncio.to_thread(server.stop) == 0  # SIGTERM: the open connection gets 1001
            try:
                async with asyncio.timeout(timeout(10)):
                    await ws.recv()
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1001
        assert error_lines(server.log()) == []
