"""Typed messages: what validation costs per message, and on the echo path.

Two measurements, one command (``python -m benchmarks.typed_bench``):

1. **decode + validate**, no sockets: µs per message for a 3-field attrs
   class (``{"type": "move", "x": 1, "y": 2}``) through wsroute's route codec
   (read the type field, then decode into the class: what ``@on(Move)``
   runs), ``wsroute.MessageDecoder``, and ``json.loads`` + ``cattrs.structure``
   (needs ``pip install 'wsroute[bench]'``); plus the untyped path,
   ``wsroute.dispatch.decode_json`` (msgspec, with the 256-level depth check)
   against ``json.loads`` (alone, and with the depth walk, as decode_json was
   before msgspec), on that message and on a ~12 KB bracket-heavy one.
2. **echo**, real sockets: one server process with two routes, ``/typed``
   (``@wsroute.on(Move)`` answering ``send_json(Moved(...))``) and
   ``/untyped`` (``@wsroute.on("move")`` answering ``send_json({...})``),
   driven by one websockets client with a window of messages in flight. The
   two routes alternate round by round in the same run, and the report gives
   messages/s for each and typed/untyped (the target is >= 0.95).

The numbers are for comparison within one run on one machine, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import attrs

import wsroute

SMALL = '{"type": "move", "x": 1, "y": 2}'
LARGE = json.dumps({"type": "move", "items": [{"i": i, "v": [i, "abc"], "s": "x" * 10} for i in range(250)]})


@wsroute.message("move")
@attrs.frozen
class Move:
    x: int
    y: int


@wsroute.message("moved")
@attrs.frozen
class Moved:
    x: int
    y: int


def per_call_us(func: Callable[[], Any], repeat: int = 5) -> float:
    """The best of ``repeat`` timeit runs, in µs per call."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat, number)) / number * 1e6


def decode_figures() -> dict[str, float]:
    """µs per decode (+ validate) for each way of reading a message."""
    from wsroute.dispatch import MAX_JSON_DEPTH, _deeper_than, decode_json
    from wsroute.messages import MessageCodec

    codec = MessageCodec.build([Move])
    decoder = wsroute.MessageDecoder(Move)
    figures = {
        "wsroute @on(Move) codec: kind + decode": per_call_us(lambda: codec.decode(codec.kind(SMALL), SMALL)),
        "wsroute MessageDecoder.decode": per_call_us(lambda: decoder.decode(SMALL)),
    }
    try:
        import cattrs
    except ImportError:
        print("cattrs missing: pip install 'wsroute[bench]' for the json+cattrs figure", file=sys.stderr)
    else:
        converter = cattrs.Converter()

        def json_cattrs() -> Move:
            data = json.loads(SMALL)
            return converter.structure({"x": data["x"], "y": data["y"]}, Move)

        figures["json.loads + cattrs.structure"] = per_call_us(json_cattrs)
    figures["untyped: decode_json (msgspec), small"] = per_call_us(lambda: decode_json(SMALL))
    figures["untyped: json.loads, small"] = per_call_us(lambda: json.loads(SMALL))
    figures[f"untyped: decode_json (msgspec, depth check), {len(LARGE) // 1000} KB"] = per_call_us(
        lambda: decode_json(LARGE)
    )
    figures[f"untyped: json.loads, {len(LARGE) // 1000} KB"] = per_call_us(lambda: json.loads(LARGE))
    figures[f"untyped: json.loads + depth walk (before msgspec), {len(LARGE) // 1000} KB"] = per_call_us(
        lambda: _deeper_than(json.loads(LARGE), MAX_JSON_DEPTH)
    )
    return figures


def echo_app() -> wsroute.App:
    """``/typed`` and ``/untyped``: the same echo, through a typed and an untyped @on."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/typed")
    class Typed(wsroute.Handler):
        @wsroute.on(Move)
        async def move(self, msg: Move) -> None:
            await self.send_json(Moved(x=msg.x, y=msg.y))

    @app.route("/untyped")
    class Untyped(wsroute.Handler):
        @wsroute.on("move")
        async def move(self, data: dict[str, Any]) -> None:
            await self.send_json({"type": "moved", "x": data["x"], "y": data["y"]})

    return app


def serve(port_file: str) -> None:
    """Run the echo server (the child process); write its port to ``port_file``."""

    async def main() -> None:
        app = echo_app()
        async with app.serve("127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            with open(port_file + ".tmp", "w") as f:
                f.write(str(port))
            os.replace(port_file + ".tmp", port_file)
            await asyncio.Event().wait()

    asyncio.run(main())


async def echo_round(url: str, messages: int, window: int) -> float:
    """Messages/s for ``messages`` moves with ``window`` in flight, each answer checked."""
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, open_timeout=10) as ws:
        start = time.perf_counter()
        sent = received = 0
        while received < messages:
            while sent < messages and sent - received < window:
                await ws.send(f'{{"type": "move", "x": {sent}, "y": 2}}')
                sent += 1
            answer = await asyncio.wait_for(ws.recv(), 10)
            if not answer.startswith('{"type":"moved"'):
                raise RuntimeError(f"unexpected answer {answer!r}")
            received += 1
        return messages / (time.perf_counter() - start)


async def echo_figures(port: int, rounds: int, messages: int, window: int) -> dict[str, float]:
    """Median messages/s per route over alternating rounds (one warm-up round each first)."""
    rates: dict[str, list[float]] = {"typed": [], "untyped": []}
    for name in rates:
        await echo_round(f"ws://127.0.0.1:{port}/{name}", messages // 4, window)
    for i in range(rounds):
        order = ("typed", "untyped") if i % 2 == 0 else ("untyped", "typed")
        for name in order:
            rates[name].append(await echo_round(f"ws://127.0.0.1:{port}/{name}", messages, window))
    typed, untyped = statistics.median(rates["typed"]), statistics.median(rates["untyped"])
    return {"typed msg/s": typed, "untyped msg/s": untyped, "typed / untyped": typed / untyped}


def run_echo(rounds: int, messages: int, window: int) -> dict[str, float]:
    """Start the server in a child process, measure, stop it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.typed_bench", "--serve", port_file])
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file):
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the echo server did not start")
                time.sleep(0.05)
            with open(port_file) as f:
                port = int(f.read())
            return asyncio.run(echo_figures(port, rounds, messages, window))
        finally:
            child.terminate()
            child.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="echo rounds per route (alternating)")
    parser.add_argument("--messages", type=int, default=20000, help="messages per echo round")
    parser.add_argument("--window", type=int, default=32, help="messages in flight")
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return
    print("decode + validate, µs per message (best of 5)")
    for name, value in decode_figures().items():
        print(f"  {name:55s} {value:8.2f}")
    print(f"echo, {args.rounds} alternating rounds of {args.messages} messages, window {args.window} (median)")
    for name, value in run_echo(args.rounds, args.messages, args.window).items():
        print(f"  {name:55s} {value:10.2f}" if "/ untyped" not in name else f"  {name:55s} {value:10.3f}")


if __name__ == "__main__":
    main()
