"""Benchmark suite: wsroute against raw websockets and websockets' werkzeug router.

Run ``python -m benchmarks --quick`` (about a minute) or ``python -m benchmarks``
(the full run, a few minutes). Every scenario runs the server in its own process
and the load generators in other processes, on 127.0.0.1 only, and every phase
is bounded both in operation count and in wall-clock time so a hung server can
never hang the suite. See ``benchmarks/README.md``.
"""
