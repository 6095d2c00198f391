"""Stuck work never keeps a server from exiting, reloading or replacing a worker.

Real ``python -m wsroute run`` processes serve ``tests/cli/stuckapp.py``,
whose handlers wait for a thread that sleeps an hour (``/thread``) or block
the event loop for an hour (``/block``). Every wait below is bounded by the
documented worst case: the drain timeout plus ``STOP_GRACE`` (plus the
supervisor's ``KILL_MARGIN`` where it has to kill).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from pathlib import Path

import pytest
from clitest import Server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

import wsroute
from wsroute.server import STOP_GRACE
from wsroute.serving import CLOSE_GRACE, SHUTDOWN_GRACE
from wsroute.workers import KILL_MARGIN

pytestmark = pytest.mark.timeout(90)

HERE = str(Path(__file__).parent)
APP = ("stuckapp:app", "--app-dir", HERE)
DRAIN = 0.5
#: The most seconds a stop may take, with slack for a loaded test machine.
BOUND = DRAIN + STOP_GRACE + 5
THREAD_LEFT = "exiting without waiting for 1 thread(s) still running: asyncio_0 (time.sleep for route /thread)"


async def stuck_client(server: Server, path: str = "/thread") -> object:
    """A client whose handler is now stuck (it answered before getting stuck)."""
    ws = await connect(server.url + path, open_timeout=5)
    assert (await asyncio.wait_for(ws.recv(), 5)).startswith(("waiting", "blocking"))
    return ws


async def pids(server: Server, want: int, attempts: int = 40) -> set[str]:
    """The PIDs answering /pid, trying until ``want`` distinct ones answered."""
    seen: set[str] = set()
    for _ in range(attempts):
        try:
            async with connect(server.url + "/pid", open_timeout=5) as ws:
                seen.add(await asyncio.wait_for(ws.recv(), 5))
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
            await asyncio.sleep(0.05)
            continue
        if len(seen) >= want:
            break
    return seen


async def test_sigterm_exits_although_a_thread_never_returns(start_server) -> None:
    """SIGTERM with a handler waiting on an hour-long thread exits 0, naming the route and the thread left."""
    server = start_server(*APP, "--drain-timeout", str(DRAIN))
    ws = await stuck_client(server)
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(BOUND) == 0
    log = server.log
    assert f"drain timeout ({DRAIN:g}s): cancelling 1 handler(s) still running: /thread" in log
    assert THREAD_LEFT in log
    assert "stopped in" in log
    await ws.close()


async def test_sigint_exits_although_a_thread_never_returns(start_server) -> None:
    """SIGINT (Ctrl-C) takes the same bounded path as SIGTERM, with the uvloop-free asyncio loop too."""
    server = start_server(*APP, "--drain-timeout", str(DRAIN), "--loop", "asyncio")
    ws = await stuck_client(server)
    server.signal(signal.SIGINT)
    assert await server.wait_exit(BOUND) == 0
    assert THREAD_LEFT in server.log
    await ws.close()


async def test_second_signal_exits_1_while_a_thread_is_stuck(start_server) -> None:
    """A second SIGTERM during a long drain exits at once with status 1."""
    server = start_server(*APP, "--drain-timeout", "60")
    ws = await stuck_client(server)
    server.signal(signal.SIGTERM)
    server.wait_log("SIGTERM: stopping")
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(5) == 1
    assert "SIGTERM again: stopping now without draining (exit status 1)" in server.log
    await ws.close()


async def test_second_signal_exits_1_while_the_event_loop_is_blocked(start_server) -> None:
    """With the event loop blocked by time.sleep(), the second SIGTERM still exits with status 1."""
    server = start_server(*APP, "--drain-timeout", "60")
    ws = await stuck_client(server, "/block")
    server.signal(signal.SIGTERM)
    await asyncio.sleep(0.2)  # the first signal cannot start a drain: the loop is blocked
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(5) == 1
    assert "SIGTERM again: stopping now without draining (exit status 1)" in server.log
    await ws.close()


async def test_reload_replaces_a_server_whose_thread_is_stuck(tmp_path: Path, start_server) -> None:
    """--reload after an edit starts the new code although the old process had a thread that never returns."""
    pytest.importorskip("watchfiles")
    source = (
        "import asyncio, time\nimport wsroute\napp = wsroute.App()\n\n@app.route('/v')\nasync def v(ws):\n"
        "    await ws.send({!r})\n    await asyncio.to_thread(time.sleep, 3600)\n"
    )
    module = tmp_path / "stuckreload.py"
    module.write_text(source.format("one"))
    server = start_server("stuckreload:app", "--reload", "--app-dir", str(tmp_path), "--drain-timeout", str(DRAIN))
    server.wait_log("watching")
    ws = await connect(server.url + "/v", open_timeout=5)
    assert await ws.recv() == "one"
    module.write_text(source.format("two"))
    await asyncio.wait_for(ws.wait_closed(), BOUND)
    assert ws.close_code == 1012
    server.wait_log("exiting without waiting for 1 thread(s) still running: asyncio_0 (time.sleep for route /v)",
                    timeout=BOUND)
    assert await server.first_message_until("/v", "two", timeout=20) == "two", server.log
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(BOUND) == 0


async def test_sighup_replaces_workers_whose_threads_are_stuck(start_server) -> None:
    """--workers 2: SIGHUP replaces both workers although stuck threads run in them; then SIGTERM exits 0."""
    server = start_server(*APP, "--workers", "2", "--drain-timeout", str(DRAIN))
    server.wait_log("all 2 worker process(es) ready", timeout=30)
    before = await pids(server, 2)
    assert len(before) == 2
    clients = [await stuck_client(server) for _ in range(4)]
    server.signal(signal.SIGHUP)
    for ws in clients:
        await asyncio.wait_for(ws.wait_closed(), BOUND)
        assert ws.close_code == 1012
    deadline = time.monotonic() + BOUND + 20
    after: set[str] = set()
    while time.monotonic() < deadline and not (len(after) == 2 and not after & before):
        after = await pids(server, 2, attempts=10)
    assert len(after) == 2 and not after & before, (before, after, server.log)
    assert re.search(r"exiting without waiting for \d+ thread\(s\) still running: asyncio_", server.log), server.log
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(BOUND) == 0


async def test_supervisor_kills_a_worker_that_cannot_stop(start_server) -> None:
    """--workers 2: a worker whose event loop is blocked is killed after the bound, and the exit status is 1."""
    server = start_server(*APP, "--workers", "2", "--drain-timeout", str(DRAIN))
    server.wait_log("all 2 worker process(es) ready", timeout=30)
    ws = await stuck_client(server, "/block")
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(DRAIN + STOP_GRACE + KILL_MARGIN + 10) == 1
    log = server.log
    assert re.search(r"worker \d pid \d+ still running after being told to stop: killing it \(SIGKILL\)", log), log
    assert re.search(r"worker \d pid \d+ exited \(killed by SIGKILL\)", log), log
    await ws.close()


async def test_killed_worker_is_replaced_and_the_stop_stays_bounded(start_server) -> None:
    """--workers 2: a worker killed with SIGKILL is replaced; SIGTERM with stuck threads then exits 0 in time."""
    server = start_server(*APP, "--workers", "2", "--drain-timeout", str(DRAIN))
    server.wait_log("all 2 worker process(es) ready", timeout=30)
    before = await pids(server, 2)
    victim = min(before)
    os.kill(int(victim), signal.SIGKILL)
    server.wait_log(f"pid {victim} died (killed by SIGKILL); restarting it", timeout=10)
    deadline = time.monotonic() + 20
    after: set[str] = set()
    while time.monotonic() < deadline and not (len(after) == 2 and victim not in after):
        after = await pids(server, 2, attempts=10)
    assert len(after) == 2 and victim not in after, (before, after, server.log)
    clients = [await stuck_client(server) for _ in range(4)]
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(BOUND) == 0
    assert re.search(r"exiting without waiting for \d+ thread\(s\) still running: asyncio_", server.log), server.log
    for ws in clients:
        await ws.close()


async def test_stop_abandons_a_handler_that_ignores_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    """Serving.stop() returns although a handler swallows its cancellation, and logs the route it abandoned."""
    app = wsroute.App()
    release = asyncio.Event()

    @app.route("/stubborn")
    async def stubborn(ws):
        await ws.send("here")
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # refuses to stop
                await release.wait()

    caplog.set_level(logging.INFO, "wsroute.server")
    serving = app.serve("127.0.0.1", 0)
    server = await serving.start()
    port = server.sockets[0].getsockname()[1]
    async with connect(f"ws://127.0.0.1:{port}/stubborn", open_timeout=5) as ws:
        assert await ws.recv() == "here"
        await asyncio.wait_for(serving.stop(timeout=0.2), 0.2 + STOP_GRACE + 5)
    release.set()
    messages = [r.getMessage() for r in caplog.records]
    assert "drain timeout (0.2s): cancelling 1 handler(s) still running: /stubborn" in messages
    assert f"1 handler(s) still running {CLOSE_GRACE:g}s after being cancelled, abandoned: /stubborn" in messages
    assert app.shutting_down


async def test_stop_abandons_a_shutdown_hook_that_never_returns(caplog: pytest.LogCaptureFixture) -> None:
    """A wsroute_shutdown hook that never returns is abandoned SHUTDOWN_GRACE seconds after the drain, and logged."""

    class Hangs:
        @wsroute.hookimpl
        async def wsroute_shutdown(self, app: wsroute.App) -> None:
            await asyncio.sleep(3600)

    app = wsroute.App()
    app.plugins.register(Hangs(), "hangs")
    serving = app.serve("127.0.0.1", 0)
    await serving.start()
    await asyncio.wait_for(serving.stop(timeout=0), SHUTDOWN_GRACE + 5)
    messages = [r.getMessage() for r in caplog.records]
    assert f"app shutdown (hub, wsroute_shutdown hooks) still running after {SHUTDOWN_GRACE:g}s: abandoned" in messages


async def test_sigterm_during_a_restart_drains_on_and_exits_0(start_server) -> None:
    """--workers 2: SIGTERM while workers drain for SIGHUP is not a second signal: the exit status is 0."""
    server = start_server(*APP, "--workers", "2", "--drain-timeout", "2")
    server.wait_log("all 2 worker process(es) ready", timeout=30)
    clients = [await stuck_client(server) for _ in range(2)]
    server.signal(signal.SIGHUP)
    server.wait_log("SIGHUP (restart): stopping, draining connections")
    server.signal(signal.SIGTERM)
    status = await server.wait_exit(2 + STOP_GRACE + 5)
    log = server.log
    assert status == 0, log
    assert "SIGTERM: already stopping for a restart; draining on" in log
    assert "stopping now without draining" not in log
    for ws in clients:
        await ws.close()
