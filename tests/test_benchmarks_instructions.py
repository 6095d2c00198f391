"""benchmarks/instructions.py without valgrind: its server and client speak, its table and docs section render.

Counting under callgrind takes minutes, so the suite checks the parts that
decide whether the counts mean anything: the server obeys marks, the client's
operations complete against it with the idle waits, and the figures land in
the table and the docs page as ratios to raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import docs, instructions

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="the idle wait reads /proc/PID/wchan (Linux)")
def test_server_obeys_marks_and_the_client_completes_every_operation() -> None:
    """A full-app server started as the harness starts it answers marks, handshakes and both echoes, then stops."""
    with subprocess.Popen(
        [sys.executable, "-m", "benchmarks.instructions", "--serve", "full", "--loop", "asyncio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        text=True,
    ) as server:
        try:
            _drive(server)
        finally:
            if server.poll() is None:
                server.kill()


def _drive(server: subprocess.Popen[str]) -> None:
    """Handshakes, both echoes, a mark and a stop, checking each answer."""
    assert server.stdin is not None and server.stdout is not None
    ports = server.stdout.readline().split()
    assert ports[0] == "PORTS"
    echo_port, json_port = int(ports[1]), int(ports[2])
    instructions.handshakes(echo_port, 3, server.pid)
    sock = instructions.open_ws(echo_port, "/echo")
    instructions.wait_idle(server.pid, timeout=30)
    assert instructions.round_trip(sock, instructions.text_frame(instructions.TEXT_32)) == b"x" * 32
    instructions.echoes(sock, instructions.TEXT_32, 5, server.pid)
    instructions.close_ws(sock)
    sock = instructions.open_ws(json_port, "/json")
    reply = instructions.round_trip(sock, instructions.text_frame(instructions.JSON_32))
    assert json.loads(reply) == json.loads(instructions.JSON_32)
    instructions.close_ws(sock)
    server.stdin.write("mark\n")
    server.stdin.flush()
    assert server.stdout.readline().strip() == "ok"
    server.stdin.write("stop\n")
    server.stdin.close()
    assert server.wait(30) == 0


SAMPLE = {
    "handshakes": 40,
    "messages": 200,
    "python": "3.11.7",
    "trees": {"this": "this checkout at abc1234", "old": "/tmp/old at def5678"},
    "results": {
        "asyncio": {
            "raw": [{"handshake": 1000.0, "echo_32": 100.0, "echo_json_32": 200.0}] * 2,
            "wsroute-full": [
                {"handshake": 1100.0, "echo_32": 101.0, "echo_json_32": 180.0},
                {"handshake": 1110.0, "echo_32": 101.0, "echo_json_32": 180.0},
            ],
        }
    },
}


def test_table_gives_means_ratios_to_raw_and_the_spread() -> None:
    """Each server's row has its mean per operation, its ratio to raw on that loop, and its runs' spread."""
    rows = instructions.table(SAMPLE).splitlines()
    assert rows[2] == "| asyncio | raw | 1,000 | 1.000 | 100 | 1.000 | 200 | 1.000 | 0.00% |"
    assert rows[3] == "| asyncio | wsroute-full | 1,105 | 1.105 | 101 | 1.010 | 180 | 0.900 | 0.91% |"


def test_docs_section_renders_the_table_and_names_the_trees() -> None:
    """The generated docs section has its heading, the table and what each suffix means."""
    section = docs.instructions_section(SAMPLE)
    assert section.startswith("## Instructions per operation (callgrind)")
    assert "`@old`: /tmp/old at def5678" in section
    assert "| asyncio | wsroute-full | 1,105 | 1.105 |" in section
    assert docs.instructions_section(None) == ""
