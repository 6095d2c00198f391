"""The Redis fixtures: a real, empty redis-server; skipped without one outside CI, failing under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = "tests/hub/test_redis_fixture.py::test_redis_url_points_at_a_running_empty_redis"


async def test_redis_url_points_at_a_running_empty_redis(redis_url: str) -> None:
    """redis_url is a real redis-server that answers PING and holds no keys."""
    redis = pytest.importorskip("redis.asyncio")
    client = redis.from_url(redis_url)
    try:
        assert await client.ping() is True
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


def run_without_redis(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the test above in a child pytest whose PATH has no redis-server."""
    child_env = {k: v for k, v in os.environ.items() if k != "CI"}
    child_env.update(PATH=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", NODE],
        cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=60,
    )


def test_missing_redis_server_skips_outside_ci(tmp_path: Path) -> None:
    """Without redis-server on PATH and without CI, Redis tests are skipped with the install hint."""
    result = run_without_redis(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "redis-server is not on PATH" in result.stdout
    assert "skipped because CI is not set" in result.stdout


def test_missing_redis_server_fails_under_ci(tmp_path: Path) -> None:
    """With CI set, a missing redis-server fails the Redis tests instead of skipping them."""
    result = run_without_redis(tmp_path, CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CI is set, so the Redis tests must run" in result.stdout
    assert "skipped" not in result.stdout
