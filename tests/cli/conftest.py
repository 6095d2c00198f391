"""Fixtures for the CLI tests (helpers live in ``clitest.py``).

pytest runs with ``--import-mode=importlib``, so this directory is put on
``sys.path`` here for the test modules to import ``clitest``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clitest import Server


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(*args)`` starts ``wsroute run ARGS`` and waits until it listens."""
    servers: list[Server] = []

    def start(*args: str, ready: bool = True, **kwargs: object) -> Server:
        server = Server(tmp_path, *args, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.kill()
