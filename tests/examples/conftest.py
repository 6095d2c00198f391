"""Fixtures for the example tests; helpers live in ``exampletest.py``.

pytest runs with ``--import-mode=importlib``, so this directory is put on
``sys.path`` here, as tests/interop does, with the helpers reused from other
test directories: tests/hub (``RedisProcess``), tests/docs (the README
extractor) and tests/interop (the headless Chromium driver).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).parents[1] / "docs"))
sys.path.insert(0, str(Path(__file__).parents[1] / "interop"))

from hubtest import RedisProcess, running_redis


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    """A real redis-server on a free port (no persistence), killed after the test."""
    with running_redis("wsroute-example-redis-") as proc:
        yield proc
