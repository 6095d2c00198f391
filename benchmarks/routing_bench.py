"""Route matching alone, no sockets: ``wsroute.routing.PathRouter.match`` vs werkzeug.

Two route tables per size: all static (``/svc7/items``) and all
parameterised (``/svc7/items/{id:int}``; werkzeug ``<int:id>``). Both
matchers look up the same 256 paths spread evenly over the table, the last
route included, so a matcher that scans its routes in order pays for it.

werkzeug is given its best case: ``Map.bind("localhost")`` once, then
``adapter.match(path)`` per lookup. (websockets' own router binds once per
request, which costs more.) The benchmark runs in the orchestrator process,
which is otherwise idle while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks import stats

SAMPLE_PATHS = 256


def table(count: int, kind: str) -> list[tuple[str, str, str]]:
    """Return (wsroute pattern, werkzeug rule, a matching path) for each route."""
    rows = []
    for i in range(count):
        if kind == "static":
            rows.append((f"/svc{i}/items", f"/svc{i}/items", f"/svc{i}/items"))
        else:
            rows.append((f"/svc{i}/items/{{id:int}}", f"/svc{i}/items/<int:id>", f"/svc{i}/items/{i * 7 + 1}"))
    return rows


def sample(rows: list[tuple[str, str, str]]) -> list[str]:
    """Return up to SAMPLE_PATHS paths evenly spread over the table, last included."""
    count = len(rows)
    picks = min(count, SAMPLE_PATHS)
    indexes = {round(i * (count - 1) / max(1, picks - 1)) for i in range(picks)}
    return [rows[i][2] for i in sorted(indexes)]


def werkzeug_matcher(rows: list[tuple[str, str, str]]) -> Callable[[str], Any]:
    """Build werkzeug's matcher for the table (bound once)."""
    from werkzeug.routing import Map, Rule

    adapter = Map([Rule(rule, endpoint=str(i)) for i, (_, rule, _) in enumerate(rows)])
    return adapter.bind("localhost").match


def wsroute_matcher(rows: list[tuple[str, str, str]]) -> Callable[[str], Any]:
    """Build ``wsroute.routing.PathRouter`` for the table and return its ``match``."""
    from wsroute.routing import DEFAULT_CONVERTERS, PathRouter, Pattern

    router: PathRouter[str] = PathRouter()
    for i, (pattern, _, _) in enumerate(rows):
        router.add(Pattern.parse(pattern, DEFAULT_CONVERTERS), str(i))
    return router.match


def rate(match: Callable[[str], Any], paths: list[str], duration: float, max_ops: int) -> float:
    """Return matches per second, bounded by ``duration`` and ``max_ops``.

    Each batch runs the whole path list, so the clock is read once per
    batch rather than once per match.
    """
    for path in paths:  # warm up, and check every path really matches
        if match(path) is None:
            raise AssertionError(f"{path!r} did not match")
    ops, started = 0, time.perf_counter()
    end = started + duration
    while ops < max_ops:
        for path in paths:
            match(path)
        ops += len(paths)
        if time.perf_counter() >= end:
            break
    return ops / (time.perf_counter() - started)


def run(counts: tuple[int, ...], rounds: int, duration: float, max_ops: int) -> dict[str, dict[str, Any]]:
    """Measure both matchers for each size and table kind, ``rounds`` times."""
    results: dict[str, dict[str, Any]] = {}
    for count in counts:
        for kind in ("static", "param"):
            rows = table(count, kind)
            paths = sample(rows)
            matchers = {"werkzeug": werkzeug_matcher(rows), "wsroute": wsroute_matcher(rows)}
            rounds_out: dict[str, list[float]] = {name: [] for name in matchers}
            for _ in range(rounds):
                for name, match in matchers.items():
                    rounds_out[name].append(rate(match, paths, duration, max_ops))
            results[f"routing_{kind}_{count}"] = {
                "werkzeug": stats.median(rounds_out["werkzeug"]),
                "wsroute": stats.median(rounds_out["wsroute"]),
                "ratio": stats.median_ratio(rounds_out["wsroute"], rounds_out["werkzeug"]),
                "rounds": rounds_out,
            }
    return results
