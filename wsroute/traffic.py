"""Handshakes, closes, durations, messages and bytes per route, counted only when a plugin asks.

A metrics plugin wants "messages received on ``/chat``" even for a function
handler that runs its own ``async for message in ws`` loop, where wsroute
sees no message at all. The cheapest place that sees every message is the
connection itself, so counting is a connection *class*:
:meth:`App.count_traffic` makes the app serve with
:class:`CountingConnection` instead of :class:`~wsroute.Connection`, and an
app that never asks pays nothing.

What is counted, per data frame (text, binary, continuation), never per
control frame:

* received: websockets' ``process_event`` (one call per frame the protocol
  parsed, after decompression);
* sent: the protocol's ``send_frame`` (every frame written, whether by
  ``ws.send()``, the hub's fan-out or ``websockets.broadcast()``).

A message is counted when its last frame (FIN) passes; bytes are payload
bytes (uncompressed, without frame headers). The counters are plain ints on
one :class:`TrafficCounters` object per route, shared by that route's
connections: one attribute addition per frame, no lock (one event loop), no
lookup (each connection holds its route's object). Measured in
``benchmarks/metrics_bench.py``.

The same connection class counts each connection's life, without a plugin
hook (a hook call and a prometheus_client update per handshake cost more
than the handshake's routing; ``benchmarks/instructions.py --servers
full,metrics`` counts both):

* the handshake's answer, by HTTP status, when websockets' ``handshake()``
  returns: the status actually sent, including the 503 websockets itself
  substitutes for a 101 when the server stopped serving meanwhile;
* for upgraded connections, the close code (1006 when the TCP connection
  ended without a closing handshake) and the duration from TCP accept to
  close, in ``connection_lost``.

Durations go into histogram buckets here (``bisect`` on the bounds the
plugin chose), so a scrape copies a few integers per route instead of every
connection having paid for a histogram update.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
from websockets.frames import CloseCode, Frame, Opcode

from .connection import Connection

__all__ = ["DEFAULT_DURATION_BUCKETS", "UNMATCHED", "CountingConnection", "TrafficCounters", "TrafficTable"]

#: The route label of requests no route took (404s, plain HTTP answers such as
#: a metrics endpoint's): one bounded label instead of the raw path.
UNMATCHED = "(unmatched)"

#: Upper bounds, in seconds, of the connection-duration buckets: from a
#: reconnect loop (0.1 s) to a working day's session (4 h).
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0)


@attrs.define(slots=True)
class TrafficCounters:
    """Running totals for one route (or one path before its first message chose a route).

    Attributes:
        messages_received: complete messages received.
        bytes_received: payload bytes of the data frames received.
        messages_sent: complete messages sent.
        bytes_sent: payload bytes of the data frames sent.
        open: connections of this route open now (handler running).
        handshakes: ``{HTTP status: handshakes answered with it}``.
        closes: ``{close code: upgraded connections closed with it}`` (1006
            for a connection lost without a closing handshake).
        durations: per duration bucket, how many upgraded connections lasted
            at most that bucket's bound and more than the previous one; one
            entry per bound of :attr:`TrafficTable.duration_buckets`, then
            one for longer (``+Inf``). Not cumulative.
        duration_sum: the sum of those durations, in seconds.
    """

    messages_received: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    open: int = 0
    handshakes: dict[int, int] = attrs.field(factory=dict)
    closes: dict[int, int] = attrs.field(factory=dict)
    durations: list[int] = attrs.field(factory=list)
    duration_sum: float = 0.0

    def copy(self) -> TrafficCounters:
        """An independent copy (the dicts and the list too), for a scrape."""
        return attrs.evolve(self, handshakes=dict(self.handshakes), closes=dict(self.closes),
                            durations=list(self.durations))


#: The data opcodes, text first: ``in`` compares identities in order, so the
#: usual frame matches at the first element (enum hashing would cost more).
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)

#: Where a counting connection's frames go before it is routed; never reported
#: (a handshake has no data frames, so nothing lands here in practice).
_UNROUTED = TrafficCounters()


class TrafficTable:
    """The app's counters, one :class:`TrafficCounters` per route label.

    Labels are route labels (``/rooms/{room}``, ``/play[join]``), for a path
    routed by first message the path pattern while that first message is
    read, and :data:`UNMATCHED`: a bounded set known at start-up, never a raw
    path.

    Args:
        duration_buckets: increasing upper bounds, in seconds, of the
            connection-duration buckets (default
            :data:`DEFAULT_DURATION_BUCKETS`); ``+Inf`` is implied.

    Raises:
        ValueError: ``duration_buckets`` empty, not increasing, or not positive.
    """

    def __init__(self, duration_buckets: Sequence[float] = DEFAULT_DURATION_BUCKETS) -> None:
        bounds = tuple(float(bound) for bound in duration_buckets)
        if not bounds or bounds[0] <= 0 or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"duration buckets must be increasing positive seconds, got {duration_buckets!r}")
        self.duration_buckets = bounds
        self._by_label: dict[str, TrafficCounters] = {}
        self._connection_class: type[CountingConnection] | None = None

    def counters(self, label: str) -> TrafficCounters:
        """The counters for ``label``, created on first use."""
        found = self._by_label.get(label)
        if found is None:
            found = self._by_label[label] = TrafficCounters(durations=[0] * (len(self.duration_buckets) + 1))
        return found

    def connection_class(self) -> type[CountingConnection]:
        """The :class:`CountingConnection` subclass that counts into this table (made once)."""
        if self._connection_class is None:
            namespace = {"__slots__": (), "table": self, "__module__": __name__, "__doc__": CountingConnection.__doc__}
            self._connection_class = type("CountingConnection", (CountingConnection,), namespace)
        return self._connection_class

    def labels(self) -> list[str]:
        """Every label counted so far."""
        return list(self._by_label)

    def snapshot(self) -> dict[str, TrafficCounters]:
        """A copy of every label's counters, for a scrape."""
        return {label: counters.copy() for label, counters in self._by_label.items()}


class CountingConnection(Connection):
    """A :class:`~wsroute.Connection` that counts its handshake, frames and close into ``table``.

    Served as the subclass :meth:`TrafficTable.connection_class` makes, which
    sets ``table``. ``traffic`` is the route's counters once the session
    runs (the path's while a first message is read); before that, and for
    refused handshakes, a private object that is never reported.

    Sent frames are counted by wrapping this connection's protocol's
    ``send_frame`` (websockets creates the protocol before the connection,
    so a subclass of the protocol cannot be passed in; switching the live
    protocol's ``__class__`` instead defeats CPython's attribute caches and
    cost 8 % per echoed message). The wrapper is removed in
    ``connection_lost``.
    """

    __slots__ = ("opened_at", "traffic")

    table: ClassVar[TrafficTable]
    traffic: TrafficCounters
    opened_at: float  # time.monotonic() when the TCP connection was accepted

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened_at = time.monotonic()
        self.traffic = _UNROUTED
        send_frame = self.protocol.send_frame

        def counted_send_frame(frame: Frame) -> None:
            if frame.opcode in _DATA:
                traffic = self.traffic
                traffic.bytes_sent += len(frame.data)
                if frame.fin:
                    traffic.messages_sent += 1
            send_frame(frame)

        self.protocol.send_frame = counted_send_frame  # type: ignore[method-assign]

    def process_event(self, event: Any) -> None:
        """Count a data frame, then let websockets queue it (``Connection.process_event``)."""
        if type(event) is Frame and event.opcode in _DATA:  # the first event is the Request
            traffic = self.traffic
            traffic.bytes_received += len(event.data)
            if event.fin:
                traffic.messages_received += 1
        _process_event(self, event)  # not super(): one lookup less per frame

    def _path_counters(self) -> TrafficCounters:
        """The matched path pattern's counters (a first message may choose a route later), or UNMATCHED's."""
        group = self.group
        return self.table.counters(UNMATCHED if group is None else group.pattern.source)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        """websockets' opening handshake; then count its answer under the matched path and its status.

        Counted once websockets' ``handshake()`` returns, so ``self.response``
        is the answer actually sent, including the 503 websockets substitutes
        for a 101 when the server stopped serving during the handshake. The
        label is the matched path's pattern (a first message has not chosen
        a route yet), :data:`UNMATCHED` when no route matched.
        """
        await _handshake(self, *args, **kwargs)
        response = self.response
        if response is None:  # the client left before a request, or sent one websockets could not parse
            return
        counters = self._path_counters()
        status = response.status_code
        counters.handshakes[status] = counters.handshakes.get(status, 0) + 1

    def connection_lost(self, exc: Exception | None) -> None:
        """websockets' transport callback; then count an upgraded connection's close code and duration."""
        super().connection_lost(exc)
        # The wrapper closure refers to this connection, which refers to the
        # protocol that holds the wrapper: a reference cycle. Cut it now that
        # nothing more is sent, so the connection is freed by its reference
        # count instead of waiting for the garbage collector (which cost 3 %
        # of a handshake's instructions, measured by benchmarks.handshake_trace).
        del self.protocol.send_frame
        response = self.response
        if response is None or response.status_code != 101:  # never upgraded: there is no close to count
            return
        counters = self.traffic
        if counters is _UNROUTED:  # it closed before its handler ran: count under the matched path
            counters = self._path_counters()
        close_code = self.protocol.close_code  # CLOSED by now: 1006 when no close frame came (RFC 6455, 7.1.5)
        code = _ABNORMAL if close_code is None else int(close_code)  # plain ints as keys, never CloseCode members
        counters.closes[code] = counters.closes.get(code, 0) + 1
        duration = time.monotonic() - self.opened_at
        counters.durations[bisect.bisect_left(self.table.duration_buckets, duration)] += 1
        counters.duration_sum += duration


_ABNORMAL = int(CloseCode.ABNORMAL_CLOSURE)
_process_event = Connection.process_event
_handshake = Connection.handshake
