"""``app.run()`` as a user runs it: a real process, stopped by a signal."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise AssertionError(f"nothing listened on port {port} within {timeout}s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_serves_and_stops_cleanly_on_signal(signum) -> None:
    """The quickstart serves, and on SIGTERM/SIGINT closes clients with 1001 and exits 0."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(EXAMPLE), str(port)], stderr=subprocess.PIPE)
    try:
        await wait_for_port(port, process)
        async with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            process.send_signal(signum)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
        returncode = await asyncio.to_thread(process.wait, 15)
        assert returncode == 0, process.stderr.read().decode() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
