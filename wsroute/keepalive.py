"""Keepalive pings for every connection from one timer, instead of one task per connection.

websockets sends a Ping every ``ping_interval`` seconds (default 20) and
closes with 1011 "keepalive ping timeout" when no Pong comes within
``ping_timeout`` (default 20) — see websockets' "Keepalive and latency"
topic guide. It does so from a task per connection
(``ServerConnection.start_keepalive``): creating and cancelling it is about
4 % of a handshake's CPU (``benchmarks/instructions.py``), and each idle
connection keeps the task, its coroutine frame and its sleep timer alive
(about 1 KB).

:class:`Keepalive` keeps the same promise from one
:class:`~wsroute.timerwheel.TimerWheel` per app: every ``ping_interval /
16`` seconds it pings the connections of the next slot, so each connection
is pinged once per ``ping_interval`` (the first ping between 15/16 of the
interval and the full interval after the handshake), and a burst of
connections has its pings spread over the interval instead of sent at once.

Each ping runs in a short task, from the Ping until its Pong (normally one
round trip), so a connection whose writes are paused (a slow client) delays
only its own ping. After the Ping it is websockets' own keepalive body: the
Pong updates ``ws.latency``; none within ``ping_timeout`` fails the
connection with 1011 "keepalive ping timeout"; with ``ping_timeout=None``
nothing waits for the Pong and the next ping comes one interval later; a
connection still waiting (within ``ping_timeout``) for its previous
keepalive Pong is not pinged again. ``ping_interval=None`` disables keepalive, as in websockets.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from .timerwheel import SLOTS, TimerWheel, positive_seconds

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

__all__ = ["Keepalive"]


class Keepalive(TimerWheel["ServerConnection"]):
    """One app's keepalive timer and the connections it pings.

    The settings come from the first connection that joins (websockets
    gives every connection of a server the same ``ping_interval`` and
    ``ping_timeout``); a connection with other settings, or on another
    event loop, is refused (:meth:`join` returns ``None``) and keeps
    websockets' own task. :meth:`stop` (at app shutdown) also cancels the
    pings in flight.
    """

    def __init__(self) -> None:
        super().__init__(SLOTS)
        self.interval: float | None = None
        self.timeout: float | None = None
        self._waiting: set[ServerConnection] = set()  # pinged, Pong not yet received
        self._tasks: set[asyncio.Task[None]] = set()

    def join(self, conn: ServerConnection) -> set[ServerConnection] | None:
        """Ping ``conn`` from now on; return its slot, or None when websockets should keep its task.

        None: keepalive disabled, a non-positive or non-finite interval or
        timeout, settings unlike the other connections', another event loop.
        The caller forgets the connection with ``slot.discard(conn)`` when it
        closes (``Connection.connection_lost``).
        """
        interval, timeout = conn.ping_interval, conn.ping_timeout
        if self._timer is not None and conn.loop is not self._loop:
            self.forget_closed_loop()
        if self._timer is None:
            if not positive_seconds(interval) or (timeout is not None and not positive_seconds(timeout)):
                return None
            self.interval, self.timeout = interval, timeout
            self.start(conn.loop, interval / SLOTS)
        elif interval != self.interval or timeout != self.timeout or conn.loop is not self._loop:
            return None
        return self.add(conn)

    def stop(self) -> None:
        """Disarm the timer, cancel the pings in flight, forget every connection."""
        super().stop()
        self._waiting.clear()
        for task in list(self._tasks):
            task.cancel()

    def visit(self, slot: set[ServerConnection]) -> None:
        """Ping each connection of ``slot`` that is not still waiting for a Pong."""
        loop = self._loop
        assert loop is not None
        waiting, tasks = self._waiting, self._tasks
        for conn in slot:
            if conn not in waiting:
                waiting.add(conn)
                task = loop.create_task(self._ping(conn))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    def idle(self) -> bool:
        """Nothing to ping and no ping in flight."""
        return super().idle() and not self._tasks

    async def _ping(self, conn: ServerConnection) -> None:
        """One keepalive round, as websockets' ``keepalive()`` does it: ping, then await the Pong or fail."""
        timeout = self.timeout
        try:
            pong_received = await conn.ping()
            if conn.debug:
                conn.logger.debug("% sent keepalive ping")
            if timeout is None:  # websockets does not wait: the next ping comes in ping_interval regardless
                return
            try:
                async with asyncio.timeout(timeout):
                    await pong_received
                if conn.debug:
                    conn.logger.debug("% received keepalive pong")
            except TimeoutError:
                if conn.debug:
                    conn.logger.debug("- timed out waiting for keepalive pong")
                async with conn.send_context():
                    conn.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        except ConnectionClosed:
            pass  # the connection ended first: nothing left to keep alive
        except Exception:
            conn.logger.error("keepalive ping failed", exc_info=True)  # websockets' own words and logger
        finally:
            self._waiting.discard(conn)
