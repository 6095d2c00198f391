"""``wsroute run --workers 2``: one scrape returns the sum over both workers (a real supervisor and workers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(90)


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics from whichever worker the kernel picks, parsed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_one_scrape_sums_both_workers(tmp_path: Path) -> None:
    """Connections answered by two worker PIDs all count in any worker's /metrics; the shared directory goes at exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSROUTE_", "PROMETHEUS_"))}
    env.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsroute", "run", "examples.cli_app:app", "--workers", "2", "--port", str(port),
             "--log-format", "json"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "all 2 worker process(es) ready" not in log_path.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.05)
        assert len(list(tmp_path.glob("wsroute-metrics-*"))) == 1
        pids: set[str] = set()
        opened = 0
        for _ in range(60):  # bounded: stop once both workers answered at least once
            try:
                async with connect(f"ws://127.0.0.1:{port}/pid", open_timeout=5) as ws:
                    pids.add(await asyncio.wait_for(ws.recv(), 5))
                    opened += 1
            except (OSError, InvalidHandshake, ConnectionClosed):
                await asyncio.sleep(0.05)
            if len(pids) == 2 and opened >= 4:
                break
        assert len(pids) == 2
        key = ("wsroute_handshakes_total", (("route", "/pid"), ("status", "101")))
        closes = ("wsroute_closes_total", (("code", "1000"), ("route", "/pid")))
        sent = ("wsroute_messages_sent_total", (("route", "/pid"),))
        durations = ("wsroute_connection_duration_seconds_count", (("route", "/pid"),))
        found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for _ in range(100):  # bounded: each worker copies its counters every second
            found = await asyncio.to_thread(scrape, port)
            if found.get(key) == found.get(closes) == found.get(sent) == found.get(durations) == opened:
                break
            await asyncio.sleep(0.1)
        assert found.get(key) == opened, found.get(key)
        assert found.get(closes) == opened
        assert found.get(sent) == opened  # copied by each worker's periodic sync
        assert found.get(durations) == opened  # bucketed by the core, added whole to the shared histogram files
        assert found.get(("wsroute_connections", (("route", "/pid"),))) == 0
        assert found.get(("wsroute_broker_up", ())) == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)  # the supervisor only: it forwards one SIGTERM to each worker
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    assert proc.returncode == 0, log_path.read_text()
    assert list(tmp_path.glob("wsroute-metrics-*")) == []
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    serving = [e for e in entries if e["message"].startswith("wsroute serving on")]
    assert sorted(e["worker"].split(" pid ")[0] for e in serving) == ["worker 1", "worker 2"]
