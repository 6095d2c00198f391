"""Write docs/benchmarks.md from a result document.

The page is generated, not hand-edited, so the figures, the machine they
were measured on and the command that produced them can never disagree.
Hand-written analysis lives in ``ANALYSIS`` below, next to the generator.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from benchmarks import report, stats

ANALYSIS = Path(__file__).parent / "ANALYSIS.md"
"""Hand-written findings (profile, limits, suggestions), appended to the page."""

TARGETS = [  # (scenario, key, comparison, bound, what)
    ("handshake", "ratio", ">=", 0.95, "handshakes/s vs raw"),
    ("echo_fn_32", "ratio", ">=", 0.95, "echo 32 B msg/s vs raw (function)"),
    ("echo_fn_4096", "ratio", ">=", 0.95, "echo 4 KiB msg/s vs raw (function)"),
    ("echo_cls_32", "ratio", ">=", 0.95, "echo 32 B msg/s vs raw (Handler @on)"),
    ("echo_cls_4096", "ratio", ">=", 0.95, "echo 4 KiB msg/s vs raw (Handler @on)"),
    ("fanout_1000", "ratio", ">=", 1.0, "hub deliveries/s vs websockets.broadcast, 1,000"),
    ("fanout_5000", "ratio", ">=", 1.0, "hub deliveries/s vs websockets.broadcast, 5,000"),
    ("fanout_1000", "memory_ratio", "<=", 1.1, "memory per idle connection vs raw, 1,000"),
    ("fanout_5000", "memory_ratio", "<=", 1.1, "memory per idle connection vs raw, 5,000"),
]

HEADER = """# Benchmarks

wsroute is measured against **raw websockets** (`serve()` with one handler)
and **websockets' werkzeug router** (`websockets.asyncio.router.route`), back
to back in the same run, on 127.0.0.1. The server runs in its own process,
the load generators in others; every phase is bounded in count and in time.
Figures are medians over rounds; "x raw" is the median of per-round ratios
against raw websockets measured in the same round. How to run it and what
each scenario does: [`benchmarks/README.md`](../benchmarks/README.md).
"""


def machine_section(result: dict[str, Any]) -> str:
    """Describe the machine, the software and the command of this run."""
    m = result["machine"]
    s = result["settings"]
    return "\n".join(
        [
            "## Machine and command",
            "",
            f"- `nproc`: {m['nproc']}; CPU: {m['cpu_model']}; {m['platform']}",
            (
                f"- Python {m['python']}, websockets {m['websockets']}, uvloop {m['uvloop']}, "
                f"werkzeug {m['werkzeug']}; wsroute commit `{m['commit']}`; {m['date']}"
            ),
            (
                f"- command: `{result.get('command', 'python -m benchmarks')}` "
                f"({s['rounds']} rounds x {s['duration']} s per phase, "
                f"{s['client_procs']} client processes; took {result['elapsed_s']:.0f} s)"
            ),
            (
                "- srv/cli cpu: CPU-seconds per wall-second of the server process and of all "
                "client processes together; a server near 1.00 was the limit (one core)."
            ),
            background_line(result),
        ]
    )


def background_line(result: dict[str, Any]) -> str:
    """Say how busy the shared machine was with other programs during the run."""
    values = [r.get("background_cpu") for r in result["summary"]]
    finite = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    if not finite:
        return "- background load: not measured"
    return (
        f"- background load (other programs, from /proc/stat): median {stats.median(finite):.2f} "
        f"of {result['machine']['nproc']} cores over the phases, max {max(finite):.2f}; with a busy "
        "machine prefer the server-CPU-cost ratios to the throughput ratios"
    )


def targets_section(result: dict[str, Any]) -> str:
    """Check the project's performance targets against this run's wsroute rows.

    Beside each throughput ratio stands the server's CPU cost per operation
    (or per fan-out burst) relative to the reference: on a busy machine it is
    the steadier of the two, since other programs steal wall time, not CPU
    time per operation.
    """
    rows = [["target", "loop", "measured", "bound", "met", "server CPU cost x ref"]]
    for scenario, key, op, bound, what in TARGETS:
        for row in result["summary"]:
            if row["scenario"] == scenario and row["kind"] == "wsroute":
                value = row.get(key, math.nan)
                met = value >= bound if op == ">=" else value <= bound
                cost = row.get("cpu_ratio" if scenario.startswith("fanout") else "cost_ratio", math.nan)
                cost_text = f"{cost:.2f}" if key == "ratio" and not math.isnan(cost) else ""
                rows.append([what, row["loop"], f"{value:.2f}", f"{op} {bound}", "yes" if met else "**no**", cost_text])
    for name, entry in result.get("routing", {}).items():
        if name.endswith("_1000"):
            ratio = entry["ratio"]
            rows.append([f"{name} vs werkzeug", "-", f"{ratio:.1f}", ">= 5", "yes" if ratio >= 5 else "**no**", ""])
    return "## Targets (medians of per-round ratios)\n\n" + report.render(rows, markdown=True)


def write(path: Path, result: dict[str, Any], analysis: str = "") -> None:
    """Write the Markdown page for ``result`` to ``path``."""
    notes = "\n".join(f"- {note}" for note in result.get("notes", []))
    if not analysis and ANALYSIS.exists():
        analysis = ANALYSIS.read_text()
    parts = [HEADER, machine_section(result), targets_section(result), "## Results", report.tables(result, True)]
    if notes:
        parts += ["## Notes", notes]
    if analysis:
        parts.append(analysis)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.docs RESULTS.json PAGE.md``: regenerate the page."""
    args = sys.argv[1:] if argv is None else argv
    source, target = (
        (Path(a) for a in args)
        if len(args) == 2
        else (Path(__file__).parent / "results" / "latest.json", Path("docs/benchmarks.md"))
    )
    write(target, json.loads(source.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
