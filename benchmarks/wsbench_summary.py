"""Summarise a results file of the independent harness (``wsbench.py run --json``).

``python -m benchmarks.wsbench_summary RESULTS.json [--baseline raw/uvloop]``

The harness prints medians of per-round ratios for each metric it measures;
this adds the one it does not print and that a busy machine disturbs least,
the server's CPU time per handshake (``srv_cpu`` % of a core divided by
connections per second), and keeps, per configuration, the medians the
docs page quotes: handshakes/s and p50 time-to-101 against the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import stats


def summarise(document: dict[str, Any], baseline: str = "raw/uvloop", scenario: str = "handshake") -> dict[str, Any]:
    """Return ``{config: {rounds, conn_s, conn_s_x, hs_p50_ms, hs_p50_x, cpu_us, cpu_us_x, busy}}``."""
    runs = [r for r in document["runs"] if r["scenario"] == scenario]
    by_round: dict[int, dict[str, dict[str, float]]] = {}
    for run in runs:
        metrics = dict(run["metrics"])
        rate = metrics.get("conn_s") or float("nan")
        metrics["cpu_us"] = metrics["srv_cpu"] / 100 / rate * 1e6
        by_round.setdefault(run["round"], {})[run["config"]] = metrics
    configs = sorted({r["config"] for r in runs}, key=lambda c: (c != baseline, c))
    out: dict[str, Any] = {}
    for config in configs:
        rounds = [r for r in by_round.values() if config in r and baseline in r]
        row: dict[str, Any] = {"rounds": len(rounds)}
        for key in ("conn_s", "hs_p50_ms", "cpu_us"):
            row[key] = stats.median(r[config][key] for r in rounds)
            row[key + "_x"] = stats.median_ratio([r[config][key] for r in rounds], [r[baseline][key] for r in rounds])
        row["busy"] = stats.median(r[config].get("sys_busy", float("nan")) for r in rounds)
        row["srv_cpu"] = stats.median(r[config].get("srv_cpu", float("nan")) for r in rounds)
        out[config] = row
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the summary of one results file as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wsbench_summary", description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--baseline", default="raw/uvloop")
    args = parser.parse_args(argv)
    summary = summarise(json.loads(args.results.read_text()), args.baseline)
    for config, row in summary.items():
        print(config, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
