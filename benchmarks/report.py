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
from benchmarks.peers import FANOUT_LIMIT

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
    if scenario.startswith("memory"):
        row.update(
            memory_per_conn=med("memory_per_conn"),
            memory_active=med("memory_active"),
            memory_ratio=vs_ref("memory_per_conn"),
            active_ratio=vs_ref("memory_active"),
            negotiated=med("negotiated"),
            connected=med("connected"),
            delivered=med("delivered"),
        )
        return row
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
        if r["scenario"].startswith(("fanout", "memory")):
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


PEER_NAMES = {
    "raw": "raw websockets",
    "wsroute": "**wsroute**",
    "starlette": "Starlette (uvicorn, websockets sans-I/O)",
    "starlette-wsproto": "Starlette (uvicorn, wsproto)",
    "fastapi": "FastAPI (uvicorn)",
    "socketio": "python-socketio (ASGI, uvicorn)",
    "channels-uvicorn": "Channels (uvicorn)",
    "channels-daphne": "Channels (daphne)",
    "aiohttp": "aiohttp",
}


def _lookup(rows: list[dict[str, Any]], loop: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["scenario"], r["kind"]): r for r in rows if r["loop"] == loop}


def _rate_cell(row: dict[str, Any] | None, digits: int = 2) -> str:
    if row is None:
        return "n/a"
    return f"{_num(row['rate'])} ({_num(row.get('ratio', math.nan), digits)}x)"


def peer_kinds(rows: list[dict[str, Any]]) -> list[str]:
    """The kinds of a peers run, in report order (raw, wsroute, then each peer)."""
    kinds = {r["kind"] for r in rows}
    if not kinds - {"raw", "werkzeug", "wsroute", "rawhook"}:
        return []
    return [k for k in PEER_NAMES if k in kinds]


def _fanout_sizes(rows: list[dict[str, Any]]) -> list[int]:
    return sorted({int(r["scenario"].split("_")[1]) for r in rows if r["scenario"].startswith("fanout")})


def peers_table(rows: list[dict[str, Any]], loop: str) -> list[list[str]]:
    """One row per server kind: every throughput scenario with its ratio to raw, and server CPU per op."""
    at = _lookup(rows, loop)
    sizes = _fanout_sizes(rows) or [1000, 5000]
    small, large = sizes[0], sizes[-1]
    out = [
        [
            "server",
            "handshakes/s (x raw)",
            "srv us/handshake",
            "echo 32 B msg/s (x raw)",
            "srv us/msg",
            "p50 / p99 ms",
            "echo 4 KiB msg/s (x raw)",
            "srv us/msg 4 KiB",
            "typed JSON echo",
            f"fan-out {small:,} deliv/s (x raw)",
            f"fan-out {large:,} deliv/s (x raw)",
            f"srv CPU ms / {large:,} x 10 msgs",
        ]
    ]
    for kind in peer_kinds(rows):
        hs, e32, e4k = at.get(("handshake", kind)), at.get(("echo_fn_32", kind)), at.get(("echo_fn_4096", kind))
        cls = at.get(("echo_cls_32", kind))
        f1, f5 = at.get((f"fanout_{small}", kind)), at.get((f"fanout_{large}", kind))
        out.append(
            [
                PEER_NAMES[kind],
                _rate_cell(hs),
                _num(hs["server_us_per_op"], 0) if hs else "n/a",
                _rate_cell(e32),
                _num(e32["server_us_per_op"], 1) if e32 else "n/a",
                f"{_num(e32['p50_ms'], 2)} / {_num(e32['p99_ms'], 2)}" if e32 else "n/a",
                _rate_cell(e4k),
                _num(e4k["server_us_per_op"], 1) if e4k else "n/a",
                _rate_cell(cls) if cls else "n/a: no typed dispatch",
                _rate_cell(f1),
                ("-" if large == small else _rate_cell(f5) if f5 or kind not in FANOUT_LIMIT else "not run: O(N²)"),
                _num(f5["server_cpu_ms"], 0) if f5 else "n/a",
            ]
        )
    return out


def memory_table(rows: list[dict[str, Any]], loop: str) -> list[list[str]]:
    """Memory per idle connection without and with permessage-deflate offered, per kind."""
    at = _lookup(rows, loop)
    memory = sorted({r["scenario"] for r in rows if r["scenario"].startswith("memory_deflate")})
    if not memory:
        return []
    sizes = _fanout_sizes(rows)
    plain = f"fanout_{sizes[-1]}" if sizes else ""
    out = [
        [
            "server",
            f"no deflate KiB/conn ({plain.split('_')[-1]} idle)" if plain else "no deflate",
            "x raw",
            "deflate offered: idle KiB/conn",
            "x raw",
            "after 1 msg KiB/conn",
            "x raw",
            "deflate negotiated",
        ]
    ]
    for kind in peer_kinds(rows) or [k for k in ("raw", "wsroute") if (memory[0], k) in at]:
        f, m = at.get((plain, kind)), at.get((memory[0], kind))
        out.append(
            [
                PEER_NAMES.get(kind, kind),
                _num(f["memory_per_conn"] / 1024, 1) if f else "n/a",
                _num(f.get("memory_ratio", math.nan), 2) if f else "",
                _num(m["memory_per_conn"] / 1024, 1) if m else "n/a",
                _num(m.get("memory_ratio", math.nan), 2) if m else "",
                _num(m["memory_active"] / 1024, 1) if m else "n/a",
                _num(m.get("active_ratio", math.nan), 2) if m else "",
                f"{_num(m['negotiated'])}/{_num(m['connected'])}" if m else "n/a",
            ]
        )
    return out


def tenk_table(tenk: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The one-process 10,000-connection figures (deflate offered), one row per kind."""
    out = [
        [
            "server",
            "connected",
            "deflate negotiated",
            "time to accept s",
            "total RSS MiB",
            "KiB/conn",
            "1 msg to all: last delivery ms",
            "delivered",
            "RSS after it MiB",
        ]
    ]
    for kind, t in tenk.items():
        out.append(
            [
                PEER_NAMES.get(kind, kind),
                _num(t["connected"]),
                _num(t["negotiated"]),
                _num(t["accept_s"], 1),
                _num(t["rss_mib"], 0),
                _num(t["per_conn_kib"], 1),
                _num(t["broadcast_last_ms"], 0),
                _num(t["delivered"]),
                _num(t["rss_after_broadcast_mib"], 0),
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
    rows = result["summary"]
    loop = rows[0]["loop"] if rows else ""
    parts = [
        render(peers_table(rows, loop), markdown) if peer_kinds(rows) else "",
        render(memory_table(rows, loop), markdown),
        render(tenk_table(result.get("tenk", {})), markdown) if result.get("tenk") else "",
        render(network_table(rows), markdown),
        render(fanout_table(rows), markdown),
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
