"""Smoke test of the benchmark suite: one tiny round, checks the shape of the results.

No timing assertions: this machine is shared and noisy. It only proves that
the harness starts servers and clients, measures something positive for every
scenario, and writes the JSON and the tables; with ``--peers``, that every peer
framework's server starts and answers (they are installed by ``scripts/setup``,
the ``bench`` extra).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import docs, handshake_trace
from benchmarks.__main__ import main
from benchmarks.peers import PEERS

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


@pytest.fixture(scope="module")
def peers_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ``python -m benchmarks --smoke --peers`` once: every peer server, the memory and 10k paths."""
    out = tmp_path_factory.mktemp("bench") / "peers.json"
    assert main(["--smoke", "--peers", "--output", str(out)]) == 0
    return json.loads(out.read_text())


def test_every_peer_starts_and_answers(peers_result: dict) -> None:
    """Each peer server completes handshakes and echoes, with server CPU measured; none was skipped."""
    rows = peers_result["summary"]
    assert not [n for n in peers_result["notes"] if "skipped" in n or "failed" in n], peers_result["notes"]
    for kind in ("raw", "wsroute", *PEERS):
        for scenario in ("handshake", "echo_fn_32"):
            row = next(r for r in rows if r["scenario"] == scenario and r["kind"] == kind)
            assert positive(row["rate"]) and positive(row["p50_ms"]), row
            assert positive(row["server_us_per_op"]), row


def test_every_peer_fans_out_to_all_members(peers_result: dict) -> None:
    """Each peer's broadcast (set loop, group_send, emit to a room) reaches every idle client."""
    rows = [r for r in peers_result["summary"] if r["scenario"].startswith("fanout")]
    assert {r["kind"] for r in rows} == {"raw", "wsroute", *PEERS}
    for row in rows:
        assert row["expected"] > 0 and row["delivered"] == row["expected"], row


def test_memory_with_deflate_negotiated(peers_result: dict) -> None:
    """The memory phase connects clients that offer deflate; raw and wsroute accept it on every connection."""
    rows = [r for r in peers_result["summary"] if r["scenario"].startswith("memory_deflate")]
    assert {r["kind"] for r in rows} == {"raw", "wsroute"}
    for row in rows:
        assert row["connected"] == peers_result["settings"]["memory_clients"], row
        assert row["negotiated"] == row["connected"] and row["delivered"] == row["connected"], row


def test_one_process_many_connections_path(peers_result: dict) -> None:
    """The 10k scenario's path (here 40 connections over 2 client processes) connects, measures and delivers."""
    tenk = peers_result["tenk"]
    assert set(tenk) == {"raw", "wsroute"}
    for figures in tenk.values():
        assert figures["connected"] == figures["negotiated"] == figures["delivered"] == 40, figures
        assert positive(figures["rss_mib"]) and positive(figures["accept_s"]), figures


def test_docs_page_and_readme_line_from_peers_run(peers_result: dict, tmp_path: pytest.TempPathFactory) -> None:
    """The generator writes the peers, memory and 10k tables and a README line whose ratios come from the run."""
    page, snippet = tmp_path / "benchmarks.md", tmp_path / "headline.md"  # type: ignore[operator]
    docs.write(page, peers_result, snippet=snippet)
    text = page.read_text()
    assert "## wsroute and the frameworks users choose instead" in text
    assert "## Memory per connection" in text and "## 10,000 connections in one process" in text
    line = snippet.read_text()
    hs = next(r for r in peers_result["summary"] if r["scenario"] == "handshake" and r["kind"] == "wsroute")
    key = "cost_ratio" if docs.busy(peers_result) else "ratio"  # a busy machine: CPU per operation is quoted
    assert f"{hs[key]:.2f}x raw websockets' for handshakes" in line


def test_wsroute_adds_no_task_before_the_101() -> None:
    """Per sequential handshake, wsroute's full app creates no more tasks than raw websockets (3: no extra await)."""
    raw = handshake_trace.trace("raw", 20)
    ours = handshake_trace.trace("wsroute", 20)
    assert raw["tasks"] == 3.0, raw
    assert ours["tasks"] - raw["tasks"] < 0.5, (raw, ours)


def test_readme_headline_is_the_generated_one() -> None:
    """The README's performance line is exactly the generated snippet, so it cannot drift from the run."""
    root = Path(__file__).parents[1]
    block = docs.readme_block((root / "README.md").read_text())
    assert block is not None, "README.md lost its benchmarks-headline markers"
    assert block == (root / "docs" / "snippets" / "benchmarks-headline.md").read_text().strip()
