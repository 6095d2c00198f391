"""Run an example the way its README says, and stop it the way production does.

``readme_commands(name)`` reads the ``$ command`` lines of the console blocks
of ``examples/<name>/README.md``; the tests run those exact commands (from
the repository root, the virtualenv's ``bin/`` first on ``PATH``), with only
the port numbers replaced by free ones, so a README that drifts from the code
fails here. Servers are stopped with SIGTERM and their whole log is returned
for the "no ERROR line" checks.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from samples import blocks
from timing import timeout

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
START_TIMEOUT = timeout(30)  # a cold interpreter importing the app on a busy machine
STOP_TIMEOUT = timeout(30)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_commands(example: str) -> list[str]:
    """The ``$ command`` lines of the console blocks of ``examples/<example>/README.md``, in order."""
    found = []
    for block in blocks(EXAMPLES / example / "README.md"):
        if block.kind == "console":
            found += [line[2:].strip() for line in block.source.splitlines() if line.startswith("$ ")]
    return found


def command_with(commands: list[str], needle: str, ports: Mapping[str, int]) -> str:
    """The one README command containing ``needle``, with each ``port`` text replaced by a free port."""
    matching = [command for command in commands if needle in command]
    assert len(matching) == 1, f"expected one README command with {needle!r}, found {matching}"
    command = matching[0]
    for old, new in ports.items():
        command = re.sub(rf"\b{old}\b", str(new), command)
    return command


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment with the virtualenv first on PATH, unbuffered Python output."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1", **(extra or {})}


class Server:
    """A README command that serves, run in its own process group, its output in a file."""

    def __init__(self, command: str, port: int, env: Mapping[str, str] | None = None) -> None:
        self.command = command
        self.port = port
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the server; closed in __exit__
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=environment(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"`{self.command}` exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"`{self.command}` did not listen on {self.port} in {START_TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        """Everything the process printed so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> int:
        """SIGTERM to the command (as systemd or Docker send it), SIGKILL to its group after STOP_TIMEOUT.

        Only the command's own process gets SIGTERM: a ``--workers`` supervisor
        forwards it to its workers itself (a second signal would skip draining).
        Returns the exit status.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


def run(command: str, env: Mapping[str, str] | None = None, seconds: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a README command that ends by itself; its output (stdout and stderr together)."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout(seconds),
        check=False,
    )


def error_lines(log: str) -> list[str]:
    """The lines of a server log that report an error or a traceback."""
    return [line for line in log.splitlines() if " ERROR " in f" {line} " or "Traceback" in line]
