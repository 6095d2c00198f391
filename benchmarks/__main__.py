"""Command line: ``python -m benchmarks [--quick | --smoke] [options]``.

Runs the network scenarios for every requested loop, then route matching,
prints the tables, and writes ``benchmarks/results/latest.json``. See
``benchmarks/README.md`` for what each scenario measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import machine, peers, procs, report, routing_bench, scenarios, wsroute_app
from benchmarks.config import PRESETS, Settings, with_peers

RESULTS = Path(__file__).parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; every option has help text."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_const",
        dest="preset",
        const="quick",
        help="one round, uvloop only, 1,000 fan-out clients (~40 s)",
    )
    size.add_argument(
        "--smoke",
        action="store_const",
        dest="preset",
        const="smoke",
        help="tiny counts, a few seconds: for the test suite",
    )
    parser.add_argument(
        "--loop", choices=["asyncio", "uvloop", "both"], help="server event loop(s) (default: the preset's)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per scenario")
    parser.add_argument("--fanout-rounds", type=int, help="rounds of the fan-out and memory phases")
    parser.add_argument("--duration", type=float, help="seconds per load phase")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run Starlette, FastAPI, python-socketio, Channels (uvicorn, daphne) and aiohttp, "
        "the memory-with-deflate and the 10,000-connection scenarios",
    )
    parser.add_argument("--tenk", type=int, help="connections of the one-process scenario (default 10,000)")
    parser.add_argument(
        "--scenarios", help="comma-separated subset of handshake,echo,fanout,memory,tenk,routing"
    )
    parser.add_argument("--kinds", help=f"comma-separated subset of raw,werkzeug,wsroute,{','.join(peers.PEERS)}")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin the server to CPU 0 and the clients to the rest"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results file (default: {RESULTS})")
    parser.add_argument(
        "--docs",
        type=Path,
        help="also write a Markdown report there (docs/benchmarks.md), with the compression study, and the "
        "README's headline line in snippets/benchmarks-headline.md beside it",
    )
    parser.add_argument(
        "--wsbench",
        type=Path,
        help="a results file of the independent harness (wsbench.py run --json) to summarise on the page",
    )
    parser.set_defaults(preset="full")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """Apply command-line overrides to the chosen preset."""
    s = dataclasses.replace(PRESETS[args.preset])
    if args.peers:
        s = with_peers(s, peers.PEERS, args.preset)
    if args.tenk:
        s.tenk = args.tenk
    if args.loop:
        s.loops = ("uvloop", "asyncio") if args.loop == "both" else (args.loop,)
    s.pin = args.pin
    if args.rounds:
        s.rounds = args.rounds
    if args.fanout_rounds:
        s.fanout_rounds = args.fanout_rounds
    if args.duration:
        s.duration = args.duration
    if args.scenarios:
        s.scenarios = tuple(args.scenarios.split(","))
    if args.kinds:
        s.kinds = tuple(args.kinds.split(","))
        s.fanout_kinds = tuple(k for k in s.fanout_kinds if k in s.kinds)
        s.tenk_kinds = tuple(k for k in s.tenk_kinds if k in s.kinds)
        s.memory_kinds = tuple(k for k in s.memory_kinds if k in s.kinds)
    return s


def run(s: Settings) -> dict[str, Any]:
    """Run every requested scenario and return the result document."""
    procs.raise_nofile_limit()
    procs.prepare_children(s.pin)
    started = time.monotonic()
    notes: set[str] = set()
    skipped = {k: peers.missing(k) for k in peers.PEERS if k in s.kinds}
    skipped["wsroute"] = wsroute_app.unavailable()
    for kind, reason in skipped.items():
        if reason:
            notes.add(reason)
            s = dataclasses.replace(
                s,
                kinds=tuple(k for k in s.kinds if k != kind),
                fanout_kinds=tuple(k for k in s.fanout_kinds if k != kind),
                tenk_kinds=tuple(k for k in s.tenk_kinds if k != kind),
                memory_kinds=tuple(k for k in s.memory_kinds if k != kind),
            )
    loops: dict[str, Any] = {}
    network = {"handshake", "echo", "fanout", "memory"} & set(s.scenarios)
    if network:
        clients = scenarios.start_clients(s.client_procs)
        try:
            for loop in s.loops:
                loops[loop] = scenarios.run_loop(s, loop, clients, notes)
        finally:
            for child in clients:
                child.stop()
    tenk: dict[str, Any] = {}
    if "tenk" in s.scenarios:
        for kind in s.tenk_kinds:
            try:
                tenk[kind] = scenarios.tenk(s, s.loops[0], kind, notes)
            except (TimeoutError, EOFError, OSError) as exc:
                notes.add(f"tenk {kind}: failed ({exc!r}); its figures are missing")
    routing = {}
    if "routing" in s.scenarios:
        routing = routing_bench.run(s.route_counts, s.route_rounds, s.route_duration, s.max_ops)
    info = machine.describe()
    return {
        "machine": info,
        "settings": dataclasses.asdict(s),
        "notes": sorted(notes),
        "elapsed_s": time.monotonic() - started,
        "loops": loops,
        "summary": report.summarize_network(loops, info["nproc"] or 1),
        "routing": routing,
        "tenk": tenk,
    }


def main(argv: list[str] | None = None) -> int:
    """Run, print the tables, save the JSON (and the docs page if asked)."""
    args = parse_args(argv)
    result = run(settings_from(args))
    result["command"] = "python -m benchmarks " + " ".join(argv or sys.argv[1:])
    report.write_json(args.output, result)  # first: a failure below must not lose the run
    print(report.tables(result))
    for note in result["notes"]:
        print("note:", note)
    print(f"elapsed {result['elapsed_s']:.0f}s; results in {args.output}")
    if args.docs:
        from benchmarks import deflate, docs, wsbench_summary

        result["deflate"] = deflate.run()
        if args.wsbench:
            result["wsbench"] = wsbench_summary.summarise(json.loads(args.wsbench.read_text()))
        docs.write(args.docs, result, snippet=args.docs.parent / "snippets" / docs.SNIPPET.name)
    report.write_json(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
