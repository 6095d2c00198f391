"""Fixtures for the docs tests; ``samples`` (the extractor) is imported from this directory.

pytest runs with ``--import-mode=importlib``, so this directory (and tests/hub,
for its ``RedisProcess``) is put on ``sys.path`` here, as tests/interop does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "hub"))

from hubtest import REDIS_MISSING, RedisProcess


def redis_missing() -> None:
    """As tests/hub does: fail under CI (a broken set-up must not pass), skip elsewhere with the reason."""
    if os.environ.get("CI", "").strip() not in ("", "0", "false"):
        pytest.fail(f"{REDIS_MISSING} (CI is set, so the Redis tests must run)", pytrace=False)
    pytest.skip(f"{REDIS_MISSING} (skipped because CI is not set; under CI this fails)")

@pytest.fixture(scope="session")
def docs_redis() -> Iterator[RedisProcess]:
    """A real redis-server (no persistence, free port) for the pages whose samples use ``REDIS_URL``."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_missing()
    with tempfile.TemporaryDirectory(prefix="wsroute-docs-redis-") as directory:
        proc = RedisProcess(binary, directory)
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="session")
def docs_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-master / 3-replica Redis Cluster for the pages whose samples use ``REDIS_CLUSTER_URL``."""
    if shutil.which("redis-server") is None:
        redis_missing()
    from clustertest import RedisCluster

    try:
        cluster = RedisCluster(tmp_path_factory.mktemp("docs-cluster"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster.start()
    try:
        yield cluster.url()
    finally:
        cluster.stop()
