"""Smoke test of the benchmark suite: one tiny round, checks the shape of the results.

No timing assertions: this machine is shared and noisy. It only proves that
the harness starts servers and clients, measures something positive for every
scenario, and writes the JSON and the tables.
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.__main__ import main

pytest.importorskip("werkzeug")


@pytest.fixture(scope="module")
def smoke_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ``python -m benchmarks --smoke`` once for the whole module."""
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    assert main(["--smoke", "--output", str(out)]) == 0
    return json.loads(out.read_text())


def positive(value: object) -> bool:
    """Whether a figure is a real, positive number."""
    return isinstance(value, int | float) and not math.isnan(value) and value > 0


def test_result_has_machine_and_settings(smoke_result: dict) -> None:
    """The JSON names the machine and the settings it was measured with."""
    assert {"nproc", "cpu_model", "python", "websockets"} <= smoke_result["machine"].keys()
    assert smoke_result["settings"]["rounds"] == 1


def test_every_network_scenario_measured_for_each_kind(smoke_result: dict) -> None:
    """Handshake and echo rows exist for raw and werkzeug with positive rates."""
    rows = smoke_result["summary"]
    for scenario in ("handshake", "echo_fn_32", "echo_fn_4096", "echo_cls_32"):
        for kind in ("raw", "werkzeug"):
            row = next(r for r in rows if r["scenario"] == scenario and r["kind"] == kind)
            assert positive(row["rate"]), row
            assert positive(row["p50_ms"]) and positive(row["p99_ms"]), row
            assert positive(row["server_cpu"]), row


def test_fanout_delivers_and_measures_memory(smoke_result: dict) -> None:
    """Fan-out rows report deliveries, time to last delivery and memory per connection."""
    rows = [r for r in smoke_result["summary"] if r["scenario"].startswith("fanout")]
    assert rows
    for row in rows:
        assert positive(row["rate"]) and positive(row["burst_last_ms"]), row
        assert row["delivered"] == row["expected"], row
        assert "memory_per_conn" in row


def test_wsroute_measured_when_available(smoke_result: dict) -> None:
    """With wsroute.App available, the wsroute kind has rows too; otherwise a note says why."""
    kinds = {r["kind"] for r in smoke_result["summary"]}
    assert "wsroute" in kinds or any("wsroute" in n for n in smoke_result["notes"])


def test_route_matching_measured(smoke_result: dict) -> None:
    """Route matching reports positive rates and a ratio to werkzeug."""
    routing = smoke_result["routing"]
    assert routing
    for entry in routing.values():
        assert positive(entry["werkzeug"]) and positive(entry["wsroute"]) and positive(entry["ratio"])
