"""Write docs/benchmarks.md (and the README's headline line) from a result document.

The page is generated, not hand-edited, so the figures, the machine they
were measured on and the command that produced them can never disagree.
Every verdict on the page is computed from the figures too: which targets
were met, what limited each phase, where wsroute is below a peer, and
whether an optimisation suggested in ``ANALYSIS.md`` is in the measured
commit (``{status:COMMIT}`` markers). Hand-written analysis lives in
``ANALYSIS.md`` beside this file and is appended to the page.

``python -m benchmarks.docs [RESULTS.json PAGE.md]`` regenerates the page
from a saved run; ``python -m benchmarks --peers --docs docs/benchmarks.md``
runs and writes it.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import report, stats

ANALYSIS = Path(__file__).parent / "ANALYSIS.md"
"""Hand-written findings (profile, limits, suggestions), appended to the page."""
SNIPPET = Path("docs/snippets/benchmarks-headline.md")
"""The README's headline line, generated with the page (the README includes this file's text)."""

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
    ("memory_deflate", "memory_ratio", "<=", 0.6, "memory per idle connection, deflate negotiated, vs raw"),
]
THROUGHPUT = ("handshake", "echo_fn_32", "echo_fn_4096", "fanout_1000", "fanout_5000")
TENK_RSS_MIB = 250
HANDSHAKE_P50_X = 1.1

HEADER = """# Benchmarks

wsroute is measured against **raw websockets** (`serve()` with one handler),
against **the frameworks users pick instead** — Starlette and FastAPI on
uvicorn, python-socketio, Django Channels on uvicorn and on daphne, aiohttp —
and (without `--peers`) against websockets' werkzeug router, back to back in
the same run, on 127.0.0.1, with the same load generators. The server runs in
its own process, the load generators in others; every phase is bounded in
count and in time. Figures are medians over rounds; "x raw" is the median of
per-round ratios against raw websockets measured in the same round. How to run
it and what each scenario does: [`benchmarks/README.md`](../benchmarks/README.md).
"""


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if _finite(value) else "-"


def _rows(result: dict[str, Any], loop: str | None = None) -> list[dict[str, Any]]:
    rows = result["summary"]
    loop = loop or (rows[0]["loop"] if rows else "")
    return [r for r in rows if r["loop"] == loop]


def _row(rows: list[dict[str, Any]], scenario: str, kind: str) -> dict[str, Any] | None:
    for row in rows:
        if row["kind"] == kind and (row["scenario"] == scenario or row["scenario"].startswith(scenario + "_")):
            return row
    return None


def machine_section(result: dict[str, Any]) -> str:
    """Describe the machine, the software and the command of this run."""
    m = result["machine"]
    s = result["settings"]
    versions = ", ".join(f"{name} {v}" for name, v in sorted(m.get("peers", {}).items()))
    return "\n".join(
        [
            "## Machine and command",
            "",
            f"- `nproc`: {m['nproc']}; CPU: {m['cpu_model']}; {m['platform']}",
            (
                f"- Python {m['python']}, websockets {m['websockets']}, uvloop {m['uvloop']}, "
                f"werkzeug {m['werkzeug']}; wsroute commit `{m['commit']}`; {m['date']}"
            ),
            *([f"- peers: {versions}"] if versions else []),
            (
                f"- command: `{result.get('command', 'python -m benchmarks')}` "
                f"({s['rounds']} rounds x {s['duration']} s per phase, {s['fanout_rounds']} rounds of fan-out, "
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
    finite = [v for v in (r.get("background_cpu") for r in result["summary"]) if _finite(v)]
    if not finite:
        return "- background load: not measured"
    median = stats.median(finite)
    busy = median >= 0.25
    advice = (
        "the machine was shared and busy: throughput ratios are noisy, prefer the server-CPU-per-operation "
        "figures, which other programs disturb least"
        if busy
        else "the machine was quiet"
    )
    return (
        f"- background load (other programs, from /proc/stat): median {median:.2f} of "
        f"{result['machine']['nproc']} cores over the phases, max {max(finite):.2f}; {advice}"
    )


def target_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of this run, measured, as ``{what, loop, value, op, bound, met, cost}``."""
    out = []
    for scenario, key, op, bound, what in TARGETS:
        for row in result["summary"]:
            matches = row["scenario"] == scenario or (
                scenario == "memory_deflate" and row["scenario"].startswith("memory_deflate")
            )
            if not matches or row["kind"] != "wsroute" or not _finite(row.get(key)):
                continue
            value = row[key]
            cost = row.get("cpu_ratio" if scenario.startswith("fanout") else "cost_ratio", math.nan)
            out.append(
                {
                    "what": what,
                    "loop": row["loop"],
                    "value": value,
                    "op": op,
                    "bound": bound,
                    "met": value >= bound if op == ">=" else value <= bound,
                    "cost": cost if key == "ratio" else math.nan,
                }
            )
    for name, entry in result.get("routing", {}).items():
        if name.endswith("_1000"):
            ratio = entry["ratio"]
            out.append({"what": f"{name} vs werkzeug", "loop": "-", "value": ratio, "op": ">=", "bound": 5,
                        "met": ratio >= 5, "cost": math.nan})
    tenk = result.get("tenk", {}).get("wsroute")
    if tenk:
        out.append({"what": f"total RSS, {tenk['connected']:,} idle connections, deflate", "loop": "-",
                    "value": tenk["rss_mib"], "op": "<=", "bound": TENK_RSS_MIB,
                    "met": tenk["rss_mib"] <= TENK_RSS_MIB and tenk["connected"] >= 10_000, "cost": math.nan})
    deflate = result.get("deflate")
    if deflate:
        ours = next(r for r in deflate["rows"] if r["name"] == "wsroute")
        bound = deflate["targets"]["ratio_x_ref"]
        out.append({"what": "compressed size on the chat corpus vs websockets' default", "loop": "-",
                    "value": ours["ratio_x_ref"], "op": "<=", "bound": bound, "met": ours["ratio_x_ref"] <= bound,
                    "cost": math.nan})
    for config, row in result.get("wsbench", {}).items():
        if config.split("/")[0] == "wsroute":
            harness = f"independent harness (machine {row['busy']:.0f} % busy)"
            out.append({"what": f"{harness}: handshakes/s vs raw", "loop": config.split("/")[-1],
                        "value": row["conn_s_x"], "op": ">=", "bound": 0.95, "met": row["conn_s_x"] >= 0.95,
                        "cost": row["cpu_us_x"]})
            out.append({"what": f"{harness}: p50 time to 101 vs raw", "loop": config.split("/")[-1],
                        "value": row["hs_p50_ms_x"], "op": "<=", "bound": HANDSHAKE_P50_X,
                        "met": row["hs_p50_ms_x"] <= HANDSHAKE_P50_X, "cost": math.nan})
    return out


def targets_section(result: dict[str, Any]) -> str:
    """The project's targets against this run, then a verdict computed from them."""
    cells = [["target", "loop", "measured", "bound", "met", "server CPU cost x ref"]]
    targets = target_rows(result)
    for t in targets:
        cells.append([t["what"], t["loop"], _fmt(t["value"]), f"{t['op']} {t['bound']}",
                      "yes" if t["met"] else "**no**", _fmt(t["cost"]) if _finite(t["cost"]) else ""])
    missed = [t for t in targets if not t["met"]]
    if not targets:
        verdict = "No wsroute figures in this run."
    elif missed:
        names = "; ".join(f"{t['what']} ({t['loop']}: {_fmt(t['value'])}, bound {t['op']} {t['bound']})"
                          for t in missed)
        verdict = f"Missed in this run: {names}. Met: the other {len(targets) - len(missed)} of {len(targets)}."
    else:
        verdict = f"Every one of the {len(targets)} targets was met in this run."
    return "\n\n".join(["## Targets (medians of per-round ratios)", report.render(cells, markdown=True), verdict])


def limits_section(result: dict[str, Any]) -> str:
    """What bounded the phases, counted from each row's ``limit`` (computed, never hand-written)."""
    rows = [r for r in result["summary"] if r.get("limit")]
    if not rows:
        return ""
    counts = Counter(r["limit"] for r in rows)
    parts = ", ".join(f"{n} {name}" for name, n in counts.most_common())
    server = [r["server_cpu"] for r in rows if r.get("limit") == "server" and _finite(r.get("server_cpu"))]
    lines = [f"Of {len(rows)} measured rows, the limit was: {parts}."]
    if server:
        lines.append(f"Server-bound rows ran the server at {min(server):.2f}-{max(server):.2f} of its core.")
    if counts.get("contended"):
        lines.append(
            "`contended` rows ran while other programs filled the machine: their throughput says more about "
            "the machine than about the server; their server CPU per operation still compares."
        )
    return "## What limited each phase\n\n" + " ".join(lines)


def peer_gaps(result: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """(scenario, peer, wsroute rate, peer rate) wherever a peer out-ran wsroute in the same run."""
    rows = _rows(result)
    gaps = []
    for scenario in THROUGHPUT:
        ours = _row(rows, scenario, "wsroute")
        if ours is None:
            continue
        for row in rows:
            peer = row["scenario"] == scenario and row["kind"] not in ("raw", "wsroute", "werkzeug", "rawhook")
            if peer and _finite(row["rate"]) and row["rate"] > ours["rate"]:
                gaps.append((scenario, row["kind"], ours["rate"], row["rate"]))
    return gaps


def cpu_gaps(result: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """(scenario, peer, wsroute us/op, peer us/op) wherever a peer's server spent less CPU per operation."""
    rows = _rows(result)
    gaps = []
    for scenario in ("handshake", "echo_fn_32", "echo_fn_4096"):
        ours = _row(rows, scenario, "wsroute")
        if ours is None:
            continue
        for row in rows:
            peer = row["scenario"] == scenario and row["kind"] not in ("raw", "wsroute", "werkzeug", "rawhook")
            cost = row.get("server_us_per_op")
            if peer and _finite(cost) and cost < ours["server_us_per_op"]:
                gaps.append((scenario, row["kind"], ours["server_us_per_op"], cost))
    for scenario in ("fanout_1000", "fanout_5000"):
        ours = _row(rows, scenario, "wsroute")
        for row in rows:
            if ours and row["scenario"] == scenario and row["kind"] not in ("raw", "wsroute"):
                cost = row.get("server_cpu_ms")
                if _finite(cost) and cost < ours["server_cpu_ms"]:
                    gaps.append((scenario + " (ms per burst)", row["kind"], ours["server_cpu_ms"], cost))
    return gaps


def memory_gaps(result: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """(scenario, peer, wsroute KiB, peer KiB) wherever a peer used less memory per connection."""
    rows = _rows(result)
    gaps = []
    for row in rows:
        if not row["scenario"].startswith(("fanout", "memory")) or row["kind"] in ("raw", "wsroute"):
            continue
        ours = _row(rows, row["scenario"], "wsroute")
        if ours and _finite(row.get("memory_per_conn")) and row["memory_per_conn"] < ours["memory_per_conn"]:
            gaps.append((row["scenario"], row["kind"], ours["memory_per_conn"] / 1024, row["memory_per_conn"] / 1024))
    return gaps


def peers_section(result: dict[str, Any]) -> str:
    """The peers table and the computed comparison with every peer."""
    rows = _rows(result)
    if not report.peer_kinds(rows):
        return ""
    loop = rows[0]["loop"]
    gaps, mem, cpu = peer_gaps(result), memory_gaps(result), cpu_gaps(result)
    if cpu:
        where = "; ".join(f"{report.PEER_NAMES[k]} on {sc} ({peer:,.1f} vs {ours:,.1f})" for sc, k, ours, peer in cpu)
        verdict = f"Peers whose server spent less CPU per operation than wsroute's (us, or ms per burst): {where}."
    else:
        verdict = "No peer's server spent less CPU per operation than wsroute's."
    if gaps:
        where = "; ".join(f"{report.PEER_NAMES[k]} on {sc} ({peer:,.0f} vs {ours:,.0f})" for sc, k, ours, peer in gaps)
        verdict += f" Peers ahead of wsroute on throughput in this run: {where}."
    else:
        verdict += " wsroute was at or above every peer on every throughput scenario in this run."
    if busy(result):
        verdict += " The machine was busy: read the CPU comparison first."
    verdict += " Why: see the analysis below."
    if mem:
        where = "; ".join(f"{report.PEER_NAMES[k]} on {sc} ({peer:.1f} vs {ours:.1f} KiB)" for sc, k, ours, peer in mem)
        verdict += f" Peers using less memory per connection than wsroute: {where}."
    else:
        verdict += " wsroute used no more memory per connection than any peer."
    return "\n\n".join(
        [
            "## wsroute and the frameworks users choose instead",
            (
                f"Server loop {loop}; every kind served the way its users serve it (see "
                "`benchmarks/peers.py`: uvicorn defaults, aiohttp's `AppRunner`, daphne). Each cell is the "
                "median rate and, in brackets, the median of per-round ratios to raw websockets. `srv us` is the "
                "server's CPU time per operation (handshake or message), the figure least disturbed by other "
                "programs and independent of the client's cost: python-socketio's clients speak Engine.IO, so "
                "its handshake also includes joining the namespace (`0{...}`, `40`, `40{...}`), and its echo "
                "frames are `42[\"echo\",\"...\"]` of the same size. The typed JSON echo (`Handler` with "
                "`@on`) has no equivalent in the peers: n/a. Fan-out: wsroute's hub, websockets.broadcast for "
                "raw, a `for ws in room: await ws.send_text(...)` loop for Starlette, FastAPI and aiohttp, "
                "`emit(..., room=...)` for socket.io, `group_send` on `InMemoryChannelLayer` for Channels."
            ),
            report.render(report.peers_table(result["summary"], loop), markdown=True),
            verdict,
        ]
    )


def memory_section(result: dict[str, Any]) -> str:
    """Memory per idle connection without and with deflate, and the compression study."""
    rows = _rows(result)
    table = report.memory_table(result["summary"], rows[0]["loop"] if rows else "")
    parts = ["## Memory per connection"]
    if table:
        parts += [
            (
                "Server RSS growth divided by the connections (after `gc.collect()`). *No deflate*: the largest "
                "fan-out phase, clients offering nothing. *Deflate offered*: clients offer "
                "`permessage-deflate; client_max_window_bits` as browsers do and the server keeps its own default "
                "(websockets: 12-bit windows, memLevel 5; wsroute: `wsroute/compression.py`); *idle* is right "
                "after the handshakes, *after 1 msg* once one broadcast has reached every connection."
            ),
            report.render(table, markdown=True),
        ]
    deflate = result.get("deflate")
    if deflate:
        from benchmarks.deflate import table as deflate_table

        ours = next(r for r in deflate["rows"] if r["name"] == "wsroute")
        ref = next(r for r in deflate["rows"] if r["name"] == "websockets default")
        parts += [
            "### Choosing wsroute's permessage-deflate settings",
            (
                f"`python -m benchmarks.deflate` compresses a deterministic JSON chat corpus "
                f"(`benchmarks/corpus.py`, {deflate['messages']:,} events, about 180 B each) with websockets' own "
                f"extension code under each setting, and measures RSS for {deflate['connections']:,} server-side "
                "extension objects in a fresh interpreter, idle and after 8 messages each way."
            ),
            report.render(deflate_table(deflate), markdown=True),
            (
                f"wsroute's default ({ours['server']}-bit windows, memLevel {ours['mem']}, zlib streams made on "
                f"first use): compressed size {ours['ratio_x_ref']:.2f}x websockets' default, "
                f"{ours['idle_kib']:.1f} KiB of zlib state per idle connection (websockets: {ref['idle_kib']:.1f}), "
                f"{ours['active_kib']:.1f} KiB once messages flowed ({ours['active_x_ref']:.2f}x). Smaller windows "
                "cost ratio at once on chat-sized messages; memLevel barely changes the ratio of small messages."
            ),
        ]
    return "\n\n".join(parts) if len(parts) > 1 else ""


def tenk_section(result: dict[str, Any]) -> str:
    """The one-process 10,000-connection figures."""
    tenk = result.get("tenk")
    if not tenk:
        return ""
    s = result["settings"]
    return "\n\n".join(
        [
            "## 10,000 connections in one process",
            (
                f"{s['tenk']:,} idle clients offering permessage-deflate, spread over {s['tenk_procs']} client "
                "processes (RLIMIT_NOFILE raised to the hard limit in each), on one server process; then one "
                "64-byte message to all of them. *Total RSS* is the whole server process."
            ),
            report.render(report.tenk_table(tenk), markdown=True),
        ]
    )


def wsbench_section(result: dict[str, Any]) -> str:
    """The handshake measured with the independent harness (if its summary is attached)."""
    summary = result.get("wsbench")
    if not summary:
        return ""
    cells = [["server", "rounds", "handshakes/s", "x raw", "p50 time to 101 ms", "x raw", "srv us/handshake",
              "x raw", "machine busy %"]]
    for config, row in summary.items():
        cells.append([config, str(row["rounds"]), _fmt(row["conn_s"], 0), _fmt(row["conn_s_x"]),
                      _fmt(row["hs_p50_ms"]), _fmt(row["hs_p50_ms_x"]), _fmt(row["cpu_us"], 0),
                      _fmt(row["cpu_us_x"]), _fmt(row["busy"], 0)])
    return "\n\n".join(
        [
            "## The handshake, measured by the independent harness",
            (
                "`/work/shared/bench/wsbench.py` (its own minimal client, separate processes, configurations "
                "interleaved per round), with wsroute's benchmark app served by "
                "`python -m benchmarks.wsbench_server` (the same 50 routes, auth middleware, headers and health "
                "plugins). Ratios are medians of per-round ratios; `srv us/handshake` is the server's CPU per "
                "handshake (its `srv_cpu` over its rate), computed by `python -m benchmarks.wsbench_summary`."
            ),
            report.render(cells, markdown=True),
            wsbench_verdict(summary),
        ]
    )


INSTRUCTIONS = Path(__file__).parent / "results" / "instructions.json"
"""Instructions per operation, from ``python -m benchmarks.instructions``."""


def instructions_section(data: dict[str, Any] | None) -> str:
    """Instructions per handshake and per message under callgrind: the figure a busy machine cannot move."""
    if not data or not data.get("results"):
        return ""
    from benchmarks.instructions import table

    trees = ", ".join(f"`@{name}`: {where}" for name, where in data.get("trees", {}).items() if name != "this")
    this = data.get("trees", {}).get("this")
    return "\n\n".join(
        [
            "## Instructions per operation (callgrind)",
            (
                "Wall-clock rates on a shared 2-core machine move by tens of per cent between runs; the "
                "instructions a server executes for one operation do not. `python -m benchmarks.instructions` "
                "runs each server alone under `valgrind --tool=callgrind` and drives it from another process "
                f"with a blocking socket, one operation at a time: {data['handshakes']} handshakes (request with "
                f"an `Authorization` header, 101, close), then {data['messages']} round trips of a 32-byte text "
                "message on `/echo` and of a typed JSON message on `/json` (a `wsroute.Handler` method against "
                "hand-written `json.loads` and dict dispatch). Each figure is the instructions executed between "
                "two marks (callgrind dumps) divided by the operations between them; the mean of the runs is "
                "shown, `spread` is the largest relative difference between runs of one server. `bare` is "
                "wsroute's benchmark app with its 50 routes only, `full` adds the auth middleware and the "
                "headers and health plugins, as in the tables above; `limits` is `full` with every limit of "
                "issue 11 configured but never hit, `metrics` is `full` with the wsroute-metrics plugin and "
                "`counting` is `full` with only the core's counting that plugin switches on (compare each with "
                "`full`: the cost of that feature); `middleware`, `headers` and `health` are `bare` plus the "
                "auth middleware plus one plugin at most, to split `full`'s cost."
                + (f" Servers without a suffix are {this}; {trees}." if this else "")
                + f" Python {data.get('python', '?')}."
            ),
            table(data),
            (
                "Instructions are not time: they ignore cache misses and system calls (the kernel's share of a "
                "handshake, two `accept`/`recv`/`send`/`close` rounds, is the same for every server). They "
                "tell whether a change made the server do more work, and by how much, without quiet rounds."
            ),
        ]
    )


def wsbench_verdict(summary: dict[str, Any]) -> str:
    """Say how far the harness's rounds can be trusted, from the machine's and the server's CPU use."""
    busy_pct = stats.median(row["busy"] for row in summary.values())
    server = stats.median(row.get("srv_cpu", math.nan) for row in summary.values())
    if _finite(busy_pct) and busy_pct >= 180:
        return (
            f"The machine was saturated during these rounds ({busy_pct:.0f} % busy of 200, the server at "
            f"{_fmt(server, 0)} % of a core): the rate and latency ratios are mostly the scheduler's; the server "
            "CPU per handshake is the steadier figure."
        )
    return f"Machine {busy_pct:.0f} % busy of 200, server at {_fmt(server, 0)} % of a core (medians)."


def busy(result: dict[str, Any]) -> bool:
    """Whether other programs took a quarter of a core or more, at the median, during the run."""
    finite = [v for v in (r.get("background_cpu") for r in result["summary"]) if _finite(v)]
    return bool(finite) and stats.median(finite) >= 0.25


def headline(result: dict[str, Any], link: bool = True) -> str:
    """The README's one line: wsroute's and the peers' ratios to raw websockets, from this run.

    On a quiet machine the ratios are throughput (handshakes/s, messages/s,
    deliveries/s); on a busy one (:func:`busy`) they are the server's CPU per
    operation, which other programs disturb least, and the line says so.
    """
    rows = _rows(result)
    m = result["machine"]
    sizes = sorted(int(r["scenario"].split("_")[1]) for r in rows if r["scenario"].startswith("fanout_"))
    fanout = f"fanout_{sizes[-1]}" if sizes else "fanout"
    cpu = busy(result)

    def ratio(scenario: str, kind: str) -> str:
        row = _row(rows, scenario, kind)
        key = ("cpu_ratio" if scenario.startswith("fanout") else "cost_ratio") if cpu else "ratio"
        return f"{row[key]:.2f}x" if row and _finite(row.get(key)) else "n/a"

    what = "server CPU per operation" if cpu else "throughput"
    parts = [
        f"wsroute's {what} is {ratio('handshake', 'wsroute')} raw websockets' for handshakes, "
        f"{ratio('echo_fn_32', 'wsroute')} for 32 B echoes and {ratio(fanout, 'wsroute')} for a fan-out to "
        f"{sizes[-1] if sizes else 0:,}"
    ]
    mem = _row(rows, "memory_deflate", "wsroute")
    if mem:
        parts.append(f"it holds {mem['memory_ratio']:.2f}x raw's memory per idle connection with deflate negotiated")
    peers = [k for k in report.peer_kinds(rows) if k not in ("raw", "wsroute")]
    if peers:
        parts.append(
            "the peers' handshake/echo ratios: "
            + ", ".join(f"{report.PEER_NAMES[k]} {ratio('handshake', k)}/{ratio('echo_fn_32', k)}" for k in peers)
        )
    note = " (the machine was shared and busy, so CPU per operation is quoted: lower is better)" if cpu else ""
    tail = " Details: [docs/benchmarks.md](docs/benchmarks.md)." if link else ""
    return (
        f"Measured side by side on {m['nproc']} cores (commit `{m['commit']}`, {m['date'][:10]}, medians of "
        f"per-round ratios{note}): " + "; ".join(parts) + "." + tail
    ).replace("**", "")


README = Path("README.md")
README_BEGIN = "<!-- benchmarks-headline:begin (generated by python -m benchmarks.docs) -->"
README_END = "<!-- benchmarks-headline:end -->"


def readme_block(text: str) -> str | None:
    """The generated headline between the README's markers, or None without markers."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return None
    return text[start + len(README_BEGIN) : end].strip()


def update_readme(path: Path, line: str) -> None:
    """Replace the README's headline block with ``line`` (the README quotes the run, never by hand)."""
    text = path.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return
    path.write_text(text[: start + len(README_BEGIN)] + "\n" + line + "\n" + text[end:])


def details(result: dict[str, Any]) -> str:
    """Every row of the run (the sections above show the peers, memory and 10k tables)."""
    tables = [
        report.network_table(result["summary"]),
        report.fanout_table(result["summary"]),
        report.routing_table(result.get("routing", {})),
    ]
    return "\n\n".join(t for t in (report.render(c, markdown=True) for c in tables) if t)


def is_ancestor(commit: str, measured: str) -> bool | None:
    """Whether ``commit`` is in the history of ``measured`` (None if git cannot tell)."""
    measured = measured.split("+")[0]
    try:
        done = subprocess.run(
            ["git", "merge-base", "--is-ancestor", commit, measured], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(done.returncode)


def instruction_figure(data: dict[str, Any] | None, spec: str) -> str:
    """One figure of ``results/instructions.json`` for ANALYSIS.md, so its prose is never hand-copied.

    ``spec`` is ``LOOP:SERVER:OP`` (instructions per operation, e.g.
    ``1,256,561``), ``LOOP:SERVER:OP:raw`` (the ratio to raw, ``1.064x``) or
    ``LOOP:SERVER:OP:OTHER`` (the ratio to server OTHER); OP is
    ``handshake``, ``echo_32`` or ``echo_json_32``. A figure that was not
    measured reads "n/a (not measured)".
    """
    from benchmarks.instructions import _mean

    loop, server, op, *versus = spec.split(":")
    servers = (data or {}).get("results", {}).get(loop, {})
    value = _mean(servers.get(server, []), op) if server in servers else 0.0
    if not versus:
        return f"{value:,.0f}" if value else "n/a (not measured)"
    other = versus[0]
    base = _mean(servers.get(other, []), op) if other in servers else 0.0
    return f"{value / base:.3f}x" if value and base else "n/a (not measured)"


TRACE = Path(__file__).parent / "results" / "handshake_trace.json"
"""Loop iterations, tasks and GC per handshake, from ``python -m benchmarks.handshake_trace --output``."""


def trace_figure(data: dict[str, Any] | None, spec: str) -> str:
    """``KIND:FIELD`` of ``results/handshake_trace.json`` (``raw:gc_us`` → ``6.00``), or "n/a (not measured)"."""
    kind, field = spec.split(":")
    value = (data or {}).get("results", {}).get(kind, {}).get(field)
    return "n/a (not measured)" if value is None else f"{value:.2f}"


def analysis_text(
    analysis: str, measured: str, instructions: dict[str, Any] | None = None, trace: dict[str, Any] | None = None
) -> str:
    """Fill ANALYSIS.md's placeholders, so its prose quotes measured figures and never copies them.

    ``{status:COMMIT}`` becomes the item's status at the measured commit;
    ``{instr:LOOP:SERVER:OP[:OTHER]}`` a figure of the instruction counts
    (:func:`instruction_figure`); ``{trace:KIND:FIELD}`` one of the handshake
    trace (:func:`trace_figure`).
    """
    analysis = re.sub(r"\{instr:([a-z0-9_:@.+-]+)\}", lambda m: instruction_figure(instructions, m.group(1)), analysis)
    analysis = re.sub(r"\{trace:([a-z0-9_:-]+)\}", lambda m: trace_figure(trace, m.group(1)), analysis)

    def status(match: re.Match[str]) -> str:
        commit = match.group(1)
        landed = is_ancestor(commit, measured)
        if landed is None:
            return f"*Implemented in {commit} (not checked against the measured commit).*"
        if landed:
            return f"*Landed in {commit}, in the figures above.*"
        return f"*Open at the measured commit (implemented later, in {commit}).*"

    return re.sub(r"\{status:([0-9a-f]{7,40})\}", status, analysis)


def _instructions() -> dict[str, Any] | None:
    return json.loads(INSTRUCTIONS.read_text()) if INSTRUCTIONS.exists() else None


def write(path: Path, result: dict[str, Any], analysis: str = "", snippet: Path | None = None) -> None:
    """Write the Markdown page for ``result`` to ``path`` (and the headline to ``snippet``)."""
    notes = "\n".join(f"- {note}" for note in result.get("notes", []))
    if not analysis and ANALYSIS.exists():
        analysis = ANALYSIS.read_text()
    parts = [HEADER, machine_section(result), "**Headline.** " + headline(result, link=False), targets_section(result),
             limits_section(result), peers_section(result), memory_section(result), tenk_section(result),
             wsbench_section(result), instructions_section(_instructions()), "## All results", details(result)]
    if notes:
        parts += ["## Notes", notes]
    if analysis:
        trace = json.loads(TRACE.read_text()) if TRACE.exists() else None
        parts.append(analysis_text(analysis, result["machine"].get("commit", "HEAD"), _instructions(), trace))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(p for p in parts if p) + "\n")
    if snippet is not None:
        snippet.parent.mkdir(parents=True, exist_ok=True)
        snippet.write_text(headline(result) + "\n")
        if snippet == SNIPPET and README.exists():
            update_readme(README, headline(result))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.docs [RESULTS.json PAGE.md]``: regenerate the page and the headline."""
    args = sys.argv[1:] if argv is None else argv
    source, target = (
        (Path(a) for a in args)
        if len(args) == 2
        else (Path(__file__).parent / "results" / "latest.json", Path("docs/benchmarks.md"))
    )
    write(target, json.loads(source.read_text()), snippet=target.parent / "snippets" / SNIPPET.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
