"""``wsroute run`` under abuse, as real processes: descriptor exhaustion, secrets in debug logs, CLI limits."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import subprocess
import sys
import time

import pytest
from clitest import ROOT, free_port, wsroute_env
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

pytestmark = pytest.mark.timeout(90)

APP = "examples.cli_app:app"


def _limit_descriptors() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def _echo(url: str) -> str:
    async with connect(url + "/echo", open_timeout=5) as ws:
        await ws.send("hi")
        return str(await asyncio.wait_for(ws.recv(), 5))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_descriptor_exhaustion_logs_one_line_per_interval_and_service_resumes(tmp_path, loop: str) -> None:
    """With ulimit -n 256 and 400 idle sockets, accept errors log at most a few lines and service resumes."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsroute", "run", APP, "--port", str(port), "--loop", loop,
             "--max-connections", "100000"],  # past the descriptors on purpose: accept() itself fails
            cwd=ROOT, env=wsroute_env(), stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_descriptors,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "serving on" not in log_path.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        sockets = []
        for _ in range(400):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # non-blocking: the kernel completes it
                sock.connect(("127.0.0.1", port))
            sockets.append(sock)
        await asyncio.sleep(3)
        for sock in sockets:
            sock.close()
        answer = None
        for _ in range(100):  # bounded: the loop retries accept() on its own
            try:
                answer = await _echo(f"ws://127.0.0.1:{port}")
                break
            except (OSError, TimeoutError, InvalidStatus, InvalidMessage):  # closed unanswered while recovering
                await asyncio.sleep(0.2)
        assert answer == "hi"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log_path.read_text()
    assert "Traceback" not in text
    assert text.count("accept() failed") <= 2
    assert len(text) < 4000


async def test_default_max_connections_answers_503_before_descriptors_run_out(tmp_path) -> None:
    """With ulimit -n 256 and the default max_connections, extra clients get 503 and nothing fails."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsroute", "run", APP, "--port", str(port), "--loop", "asyncio"],
            cwd=ROOT, env=wsroute_env(), stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_descriptors,
            start_new_session=True,
        )
    clients = []
    try:
        deadline = time.monotonic() + 20
        while "serving on" not in log_path.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        statuses = []
        for _ in range(220):
            try:
                clients.append(await connect(f"ws://127.0.0.1:{port}/echo", open_timeout=5))
            except InvalidStatus as exc:
                statuses.append(exc.response.status_code)
        assert len(clients) == 256 - 64  # the reserve (64 descriptors) leaves room for everything else
        assert statuses == [503] * (220 - 192)
    finally:
        for ws in clients:
            await ws.close()
        proc.terminate()
        proc.wait(timeout=20)
    text = log_path.read_text()
    assert "file descriptors: soft limit 256 (was 256), hard limit 256" in text
    assert "Traceback" not in text and "accept() failed" not in text


async def test_debug_log_never_shows_credentials(tmp_path) -> None:
    """At --log-level debug, a bearer token, a ?token= value and a --redact'ed header never reach the log."""
    app_file = tmp_path / "secretapp.py"
    app_file.write_text(
        "import wsroute\n"
        "app = wsroute.App(load_entrypoints=False)\n"
        "async def check(token):\n"
        "    return 'alice' if token == 's3cret' else None\n"
        "@app.route('/q', middleware=[wsroute.query_token_auth(check, param='access')])\n"
        "async def q(ws):\n"
        "    await ws.send('ok')\n"
        "@app.route('/h', middleware=[wsroute.bearer_auth(check)])\n"
        "async def h(ws):\n"
        "    await ws.send('ok')\n"
    )
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsroute", "run", "secretapp:app", "--app-dir", str(tmp_path),
             "--port", str(port), "--log-level", "debug", "--redact", "X-Api-Key"],
            cwd=ROOT, env=wsroute_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "serving on" not in log_path.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        url = f"ws://127.0.0.1:{port}"
        headers = {"Authorization": "Bearer s3cret", "X-Api-Key": "s3cret", "Cookie": "session=s3cret"}
        async with connect(url + "/h", additional_headers=headers, open_timeout=5) as ws:
            assert await ws.recv() == "ok"
        async with connect(url + "/q?access=s3cret&token=s3cret", open_timeout=5) as ws:
            assert await ws.recv() == "ok"
        with pytest.raises(InvalidStatus):
            async with connect(url + "/q?access=wrong-s3cret", open_timeout=5):
                pass
        await asyncio.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log_path.read_text()
    assert "GET /h" in text and "[redacted]" in text  # websockets' debug lines were logged, scrubbed
    assert text.count("s3cret") == 0


async def test_cli_limits_come_from_options_and_environment(start_server) -> None:
    """WSROUTE_MAX_CONNECTIONS_PER_IP=1 makes a second connection from one address get 429."""
    server = start_server(APP, env=wsroute_env(WSROUTE_MAX_CONNECTIONS_PER_IP="1"))
    async with connect(server.url + "/echo", open_timeout=5):
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.url + "/echo", open_timeout=5):
                pass
        assert info.value.response.status_code == 429
