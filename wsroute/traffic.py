"""Messages and bytes per route, counted only when a plugin asks for them.

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
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from websockets.frames import Frame, Opcode

from .connection import Connection

__all__ = ["CountingConnection", "TrafficCounters", "TrafficTable"]


@attrs.define(slots=True)
class TrafficCounters:
    """Running totals for one route (or one path before its first message chose a route).

    Attributes:
        messages_received: complete messages received.
        bytes_received: payload bytes of the data frames received.
        messages_sent: complete messages sent.
        bytes_sent: payload bytes of the data frames sent.
        open: connections of this route open now (handler running).
    """

    messages_received: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    open: int = 0


#: The data opcodes, text first: ``in`` compares identities in order, so the
#: usual frame matches at the first element (enum hashing would cost more).
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)

#: Where a counting connection's frames go before it is routed; never reported
#: (a handshake has no data frames, so nothing lands here in practice).
_UNROUTED = TrafficCounters()


class TrafficTable:
    """The app's counters, one :class:`TrafficCounters` per route label.

    Labels are route labels (``/rooms/{room}``, ``/play[join]``) and, for a
    path routed by first message, the path pattern while that first message
    is read: a bounded set known at start-up, never a raw path.
    """

    def __init__(self) -> None:
        self._by_label: dict[str, TrafficCounters] = {}

    def counters(self, label: str) -> TrafficCounters:
        """The counters for ``label``, created on first use."""
        found = self._by_label.get(label)
        if found is None:
            found = self._by_label[label] = TrafficCounters()
        return found

    def labels(self) -> list[str]:
        """Every label counted so far."""
        return list(self._by_label)

    def snapshot(self) -> dict[str, TrafficCounters]:
        """A copy of every label's counters, for a scrape."""
        return {label: attrs.evolve(counters) for label, counters in self._by_label.items()}


class CountingConnection(Connection):
    """A :class:`~wsroute.Connection` that counts data frames into ``self.traffic``.

    The session points ``traffic`` at its route's counters once the route is
    known. Sent frames are counted by wrapping this connection's protocol's
    ``send_frame`` (websockets creates the protocol before the connection,
    so a subclass of the protocol cannot be passed in).
    """

    __slots__ = ("opened_at", "traffic")

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


_process_event = Connection.process_event
