"""Write docs/benchmarks.md from a result document.

The page is generated, not hand-edited, so the figures, the machine they
were measured on and the command that produced them can never disagree.
Hand-written analysis lives in ``ANALYSIS`` below, next to the generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import report

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
        ]
    )


def write(path: Path, result: dict[str, Any], analysis: str = "") -> None:
    """Write the Markdown page for ``result`` to ``path``."""
    notes = "\n".join(f"- {note}" for note in result.get("notes", []))
    parts = [HEADER, machine_section(result), "## Results", report.tables(result, True)]
    if notes:
        parts += ["## Notes", notes]
    if analysis:
        parts.append(analysis)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n")
