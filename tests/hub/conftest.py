"""Fixtures for the hub tests (helpers live in ``hubtest.py``).

pytest runs with ``--import-mode=importlib``, so this directory is put on
``sys.path`` here for the test modules and the child server script to
import ``hubtest``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hubtest import RedisProcess, ServerProcess, running_redis, server_processes_on


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisProcess]:
    """One redis-server for the whole session (tests restart it if they kill it)."""
    with running_redis("wsroute-redis-") as proc:
        yield proc


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
    with server_processes_on(redis_url) as start:
        yield start
