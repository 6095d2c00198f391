"""Smoke test of benchmarks/typed_bench.py: one tiny echo run and the decoders it compares.

No timing assertions (the machine is shared): it proves the benchmark's
server answers through both routes and that every decoder it times reads the
same message into the same values.
"""

from __future__ import annotations

import json
import math

from benchmarks.typed_bench import SMALL, Move, run_echo


def test_echo_through_typed_and_untyped_routes_measures_both() -> None:
    """A tiny run gives positive messages/s for each route and their ratio."""
    figures = run_echo(rounds=1, messages=50, window=8)
    assert set(figures) == {"typed msg/s", "untyped msg/s", "typed / untyped"}
    assert all(isinstance(v, float) and not math.isnan(v) and v > 0 for v in figures.values())
    assert math.isclose(figures["typed / untyped"], figures["typed msg/s"] / figures["untyped msg/s"])


def test_compared_decoders_agree_on_the_message() -> None:
    """wsroute's codec, MessageDecoder and json+cattrs all read the benchmark message as Move(1, 2)."""
    import cattrs

    import wsroute
    from wsroute.messages import MessageCodec

    codec = MessageCodec.build([Move])
    data = json.loads(SMALL)
    assert codec.decode(codec.kind(SMALL), SMALL) == Move(1, 2)
    assert wsroute.MessageDecoder(Move).decode(SMALL) == Move(1, 2)
    assert cattrs.Converter().structure({"x": data["x"], "y": data["y"]}, Move) == Move(1, 2)
