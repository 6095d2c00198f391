"""The Redis Cluster figures in the docs come from the benchmark's JSON, not from a hand."""

from __future__ import annotations

import json

from benchmarks import cluster_bench


def test_docs_show_the_generated_figures() -> None:
    """docs/cluster.md's figures block and docs/cluster-figures.md render benchmarks/results/cluster.json exactly."""
    result = json.loads(cluster_bench.RESULTS.read_text())
    body = cluster_bench.markdown(result)
    page = cluster_bench.PAGE.read_text()
    block = page.split(cluster_bench.BEGIN, 1)[1].split(cluster_bench.END, 1)[0]
    assert block == "\n" + body
    assert cluster_bench.FIGURES.read_text().endswith(body)
    for key in ("round_trip", "fanout", "idle", "failover"):
        assert result[key], key
    assert result["failover"]["duplicates"] == 0
    assert "Django Channels" in body and "python-socketio" in body
