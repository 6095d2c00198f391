"""The opening handshake's deadline (``open_timeout``) for every connection from one timer.

websockets gives each connection ``open_timeout`` seconds (default 10) from
the TCP accept until the handshake response is sent, so a client that
connects and never sends its request (or a ``process_request`` that hangs)
cannot hold a descriptor forever. It arms one ``asyncio.timeout`` per
connection for that — about 1.5 % of a handshake's CPU
(``benchmarks/instructions.py``), paid by every connection although almost
none reaches the deadline.

wsroute gives websockets ``open_timeout=None`` and keeps the deadline in one
:class:`OpenTimeout` wheel per served app (:mod:`wsroute.timerwheel`): a
connection joins it when websockets starts its handshake
(``connection_made``: after TLS, where websockets' own timer starts) and
leaves it when its handshake ends, either way (``Connection.start_keepalive`` after a 101,
``connection_lost`` otherwise). One that is still there when its slot comes
round is treated as websockets treats it: the handshake is cancelled (a
pending ``process_request`` or middleware await included) and the TCP
connection aborted, with nothing logged. The deadline falls between
``open_timeout`` and ``open_timeout * 17/16`` seconds after that (later
only if the event loop was blocked).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .timerwheel import SLOTS, TimerWheel

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["OpenTimeout"]

logger = logging.getLogger("wsroute")


class OpenTimeout(TimerWheel["Connection"]):
    """Connections whose opening handshake has not ended, and the deadline they have.

    Args:
        timeout: seconds from the accept until the handshake must have ended (> 0).
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(SLOTS + 1)  # a connection added now is visited SLOTS + 1 ticks on: never early
        self.timeout = float(timeout)
        self._other_loops: dict[asyncio.AbstractEventLoop, OpenTimeout] = {}

    def join(self, conn: Connection) -> set[Connection]:
        """Start ``conn``'s deadline; return its slot (``slot.discard(conn)`` ends it)."""
        loop = conn.loop
        if self._timer is not None and loop is not self._loop:
            return self._join_elsewhere(conn)
        if self._timer is None:
            self.start(loop, self.timeout / SLOTS)
        return self.add(conn)

    def visit(self, slot: set[Connection]) -> None:
        """Cut the handshakes of ``slot``: their deadline has passed."""
        due = list(slot)
        slot.clear()
        for conn in due:
            try:
                conn.handshake_timed_out()
            except Exception:  # pragma: no cover - a bug; the other connections are still cut
                logger.exception("cutting a handshake at open_timeout failed")

    def _join_elsewhere(self, conn: Connection) -> set[Connection]:
        """A connection on another event loop (the same connection class served twice): a wheel of that loop."""
        self.forget_closed_loop()
        if self._timer is None:
            return self.join(conn)
        other = self._other_loops.get(conn.loop)
        if other is None:
            other = self._other_loops[conn.loop] = OpenTimeout(self.timeout)
        return other.join(conn)
