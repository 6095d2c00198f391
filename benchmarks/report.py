"""Turn per-round measurements into medians, ratios, a table and JSON.

Ratios are medians of per-round ratios against the reference kind measured in
the same round (``raw`` for the network scenarios, werkzeug for route
matching), never ratios of medians: a noisy round then moves both numbers of
its ratio together instead of skewing one side.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks import stats

NETWORK_UNITS = {"handshake": "conn/s", "echo": "msg/s", "fanout": "deliv/s"}
REFERENCE = "raw"


def limit(server_cpu: float, client_cpu: float, background_cpu: float, cores: int) -> str:
    """Guess what bounded a phase from CPU-seconds per wall-second.

    A single-threaded server cannot use more than one core: near 1.0 it was
    the limit. Clients near the cores the server leaves were the limit. If
    neither, but the machine was full because other programs ran
    (``background_cpu``), the phase was starved: "contended". Otherwise it
    was latency-bound (waiting, not computing).
    """
    if server_cpu >= 0.85:
        return "server"
    if client_cpu >= 0.85 * max(1, cores - 1):
        return "clients"
    if math.isnan(background_cpu):
        background_cpu = 0.0
    if server_cpu + client_cpu + background_cpu >= 0.85 * cores:
        return "contended"
    return "latency"


def summarize_network(loops: dict[str, Any], cores: int) -> list[dict[str, Any]]:
    """Return one summary row per (loop, scenario, kind)."""
    rows = []
    for loop, scenarios in loops.items():
        for scenario, kinds in scenarios.items():
            reference = kinds.get(REFERENCE, [])
            for kind, rounds in kinds.items():
                rows.append(_row(loop, scenario, kind, rounds, reference, cores))
    return rows


def _row(
    loop: str, scenario: str, kind: str, rounds: list[dict[str, Any]], reference: list[dict[str, Any]], cores: int
) -> dict[str, Any]:
    def med(key: str) -> float:
        return stats.median(r.get(key, math.nan) for r in rounds)

    def vs_ref(key: str) -> float:
        return stats.median_ratio([r.get(key, math.nan) for r in rounds], [r.get(key, math.nan) for r in reference])

    row = {
        "loop": loop,
        "scenario": scenario,
        "kind": kind,
        "rounds": len(rounds),
        "rate": med("rate"),
        "ratio": vs_ref("rate"),
        "server_cpu": med("server_cpu"),
    }
    if scenario.startswith("fanout"):
        row.update(
            first_last_ms=med("first_last_ms"),
            burst_last_ms=med("burst_last_ms"),
            memory_per_conn=med("memory_per_conn"),
            send_ms=med("send_ms"),
            server_cpu_ms=med("server_cpu_ms"),
            client_cpu_ms=med("client_cpu_ms"),
            memory_ratio=vs_ref("memory_per_conn"),
            delivered=med("delivered"),
            expected=med("expected"),
        )
        row["cpu_ratio"] = vs_ref("server_cpu_ms")
        window = row["burst_last_ms"]
        server_util = row["server_cpu_ms"] / window if window > 0 else math.nan
        client_util = row["client_cpu_ms"] / window if window > 0 else math.nan
        row["limit"] = limit(server_util, client_util, med("background_cpu"), cores)
    else:
        row.update(
            p50_ms=med("p50_ms"),
            p99_ms=med("p99_ms"),
            client_cpu=med("client_cpu"),
            background_cpu=med("background_cpu"),
            server_us_per_op=med("server_us_per_op"),
            cost_ratio=vs_ref("server_us_per_op"),
            errors=med("errors"),
        )
        row["limit"] = limit(row["server_cpu"], row["client_cpu"], row["background_cpu"], cores)
    return row


def _num(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def network_table(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Return the handshake/echo rows as table cells (header first)."""
    header = ["loop", "scenario", "kind", "rate", "x raw", "p50 ms", "p99 ms", "srv us/op", "cost x raw"]
    header += ["srv cpu", "cli cpu", "bg cpu", "limit"]
    out = [header]
    for r in rows:
        if r["scenario"].startswith("fanout"):
            continue
        unit = NETWORK_UNITS[r["scenario"].split("_")[0]]
        out.append(
            [
                r["loop"],
                r["scenario"],
                r["kind"],
                f"{_num(r['rate'])} {unit}",
                _num(r.get("ratio", math.nan), 2),
                _num(r.get("p50_ms", math.nan), 2),
                _num(r.get("p99_ms", math.nan), 2),
                _num(r.get("server_us_per_op", math.nan), 1),
                _num(r.get("cost_ratio", math.nan), 2),
                _num(r.get("server_cpu", math.nan), 2),
                _num(r.get("client_cpu", math.nan), 2),
                _num(r.get("background_cpu", math.nan), 2),
                r.get("limit", "-"),
            ]
        )
    return out


def fanout_table(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Return the fan-out/memory rows as table cells (header first)."""
    out = [
        [
            "loop",
            "scenario",
            "kind",
            "deliveries/s",
            "x raw",
            "1 msg last ms",
            "burst last ms",
            "srv cpu ms",
            "cpu x raw",
            "cli cpu ms",
            "limit",
            "delivered",
            "mem/conn KiB",
            "mem x raw",
        ]
    ]
    for r in rows:
        if not r["scenario"].startswith("fanout"):
            continue
        out.append(
            [
                r["loop"],
                r["scenario"],
                r["kind"],
                _num(r.get("rate", math.nan)),
                _num(r.get("ratio", math.nan), 2),
                _num(r.get("first_last_ms", math.nan), 1),
                _num(r.get("burst_last_ms", math.nan), 1),
                _num(r.get("server_cpu_ms", math.nan), 1),
                _num(r.get("cpu_ratio", math.nan), 2),
                _num(r.get("client_cpu_ms", math.nan), 1),
                r.get("limit", "-"),
                f"{_num(r['delivered'])}/{_num(r['expected'])}",
                _num(r.get("memory_per_conn", math.nan) / 1024, 1),
                _num(r.get("memory_ratio", math.nan), 2),
            ]
        )
    return out


def routing_table(routing: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Return the route-matching results as table cells (header first)."""
    out = [["scenario", "werkzeug match/s", "wsroute match/s", "x werkzeug"]]
    for name, r in routing.items():
        out.append(
            [
                name,
                _num(r.get("werkzeug", math.nan)),
                _num(r.get("wsroute", math.nan)),
                _num(r.get("ratio", math.nan), 1),
            ]
        )
    return out


def render(cells: list[list[str]], markdown: bool = False) -> str:
    """Render cells as an aligned text table, or as a Markdown table."""
    if len(cells) <= 1:
        return ""
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in cells]
        lines.insert(1, "|" + "---|" * len(cells[0]))
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False)))
        for row in cells
    )


def tables(result: dict[str, Any], markdown: bool = False) -> str:
    """Render every table of a result document."""
    parts = [
        render(network_table(result["summary"]), markdown),
        render(fanout_table(result["summary"]), markdown),
        render(routing_table(result.get("routing", {})), markdown),
    ]
    return "\n\n".join(p for p in parts if p)


def write_json(path: Path, result: dict[str, Any]) -> None:
    """Write the result document (NaN becomes null so any JSON reader copes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(result), indent=1, sort_keys=True) + "\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
