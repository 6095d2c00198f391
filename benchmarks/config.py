"""Run sizes: ``smoke`` (the test suite), ``quick`` and ``full``.

Each preset bounds every phase twice, by ``duration`` seconds and by
``max_ops`` operations, and the whole suite by the product of these with the
number of rounds, kinds and loops. ``full`` takes about seven minutes on the
2-core reference machine (many short rounds beat a few long ones on a noisy
machine: a burst of background load spoils one round, not the median); ``quick`` under one; ``smoke`` a few seconds.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Settings:
    """Everything that sizes a run; serialised into the JSON results."""

    rounds: int = 5
    duration: float = 1.2
    max_ops: int = 1_000_000
    loops: tuple[str, ...] = ("uvloop", "asyncio")
    kinds: tuple[str, ...] = ("raw", "werkzeug", "wsroute")
    fanout_kinds: tuple[str, ...] = ("raw", "wsroute")
    fanout_rounds: int = 3
    client_procs: int = 2
    handshake_concurrency: int = 50
    echo_connections: int = 50
    echo_sizes: tuple[int, ...] = (32, 4096)
    fanout_clients: tuple[int, ...] = (1000, 5000)
    fanout_messages: int = 10
    fanout_size: int = 64
    route_counts: tuple[int, ...] = (10, 100, 1000)
    route_rounds: int = 5
    route_duration: float = 0.3
    scenarios: tuple[str, ...] = ("handshake", "echo", "fanout", "routing")
    pin: bool = True
    memory_clients: int = 1000
    """Idle clients of the memory-with-deflate phase (scenario ``memory``)."""
    tenk: int = 10_000
    """Idle connections of the one-process scenario ``tenk``."""
    tenk_procs: int = 4
    tenk_kinds: tuple[str, ...] = ("raw", "wsroute")
    memory_kinds: tuple[str, ...] = ("raw", "wsroute")
    """Kinds of the memory-with-deflate phase (``--peers``: all of them)."""


def with_peers(s: Settings, peer_kinds: tuple[str, ...], preset: str) -> Settings:
    """``--peers``: raw, wsroute and every peer, plus the memory and 10k scenarios.

    Route matching and werkzeug are left out (they compare wsroute with
    websockets' router, not with the frameworks users choose instead). The
    full preset shrinks to 3 rounds (2 for fan-out and memory) on uvloop so
    that nine server kinds fit in about ten minutes on two cores.
    """
    every = ("raw", "wsroute", *peer_kinds)
    s = dataclasses.replace(s, kinds=every, fanout_kinds=every, memory_kinds=every)
    s.scenarios = (*(x for x in s.scenarios if x != "routing"), "memory", "tenk")
    if preset == "full":
        s.rounds, s.fanout_rounds, s.duration, s.loops = 3, 2, 1.0, ("uvloop",)
    if preset == "quick":
        s.memory_clients = 500
    if preset == "smoke":  # every peer starts and answers; memory and 10k only exercised
        s.echo_sizes, s.memory_kinds = (32,), ("raw", "wsroute")
        s.memory_clients, s.tenk, s.tenk_procs = 10, 40, 2
    return s


PRESETS = {
    "full": Settings(),
    "quick": Settings(
        rounds=1,
        duration=1.0,
        loops=("uvloop",),
        fanout_clients=(1000,),
        fanout_rounds=1,
        route_duration=0.2,
        route_rounds=3,
    ),
    "smoke": Settings(
        rounds=1,
        fanout_rounds=1,
        duration=0.3,
        max_ops=2_000,
        loops=("asyncio",),
        client_procs=1,
        handshake_concurrency=5,
        echo_connections=5,
        fanout_clients=(20,),
        fanout_messages=3,
        route_counts=(10,),
        route_duration=0.05,
        route_rounds=1,
    ),
}
