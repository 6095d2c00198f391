"""Profile the wsroute server under handshake and echo load; report its hot spots.

``python -m benchmarks.profile [--seconds 8] [--loop uvloop] [--profiler auto]``

Each phase starts a fresh server, drives the same load as the benchmark, and
samples the server process. With py-spy installed (``--profiler pyspy``, the
default when found) the profile is a low-overhead sampling profile of the
unmodified server; otherwise cProfile runs inside the server, which inflates
pure-Python code (wsroute's included) and so overstates wsroute's share.

The report gives, for every function in ``wsroute/``: *self* (samples where
it is the running frame) and *incl* (samples where it is on the stack), as a
percentage of the server's busy samples, plus the split of self time by area
(wsroute, websockets, asyncio/uvloop, json, other).
"""

from __future__ import annotations

import argparse
import collections
import pstats
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import procs, scenarios
from benchmarks.config import Settings

RESULTS = Path(__file__).parent / "results"
KIND = ["wsroute"]
"""The server kind profiled (``--kind``); wsroute unless comparing."""
PHASES = {  # name: server mode (endpoint)
    "handshake": "echo",
    "echo_fn_32": "echo",
    "echo_cls_32": "json",
    "fanout_1000": "idle",
}
AREAS = (
    ("wsroute", "/wsroute/"),
    ("websockets", "/websockets/"),
    ("asyncio", "/asyncio/"),
    ("json", "/json/"),
    ("uvloop", "uvloop"),
)


def area(filename: str, function: str = "") -> str:
    """Classify a frame into the areas of the report.

    Time in uvloop's C code (and the system calls it makes) has no Python
    frame of its own: py-spy charges it to the innermost Python frame, which
    for the loop itself is ``run_in_loop`` (``run_until_complete``).
    """
    if function == "run_in_loop":
        return "loop (C)"
    path = "/" + filename
    for name, marker in AREAS:
        if marker in path:
            return name
    return "other"


def short(filename: str) -> str:
    """Return the path from the package folder on (``wsroute/app.py``)."""
    for _, marker in AREAS[:2]:
        if marker in "/" + filename:
            return marker.strip("/") + "/" + ("/" + filename).split(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]


def prepare(phase: str, server: scenarios.Server, clients: list[procs.Child]) -> None:
    """Set up what must not be profiled: the idle clients of the fan-out phase."""
    if phase.startswith("fanout"):
        count = int(phase.split("_")[1])
        shares = scenarios.split(count, len(clients))
        scenarios.command_all(clients, [("idle", server.uri, n, 50) for n in shares], 60)
        scenarios.wait_connections(server, count, 10)


def load(phase: str, server: scenarios.Server, clients: list[procs.Child], s: Settings) -> None:
    """Drive the phase's load against ``server`` for about ``s.duration`` seconds."""
    if phase == "handshake":
        scenarios.handshake(server, clients, s)
    elif phase.startswith("fanout"):
        used = len(scenarios.split(int(phase.split("_")[1]), len(clients)))
        end, sent = time.monotonic() + s.duration, 0
        while time.monotonic() < end and sent < 10_000:
            sent += s.fanout_messages
            scenarios.deliver(server, clients, used, sent, s.fanout_messages, s.fanout_size)
        scenarios.command_all(clients, [("close_idle",)] * used, 60)
    else:
        scenarios.echo(server, clients, s, PHASES[phase], 32)


def pyspy_phase(phase: str, loop: str, clients: list[procs.Child], s: Settings) -> Counter:
    """Sample the server with py-spy during one phase; return collapsed stacks."""
    server = scenarios.Server(KIND[0], PHASES[phase], loop)
    out = RESULTS / f"profile-{phase}.collapsed"
    try:
        prepare(phase, server, clients)
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(server.child.process.pid),
                "-d",
                str(int(s.duration)),
                "-r",
                "200",
                "-f",
                "raw",
                "--nolineno",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # let py-spy attach before the load starts
        load(phase, server, clients, s)
        spy.wait(timeout=s.duration + 30)
    finally:
        server.stop()
    return parse_collapsed(out.read_text())


Counter = dict[str, Any]


def parse_collapsed(text: str) -> Counter:
    """Turn py-spy's ``frame;frame;leaf count`` lines into self/incl counters."""
    own: collections.Counter[tuple[str, str]] = collections.Counter()
    incl: collections.Counter[tuple[str, str]] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    return {"total": total, "self": own, "incl": incl}


def _frame(text: str) -> tuple[str, str]:
    name, _, where = text.partition(" (")
    return name, where.rstrip(")").rsplit(":", 1)[0]


def cprofile_phase(phase: str, loop: str, clients: list[procs.Child], s: Settings) -> Counter:
    """Run the server under cProfile during one phase; return self/incl times."""
    out = RESULTS / f"profile-{phase}.prof"
    server = scenarios.Server(KIND[0], PHASES[phase], loop, str(out))
    try:
        prepare(phase, server, clients)  # profiled too: cProfile cannot start later
        load(phase, server, clients, s)
    finally:
        server.stop()
    own: collections.Counter[tuple[str, str]] = collections.Counter()
    incl: collections.Counter[tuple[str, str]] = collections.Counter()
    for (filename, _, name), (_, _, tottime, cumtime, _) in pstats.Stats(str(out)).stats.items():  # type: ignore[attr-defined]
        own[(name, filename)] += tottime
        incl[(name, filename)] += cumtime
    return {"total": sum(own.values()), "self": own, "incl": incl}


def report(phase: str, profile: Counter, top: int = 15) -> str:
    """Format one phase: areas, then wsroute's functions by inclusive share."""
    total = profile["total"] or 1
    areas: collections.Counter[str] = collections.Counter()
    for (name, filename), value in profile["self"].items():
        areas[area(filename, name)] += value
    lines = [f"== {phase}: self time by area (% of busy server samples)"]
    lines += [f"  {name:<11} {100 * v / total:5.1f}%" for name, v in areas.most_common()]
    lines.append(f"== {phase}: wsroute functions (self %, incl %)")
    rows = [(k, v) for k, v in profile["incl"].items() if area(k[1]) == "wsroute"]
    for (name, filename), value in sorted(rows, key=lambda kv: -kv[1])[:top]:
        own = profile["self"].get((name, filename), 0)
        lines.append(f"  {100 * own / total:5.1f}% {100 * value / total:5.1f}%  {short(filename)}:{name}")
    lines.append(f"== {phase}: top self time overall")
    for (name, filename), value in profile["self"].most_common(top):
        lines.append(f"  {100 * value / total:5.1f}%  {short(filename)}:{name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Profile each phase and print (and save) the hot-spot report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="load duration per phase")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop", help="server loop")
    parser.add_argument(
        "--profiler",
        choices=["auto", "pyspy", "cprofile"],
        default="auto",
        help="py-spy (sampling, preferred) or cProfile (in-process)",
    )
    parser.add_argument("--kind", choices=["raw", "werkzeug", "wsroute"], default="wsroute", help="server kind")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated phases")
    args = parser.parse_args(argv)
    KIND[0] = args.kind
    use_spy = args.profiler == "pyspy" or (args.profiler == "auto" and shutil.which("py-spy"))
    s = Settings(duration=args.seconds)
    RESULTS.mkdir(exist_ok=True)
    procs.raise_nofile_limit()
    procs.prepare_children(pin=True)
    clients = scenarios.start_clients(s.client_procs)
    texts = []
    try:
        for phase in args.phases.split(","):
            run = pyspy_phase if use_spy else cprofile_phase
            texts.append(report(phase, run(phase, args.loop, clients, s)))
    finally:
        for child in clients:
            child.stop()
    header = f"profiler: {'py-spy' if use_spy else 'cProfile'}, server {args.kind}, loop {args.loop}\n"
    text = header + "\n\n".join(texts)
    print(text)
    (RESULTS / f"profile-{args.kind}.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
