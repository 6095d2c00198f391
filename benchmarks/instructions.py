"""Instructions per handshake and per echo message, counted by callgrind: repeatable on a busy machine.

``python -m benchmarks.instructions [--servers raw,bare,full] [--loops asyncio,uvloop]
[--tree before=/path/to/old/checkout] [--repeat 2] [--output benchmarks/results/instructions.json]``

Wall-clock rates on a shared 2-core machine move by tens of per cent from run
to run; the number of instructions a server executes for one operation does
not (it depends on the code, the interpreter and the inputs, not on who else
is running). Each server runs alone under ``valgrind --tool=callgrind`` (in
its own process, started with ``PYTHONHASHSEED=0``); a client in this process
drives it with a blocking socket, one operation at a time, so every
operation takes the same path through the server's loop:

1. a warm-up (handshakes and echoes on every endpoint measured);
2. a *mark*, then ``--handshakes`` sequential handshakes to ``/echo`` (the
   request with an ``Authorization`` header, the 101, a close frame, the
   server's close and TCP close), then a mark;
3. one connection to ``/echo``; a mark, ``--messages`` round trips of a
   32-byte text message, a mark; then the same on ``/json`` with the typed
   ``{"type": "echo", "data": ...}`` message (a ``wsroute.Handler`` method vs
   hand-written ``json.loads`` and dict dispatch, as in the echo_cls scenario).

A mark is a line on the server's stdin; the server calls ``os.getppid()``,
and callgrind (``--dump-before=*getppid``, a libc call nothing else in these
servers makes) writes the instructions executed since the previous mark to a
numbered file; the instructions of a window without operations (the mark's
own cost, about 30,000) are subtracted. Before each step of an operation and
before each mark the client waits until the server's thread sleeps in
``epoll_wait`` (``/proc/PID/wchan``), so a window holds exactly its
operations, and each operation takes the same loop iterations however the
machine schedules the two processes. Per-operation figures are a window's instructions divided by
its operation count.

Servers (``--servers``): ``raw`` (websockets' ``serve()``, the benchmarks'
baseline), ``bare`` (wsroute's benchmark app with 50 routes and nothing
else: ``WSROUTE_BENCH_APP=bare``) and ``full`` (plus the auth middleware and
the headers and health plugins). ``--tree NAME=PATH`` adds the wsroute
servers of another checkout (``git worktree add /tmp/old COMMIT``): its
``wsroute`` package and bundled plugins are imported from there, the harness
and app from this checkout. Needs valgrind (``apt-get install valgrind``);
about a minute per server on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.apps import TOKEN

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "instructions.json"
SERVERS = ("raw", "bare", "full")
#: More wsroute variants, measured only when asked for (``--servers full,limits,metrics,counting``).
EXTRA_SERVERS = ("limits", "metrics", "counting", "middleware", "headers", "health")
LOOPS = ("asyncio", "uvloop")
MARK_FUNCTION = "getppid"
IDLE_WCHAN = "do_epoll_wait"
"""Where the server's thread sleeps when its event loop (asyncio or uvloop) has nothing to do."""

REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    f"Authorization: {TOKEN}\r\n\r\n"
)
CLOSE_1000 = b"\x88\x82\x00\x00\x00\x00\x03\xe8"
"""A masked close frame with code 1000 (mask key 0, so the payload reads as is)."""
TEXT_32 = "x" * 32
JSON_32 = json.dumps({"type": "echo", "data": "x" * (32 - len(json.dumps({"type": "echo", "data": ""})))})


# -- the server process (run under callgrind) -------------------------------


def serve(kind: str, loop_name: str) -> None:
    """Serve ``/echo`` and ``/json`` for ``kind``; print ``PORTS echo json``; obey stdin lines.

    ``mark`` calls ``os.getppid()`` (callgrind dumps before it) and answers
    ``ok``; ``stop`` (or end of input) closes the server and exits.
    """
    from benchmarks import procs

    if kind != "raw":
        os.environ["WSROUTE_BENCH_APP"] = kind
    procs.run_in_loop(loop_name, lambda: _serve(kind))


async def _serve(kind: str) -> None:
    from benchmarks.apps import start

    closables = []
    if kind == "raw":
        echo_server, echo = await start("raw", "/echo")
        json_server, json_running = await start("raw", "/json")
        closables = [echo_server, json_server]
        ports = (echo.port, json_running.port)
    else:
        manager, running = await start("wsroute", "/echo")
        closables = [manager]
        ports = (running.port, running.port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def command() -> None:
        line = sys.stdin.readline().strip()
        if line == "mark":
            os.getppid()
            print("ok", flush=True)
        else:
            stopped.set()

    loop.add_reader(sys.stdin.fileno(), command)
    print("PORTS", *ports, flush=True)
    await stopped.wait()
    loop.remove_reader(sys.stdin.fileno())
    for closable in closables:
        if hasattr(closable, "__aexit__"):
            await closable.__aexit__(None, None, None)
        else:
            closable.close()
            await closable.wait_closed()


# -- the client (this process) ----------------------------------------------


def read_head(sock: socket.socket) -> bytes:
    """Read the response head from ``sock``; ConnectionError unless it is a 101."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head[:200].decode(errors="replace"))
    return head


def open_ws(port: int, path: str) -> socket.socket:
    """A blocking socket past the 101 on ``path``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(REQUEST.format(path=path).encode())
    read_head(sock)
    return sock


def close_ws(sock: socket.socket) -> None:
    """Send a close frame and read until the server closes TCP."""
    sock.sendall(CLOSE_1000)
    while sock.recv(4096):
        pass
    sock.close()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed mid-frame")
        data += chunk
    return data


def round_trip(sock: socket.socket, frame: bytes) -> bytes:
    """Send one masked text frame; return the payload of the server's answer (< 126 bytes)."""
    sock.sendall(frame)
    head = _recv_exactly(sock, 2)
    return _recv_exactly(sock, head[1] & 0x7F)


def text_frame(message: str) -> bytes:
    """A masked (key 0) text frame for a message under 126 bytes."""
    payload = message.encode()
    return bytes([0x81, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload


def wait_idle(pid: int | None, timeout: float = 120) -> None:
    """Return once the server's event loop sleeps in ``epoll_wait`` with nothing left to run.

    Each step of the client waits for this, so the server never finds the
    next request already queued while it finishes the previous one: how
    many loop iterations an operation takes must not depend on timing, or
    the instruction count would. Seen twice in a row, a short while apart,
    since a loop with callbacks ready polls epoll without sleeping.
    """
    if pid is None:
        return
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the server under callgrind did not go idle")
        seen = seen + 1 if wchan.read_text() == IDLE_WCHAN else 0
        time.sleep(0.0005)


def handshakes(port: int, count: int, pid: int | None = None) -> None:
    """Open and close ``count`` connections to ``/echo``, one after another (each step once ``pid`` is idle)."""
    request = REQUEST.format(path="/echo").encode()
    for _ in range(count):
        wait_idle(pid)
        sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wait_idle(pid)  # the accept, alone
        sock.sendall(request)
        read_head(sock)
        wait_idle(pid)  # the handler has started
        close_ws(sock)


def echoes(sock: socket.socket, message: str, count: int, pid: int | None = None) -> None:
    """``count`` round trips of ``message``, one in flight (each sent once ``pid`` is idle)."""
    frame = text_frame(message)
    for _ in range(count):
        wait_idle(pid)
        round_trip(sock, frame)


class Callgrind:
    """One server process under callgrind, its marks and its dump files."""

    def __init__(self, kind: str, loop: str, tree: Path | None, workdir: Path) -> None:
        self.out = workdir / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
        env.pop("WSROUTE_BENCH_APP", None)
        paths = [str(ROOT)]
        if tree is not None:  # that checkout's wsroute (alone: not its benchmarks) and plugins first
            (workdir / "tree").mkdir()
            (workdir / "tree" / "wsroute").symlink_to(tree / "wsroute")
            paths[:0] = [str(workdir / "tree"), *(str(p) for p in sorted(tree.glob("plugins/*/src")))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={self.out}",
            f"--dump-before={MARK_FUNCTION}",
            "--dump-instr=no",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--serve",
            kind,
            "--loop",
            loop,
        ]
        self.log = open(workdir / "valgrind.log", "wb")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=workdir,  # not ROOT: the current directory comes first on sys.path
            env=env,
            text=True,
        )
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        line = self._line(600)
        if not line.startswith("PORTS"):
            raise RuntimeError(f"{kind} server did not start: {line!r} (see {workdir / 'valgrind.log'})")
        self.ports = [int(p) for p in line.split()[1:]]
        self.marks = 0

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        if not self.selector.select(timeout):
            raise TimeoutError("server under callgrind did not answer")
        return self.process.stdout.readline().strip()

    def mark(self) -> int:
        """Wait until the server is idle, then dump; returns the number of the dump file just written."""
        wait_idle(self.process.pid)
        assert self.process.stdin is not None
        self.process.stdin.write("mark\n")
        self.process.stdin.flush()
        if self._line(120) != "ok":
            raise RuntimeError("server did not acknowledge the mark")
        self.marks += 1
        return self.marks

    def instructions(self, dump: int) -> int:
        """Total instructions (Ir) in dump file ``dump``."""
        text = Path(f"{self.out}.{dump}").read_text()
        found = re.search(r"^(?:totals|summary): (\d+)", text, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no totals in {self.out}.{dump}")
        return int(found.group(1))

    def stop(self) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
            self.process.wait(120)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.selector.close()
            self.log.close()


def measure(kind: str, loop: str, tree: Path | None, handshake_count: int, message_count: int) -> dict[str, float]:
    """Instructions per handshake, per 32 B echo and per typed JSON echo for one server."""
    with tempfile.TemporaryDirectory(prefix="wsroute-instr-") as tmp:
        server = Callgrind(kind, loop, tree, Path(tmp))
        try:
            echo_port, json_port = server.ports
            handshakes(echo_port, 10)  # warm-up: every path once, caches filled
            for port, path, message in ((echo_port, "/echo", TEXT_32), (json_port, "/json", JSON_32)):
                sock = open_ws(port, path)
                echoes(sock, message, 20)
                close_ws(sock)
            server.mark()
            idle = server.instructions(server.mark())  # a window with no operation: the marks' own cost
            handshakes(echo_port, handshake_count, server.process.pid)
            figures = {"handshake": (server.instructions(server.mark()) - idle) / handshake_count}
            for port, path, message, label in (
                (echo_port, "/echo", TEXT_32, "echo_32"),
                (json_port, "/json", JSON_32, "echo_json_32"),
            ):
                sock = open_ws(port, path)
                server.mark()
                echoes(sock, message, message_count, server.process.pid)
                figures[label] = (server.instructions(server.mark()) - idle) / message_count
                close_ws(sock)
            return figures
        finally:
            server.stop()


def describe_tree(path: Path | None) -> str:
    """``this checkout at 1a2b3c4`` or ``/tmp/old at 5d6e7f8`` (``+ changes`` when the tree is dirty)."""
    where = path or ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "wsroute", "plugins"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(where)
    return f"{'this checkout' if path is None else path} at {commit}" + (" + uncommitted changes" if dirty else "")


def label_of(kind: str, tree: str) -> str:
    """``raw``, or ``wsroute-bare``/``wsroute-full`` with the tree name when not this checkout."""
    if kind == "raw":
        return "raw"
    return f"wsroute-{kind}" + ("" if tree == "this" else f"@{tree}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every (tree, server, loop) ``args.repeat`` times, ``args.jobs`` servers at a time."""
    trees: dict[str, Path | None] = {} if args.skip_this else {"this": None}
    for spec in args.tree:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve()
    jobs = []
    for loop in args.loops.split(","):
        for name, tree in trees.items():
            for kind in args.servers.split(","):
                if kind == "raw" and name != next(iter(trees)):
                    continue  # raw is websockets: measured once
                for repeat in range(args.repeat):
                    jobs.append((label_of(kind, name), loop, repeat, kind, tree))
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    kept = json.loads(args.merge.read_text()) if args.merge else {"results": {}, "trees": {}}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(measure, kind, loop, tree, args.handshakes, args.messages): (label, loop)
            for label, loop, _, kind, tree in jobs
        }
        for future in concurrent.futures.as_completed(futures):
            label, loop = futures[future]
            figures = future.result()
            results.setdefault(loop, {}).setdefault(label, []).append(figures)
            print(f"{loop:8} {label:24} " + "  ".join(f"{k}={v:,.0f}" for k, v in figures.items()), flush=True)
    for loop, servers in kept["results"].items():
        for label, runs in servers.items():
            results.setdefault(loop, {}).setdefault(label, runs)
    return {
        "handshakes": args.handshakes,
        "messages": args.messages,
        "python": sys.version.split()[0],
        "trees": {**kept["trees"], **{name: describe_tree(path) for name, path in trees.items()}},
        "results": results,
    }


def table(data: dict[str, Any]) -> str:
    """Markdown: per loop and server, instructions per operation (mean of repeats, spread) and x raw."""
    lines = [
        "| loop | server | handshake (instr.) | x raw | echo 32 B | x raw | typed JSON echo | x raw | spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ops = ("handshake", "echo_32", "echo_json_32")
    for loop, servers in data["results"].items():
        raw = {op: _mean(servers.get("raw", []), op) for op in ops}
        for label in sorted(servers, key=lambda s: (s != "raw", s)):
            runs = servers[label]
            cells = []
            for op in ops:
                value = _mean(runs, op)
                ratio = f"{value / raw[op]:.3f}" if raw[op] else "-"
                cells += [f"{value:,.0f}", ratio]
            spread = max(_spread(runs, op) for op in ops)
            lines.append(f"| {loop} | {label} | " + " | ".join(cells) + f" | {spread:.2%} |")
    return "\n".join(lines)


def _mean(runs: list[dict[str, float]], op: str) -> float:
    values = [r[op] for r in runs if op in r]
    return sum(values) / len(values) if values else 0.0


def _spread(runs: list[dict[str, float]], op: str) -> float:
    values = [r[op] for r in runs if op in r]
    if len(values) < 2:
        return 0.0
    return (max(values) - min(values)) / min(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="raw, bare, full (default: all); also " + ", ".join(EXTRA_SERVERS)
    )
    parser.add_argument("--loops", default=",".join(LOOPS), help="asyncio, uvloop (default: both)")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH: also measure another checkout")
    parser.add_argument("--skip-this", action="store_true", help="measure only the --tree checkouts (and raw)")
    parser.add_argument("--merge", type=Path, help="a previous JSON whose results are kept unless measured again")
    parser.add_argument("--handshakes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="runs per server, to show the spread")
    parser.add_argument("--jobs", type=int, default=2, help="servers measured at once")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.loop)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    data = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=2) + "\n")
    print(table(data))
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
