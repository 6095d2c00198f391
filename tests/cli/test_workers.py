"""``--workers N`` (one port, several processes) and ``--reload``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from clitest import Server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

APP = "examples.cli_app:app"

pytestmark = pytest.mark.timeout(90)


async def pids_answering(server: Server, attempts: int = 40, want: int = 2) -> set[str]:
    """Connect up to ``attempts`` times to /pid; stop early once ``want`` PIDs answered.

    A connection queued in a worker that just died is reset (SO_REUSEPORT
    gives each worker its own accept queue): such an attempt is skipped.
    """
    seen: set[str] = set()
    for _ in range(attempts):
        try:
            async with connect(server.url + "/pid", open_timeout=5) as ws:
                seen.add(await asyncio.wait_for(ws.recv(), 5))
        except (OSError, InvalidHandshake, ConnectionClosed):
            await asyncio.sleep(0.05)
            continue
        if len(seen) >= want:
            break
    return seen


def wait_workers_ready(server: Server, count: int) -> None:
    server.wait_log(f"all {count} worker process(es) ready", timeout=30)


async def test_two_workers_answer_on_one_port(start_server) -> None:
    """With --workers 2, connections to one port are answered by two different processes."""
    server = start_server(APP, "--workers", "2")
    wait_workers_ready(server, 2)
    pids = await pids_answering(server)
    assert len(pids) == 2
    assert str(server.proc.pid) not in pids
    assert re.search(r"\[worker 1 pid \d+\] wsroute.server: wsroute serving on", server.log)
    assert re.search(r"\[worker 2 pid \d+\] wsroute.server: wsroute serving on", server.log)


async def test_a_killed_worker_is_restarted(start_server) -> None:
    """Killing one worker keeps the port answering, and the supervisor starts a replacement."""
    server = start_server(APP, "--workers", "2")
    wait_workers_ready(server, 2)
    before = await pids_answering(server)
    victim = min(before)
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + 20
    after: set[str] = set()
    while time.monotonic() < deadline:
        after = await pids_answering(server, attempts=10)
        if len(after) == 2 and victim not in after:
            break
        await asyncio.sleep(0.1)
    assert len(after) == 2 and victim not in after, (before, after, server.log)
    assert f"pid {victim} died (killed by SIGKILL); restarting it" in server.log


async def test_sigterm_to_the_supervisor_drains_every_worker(start_server) -> None:
    """SIGTERM to the supervisor closes every worker's connections with 1001 and exits 0."""
    server = start_server(APP, "--workers", "2", "--drain-timeout", "2")
    wait_workers_ready(server, 2)
    clients = [await connect(server.url + "/echo", open_timeout=5) for _ in range(6)]
    server.signal(signal.SIGTERM)
    for ws in clients:
        await asyncio.wait_for(ws.wait_closed(), 8)
        assert ws.close_code == 1001
    assert await server.wait_exit(10) == 0
    assert "worker 1 pid" in server.log and "exited (exit code 0)" in server.log


async def test_sighup_restarts_workers_with_1012(start_server) -> None:
    """SIGHUP to the supervisor restarts the workers; their clients are closed with 1012."""
    server = start_server(APP, "--workers", "2", "--drain-timeout", "2")
    wait_workers_ready(server, 2)
    before = await pids_answering(server)
    ws = await connect(server.url + "/echo", open_timeout=5)
    server.signal(signal.SIGHUP)
    await asyncio.wait_for(ws.wait_closed(), 8)
    assert ws.close_code == 1012
    deadline = time.monotonic() + 20
    after: set[str] = set()
    while time.monotonic() < deadline and not (len(after) == 2 and not after & before):
        after = await pids_answering(server, attempts=10)
    assert len(after) == 2 and not after & before, (before, after)


async def test_worker_start_up_error_stops_the_supervisor(tmp_path: Path, start_server) -> None:
    """A worker that cannot load the app makes the supervisor exit 1 with the worker's message."""
    server = start_server("examples.cli_app:nope", "--workers", "2", ready=False)
    assert await server.wait_exit(30) == 1
    assert 'Error: Attribute "nope" not found in module "examples.cli_app".' in server.log


async def test_reload_restarts_on_change(tmp_path: Path, start_server) -> None:
    """--reload restarts the server when a Python file changes, closing clients with 1012."""
    pytest.importorskip("watchfiles")
    source = (
        "import wsroute\napp = wsroute.App()\n\n@app.route('/v')\nasync def v(ws):\n"
        "    await ws.send({!r})\n    await ws.wait_closed()\n"
    )
    module = tmp_path / "reloadme.py"
    module.write_text(source.format("one"))
    server = start_server("reloadme:app", "--reload", "--app-dir", str(tmp_path), "--drain-timeout", "2")
    server.wait_log("watching")
    ws = await connect(server.url + "/v", open_timeout=5)
    assert await ws.recv() == "one"
    module.write_text(source.format("two"))
    await asyncio.wait_for(ws.wait_closed(), 15)
    assert ws.close_code == 1012
    assert await server.first_message_until("/v", "two", timeout=20) == "two", server.log
    assert "changes detected in" in server.log
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(10) == 0


async def test_reload_after_a_failed_reload_exits_0_on_ctrl_c(tmp_path: Path, start_server) -> None:
    """--reload: a broken edit, then a fixed one, then SIGINT: the exit status is 0, as the log says."""
    pytest.importorskip("watchfiles")
    source = "import wsroute\napp = wsroute.App()\n\n@app.route('/v')\nasync def v(ws):\n    await ws.send({!r})\n"
    module = tmp_path / "flaky.py"
    module.write_text(source.format("one"))
    server = start_server("flaky:app", "--reload", "--app-dir", str(tmp_path), "--drain-timeout", "1")
    server.wait_log("watching")
    server.wait_log("server 1 pid", timeout=20)
    module.write_text("import wsroute\napp = wsroute.App(\n")  # a syntax error
    server.wait_log("failed to start; waiting for a change to reload", timeout=30)
    module.write_text(source.format("two"))
    assert await server.first_message_until("/v", "two", timeout=30) == "two", server.log
    server.signal(signal.SIGINT)
    assert await server.wait_exit(15) == 0
    assert re.search(r"server 1 pid \d+ exited \(exit code 0\)", server.log), server.log
