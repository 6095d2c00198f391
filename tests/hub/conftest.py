"""Fixtures for the hub tests (helpers live in ``hubtest.py``).

pytest runs with ``--import-mode=importlib``, so this directory is put on
``sys.path`` here for the test modules and the child server script to
import ``hubtest``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hubtest import REDIS_MISSING, RedisProcess, ServerProcess


def redis_missing() -> None:
    """Fail under CI (``CI`` set: a broken set-up must not pass), skip elsewhere with the reason."""
    if os.environ.get("CI", "").strip() not in ("", "0", "false"):
        pytest.fail(f"{REDIS_MISSING} (CI is set, so the Redis tests must run)", pytrace=False)
    pytest.skip(f"{REDIS_MISSING} (skipped because CI is not set; under CI this fails)")


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisProcess]:
    """One redis-server for the whole session (tests restart it if they kill it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_missing()
    with tempfile.TemporaryDirectory(prefix="wsroute-redis-") as directory:
        proc = RedisProcess(binary, directory)
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture
def redis_url(redis_process: RedisProcess) -> str:
    """The URL of a running, empty Redis."""
    if redis_process.proc is None or redis_process.proc.poll() is not None:
        redis_process.start()
    redis_process.command("FLUSHALL")
    return redis_process.url


@pytest.fixture
def server_processes(redis_url: str) -> Iterator[Callable[[], ServerProcess]]:
    """A factory of server processes on the test's Redis, all stopped at the end."""
    started: list[ServerProcess] = []

    def start() -> ServerProcess:
        proc = ServerProcess(redis_url)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
