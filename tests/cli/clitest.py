"""Helpers to run ``python -m wsroute`` as a real subprocess on a free port.

Every helper is bounded in time: readiness is polled (never a fixed sleep),
and every process is killed with its whole process group when a test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wsroute_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no inherited WSROUTE_* settings, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSROUTE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(
    *args: str, timeout: float = 30, cwd: Path = ROOT, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wsroute ARGS`` to completion and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "wsroute", *args],
        cwd=cwd, env=env or wsroute_env(), capture_output=True, text=True, timeout=timeout, **kwargs,
    )


class Server:
    """A ``wsroute run`` child process with helpers to reach and stop it."""

    def __init__(self, tmp: Path, *args: str, port: int | None = None, cwd: Path = ROOT,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port() if port is None else port
        self.log_path = tmp / f"server-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in kill()
        command = [sys.executable, "-m", "wsroute", "run", *args]
        if "--uds" not in args and not any(a.startswith("--port") for a in args) and port != 0:
            command += ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            command, cwd=cwd, env=env or wsroute_env(), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 20) -> None:
        """Poll the port until it accepts a TCP connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log}")

    def wait_log(self, text: str, timeout: float = 10) -> None:
        """Poll the log until it contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged after {timeout} s:\n{self.log}")

    async def first_message_until(self, path: str, want: str, timeout: float = 20) -> str | None:
        """Connect to ``path`` again and again until its first message is ``want``; the last one read.

        For a server that is restarting (``--reload``): refused or reset
        connections are retried, every attempt and the whole wait are bounded.
        """
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        deadline = time.monotonic() + timeout
        answer = None
        while time.monotonic() < deadline and answer != want:
            try:
                async with connect(self.url + path, open_timeout=2) as ws:
                    answer = await asyncio.wait_for(ws.recv(), 5)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.1)
        return answer if isinstance(answer, str) else None

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int:
        """Wait (without blocking the event loop) for the process to exit."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"server still running after {timeout} s:\n{self.log}")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # workers left by a dead supervisor
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
