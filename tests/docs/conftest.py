"""Fixtures for the docs tests; ``samples`` (the extractor) is imported from this directory.

pytest runs with ``--import-mode=importlib``, so this directory (and tests/hub,
for its ``RedisProcess``) is put on ``sys.path`` here, as tests/interop does.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "hub"))

from hubtest import RedisProcess, redis_missing, running_redis


@pytest.fixture(scope="session")
def docs_redis() -> Iterator[RedisProcess]:
    """A real redis-server (no persistence, free port) for the pages whose samples use ``REDIS_URL``."""
    with running_redis("wsroute-docs-redis-") as proc:
        yield proc


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
