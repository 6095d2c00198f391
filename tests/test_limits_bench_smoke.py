"""benchmarks/limits_bench.py runs end to end on a tiny load and writes its JSON and snippet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)


def test_limits_bench_smoke(tmp_path: Path) -> None:
    """A tiny run reports both servers, the flood's 429s, the good client and the drain with 1001."""
    out, snippet = tmp_path / "limits.json", tmp_path / "limits.md"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.limits_bench", "--rounds", "1", "--handshakes", "5", "--messages", "40",
         "--flood", "100", "--hold", "20", "--output", str(out), "--snippet", str(snippet)],
        cwd=ROOT, check=True, capture_output=True, timeout=110,
    )
    result = json.loads(out.read_text())
    assert set(result["overhead"]["median_ratio"]) == {
        "handshakes_per_s", "echo_msgs_per_s", "handshakes_per_cpu_s", "echo_msgs_per_cpu_s",
    }
    assert result["flood"]["handshakes"] == 100 and result["flood"]["statuses"].get("429", 0) > 0
    assert result["flood"]["good_client"]["failures"] == 0
    assert result["hold"]["close_codes"] == [1001] and result["hold"]["exit_status"] == 0
    assert "handshakes per server CPU-second" in snippet.read_text()
