"""permessage-deflate settings compared: compression ratio, CPU and memory per connection.

``python -m benchmarks.deflate [--connections 1000] [--json PATH]``

websockets' compression guide ("topics/compression" in its docs) explains
that the compressor's window (``server_max_window_bits``), the window the
client may use (``client_max_window_bits``, which sizes the server's
decompressor) and zlib's ``memLevel`` trade compression for memory per
connection. This study measures that trade on the JSON chat corpus of
:mod:`benchmarks.corpus`, with websockets' real extension code:

- **ratio**: compressed bytes / JSON bytes, server to client, the whole
  corpus sent over one connection (context takeover, as negotiated);
  **client ratio** the same for what the client sends with the window it
  was allowed (its own memLevel: zlib's 8, as browsers use);
- **CPU**: microseconds per message to compress (server to client) and to
  decompress (client to server; the client compresses with the window it
  was allowed);
- **memory**: RSS per connection of ``--connections`` server-side extension
  objects in a fresh process, *idle* (negotiated, no message yet) and
  *active* (each has compressed and decompressed 8 messages).

Each setting runs in its own interpreter so that one's heap does not pad
another's RSS. wsroute's default (:mod:`wsroute.compression`) is the row
marked ``wsroute``; the bound it must meet is in :data:`TARGETS`.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks import corpus, procs

SETTINGS: list[dict[str, Any]] = [
    {"name": "websockets default", "server": 12, "client": 12, "mem": 5, "lazy": False, "no_takeover": False},
    {"name": "zlib maximum", "server": 15, "client": 15, "mem": 8, "lazy": False, "no_takeover": False},
    {"name": "default, no server context takeover", "server": 12, "client": 12, "mem": 5, "lazy": False,
     "no_takeover": True},
    {"name": "websockets default, lazy", "server": 12, "client": 12, "mem": 5, "lazy": True, "no_takeover": False},
    {"name": "memLevel 3, lazy", "server": 12, "client": 12, "mem": 3, "lazy": True, "no_takeover": False},
    {"name": "client window 9, lazy", "server": 12, "client": 9, "mem": 5, "lazy": True, "no_takeover": False},
    {"name": "12/9/3, lazy", "server": 12, "client": 9, "mem": 3, "lazy": True, "no_takeover": False},
    {"name": "11/11/4, lazy", "server": 11, "client": 11, "mem": 4, "lazy": True, "no_takeover": False},
    {"name": "10/10/3, lazy", "server": 10, "client": 10, "mem": 3, "lazy": True, "no_takeover": False},
]
REFERENCE = "websockets default"
TARGETS = {"ratio_x_ref": 1.10, "memory_x_ref": 0.6}
"""wsroute's default against websockets' default: compressed size at most 1.10x,
memory per idle connection (whole connection, measured by the peers run) at most 0.6x."""
ACTIVE_MESSAGES = 8


def wsroute_setting() -> dict[str, Any]:
    """The setting wsroute ships (read from :mod:`wsroute.compression`)."""
    from wsroute import compression

    return {
        "name": "wsroute",
        "server": compression.SERVER_MAX_WINDOW_BITS,
        "client": compression.CLIENT_MAX_WINDOW_BITS,
        "mem": compression.MEM_LEVEL,
        "lazy": True,
        "no_takeover": False,
    }


def _extension(setting: dict[str, Any], side: str) -> Any:
    """A negotiated extension object for the server (``side="server"``) or the client."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    from wsroute.compression import LazyPerMessageDeflate

    cls = LazyPerMessageDeflate if setting["lazy"] and side == "server" else PerMessageDeflate
    server_bits, client_bits = setting["server"], setting["client"]
    if side == "server":  # remote = client
        return cls(False, setting["no_takeover"], client_bits, server_bits, {"memLevel": setting["mem"]})
    return cls(setting["no_takeover"], False, server_bits, client_bits, {"memLevel": 8})


def measure_one(setting: dict[str, Any], connections: int) -> dict[str, Any]:
    """Measure one setting in this process (called in a fresh interpreter)."""
    from websockets.frames import Frame, Opcode

    payloads = corpus.messages()
    frames = [Frame(Opcode.TEXT, p) for p in payloads]
    server, client = _extension(setting, "server"), _extension(setting, "client")
    started = time.perf_counter()
    sent = [server.encode(f) for f in frames]
    encode_us = (time.perf_counter() - started) / len(frames) * 1e6
    compressed = sum(len(f.data) for f in sent)
    upstream = [client.encode(f) for f in frames]
    up_compressed = sum(len(f.data) for f in upstream)
    started = time.perf_counter()
    for f in upstream:
        server.decode(f)
    decode_us = (time.perf_counter() - started) / len(frames) * 1e6
    for f in sent:  # the client can read what the server sent: the setting is valid
        client.decode(f)

    active_frames = frames[:ACTIVE_MESSAGES]
    active_up = upstream[:ACTIVE_MESSAGES]
    del server, client, sent, upstream
    gc.collect()
    rss0 = procs.rss_bytes()
    idle = [_extension(setting, "server") for _ in range(connections)]
    gc.collect()
    rss1 = procs.rss_bytes()
    for ext in idle:
        for down, up in zip(active_frames, active_up, strict=True):
            ext.encode(down)
            ext.decode(up)
    gc.collect()
    rss2 = procs.rss_bytes()
    return {
        **setting,
        "ratio": compressed / sum(len(p) for p in payloads),
        "up_ratio": up_compressed / sum(len(p) for p in payloads),
        "encode_us": encode_us,
        "decode_us": decode_us,
        "idle_kib": (rss1 - rss0) / connections / 1024,
        "active_kib": (rss2 - rss0) / connections / 1024,
    }


def run(connections: int = 1000) -> dict[str, Any]:
    """Measure every setting, each in a fresh interpreter; return rows and the verdict."""
    rows = []
    for setting in [*SETTINGS, wsroute_setting()]:
        argv = [sys.executable, "-m", "benchmarks.deflate", "--one", json.dumps(setting)]
        argv += ["--connections", str(connections)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        rows.append(json.loads(done.stdout))
    ref = next(r for r in rows if r["name"] == REFERENCE)
    for row in rows:
        row["ratio_x_ref"] = row["ratio"] / ref["ratio"]
        row["active_x_ref"] = row["active_kib"] / ref["active_kib"] if ref["active_kib"] > 0 else float("nan")
    return {"connections": connections, "messages": len(corpus.messages()), "rows": rows, "targets": TARGETS}


def table(result: dict[str, Any]) -> list[list[str]]:
    """The study as table cells (header first)."""
    header = "setting|server/client bits, memLevel|lazy|ratio|x ws default|client ratio|compress us/msg"
    header += "|decompress us/msg|idle KiB/conn|active KiB/conn|active x ws default"
    out = [header.split("|")]
    for r in result["rows"]:
        out.append([
            f"**{r['name']}**" if r["name"] == "wsroute" else r["name"],
            f"{r['server']}/{r['client']}, {r['mem']}" + (", no server takeover" if r["no_takeover"] else ""),
            "yes" if r["lazy"] else "no",
            f"{r['ratio']:.3f}", f"{r['ratio_x_ref']:.2f}", f"{r['up_ratio']:.3f}",
            f"{r['encode_us']:.1f}", f"{r['decode_us']:.1f}",
            f"{r['idle_kib']:.1f}", f"{r['active_kib']:.1f}", f"{r['active_x_ref']:.2f}",
        ])
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the study (or, with ``--one``, one setting) and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deflate", description=__doc__)
    parser.add_argument("--connections", type=int, default=1000, help="extension objects for the memory figures")
    parser.add_argument("--json", help="also write the result document there")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one), args.connections)))
        return 0
    from benchmarks import report

    result = run(args.connections)
    print(report.render(table(result)))
    if args.json:
        report.write_json(__import__("pathlib").Path(args.json), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
