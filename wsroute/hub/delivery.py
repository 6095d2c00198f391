"""Fan-out to local connections, with backpressure.

This is the hot path of the hub. It writes one frame to many connections the
way :func:`websockets.broadcast` does -- ``protocol.send_text`` (or
``send_binary``) then ``connection.send_data()``, synchronously, no task and
no ``await`` per connection -- as long as the connection keeps up. What
``broadcast()`` lacks is backpressure: it appends to the transport's write
buffer whatever its size, so one client that never reads grows the server
without bound. Here a connection whose transport buffer is over ``max_buffer``
(or that is in the middle of a fragmented send) gets an :class:`Outbox`: a
bounded queue and one writer task that waits until the transport is writable
again, writes what is waiting in order, and removes itself when it caught up,
so the connection returns to the fast path. When the outbox is full the
slow-consumer policy applies (see :mod:`wsroute.hub.policy`).

Ordering: a connection that has an outbox receives every later frame through
it, so frames from one publisher reach each subscriber in order, exactly once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Coroutine, Iterable
from typing import Any, Final

from websockets.asyncio.connection import Connection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

from .policy import SlowConsumer
from .stats import HubStats
from .who import Who

__all__ = ["Delivery", "Outbox"]

OPEN: Final = State.OPEN

#: Close code and reason sent to a client closed for being slow (RFC 6455
#: 1013 "try again later": the client may reconnect and resynchronise).
SLOW_CODE: Final = CloseCode.TRY_AGAIN_LATER
SLOW_REASON: Final = "slow consumer"


class Outbox:
    """The bounded queue and writer task of one connection that fell behind.

    It exists only while the connection is behind: a connection that keeps up
    costs nothing here. ``put`` is synchronous and O(1); the policy decides
    what happens when ``max_queue`` frames are already waiting.
    """

    __slots__ = ("_closing", "_conn", "_delivery", "_policy", "_queue", "_task")

    def __init__(self, delivery: Delivery, conn: Connection, policy: SlowConsumer) -> None:
        self._delivery = delivery
        self._conn = conn
        self._policy = policy
        self._queue: collections.deque[tuple[bool, bytes]] = collections.deque()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, text: bool, payload: bytes) -> None:
        """Queue a frame, applying the policy if the queue is full."""
        if self._closing:
            self.dropped(1)
            return
        queue = self._queue
        if self._policy is SlowConsumer.KEEP_LATEST:
            self.dropped(len(queue))
            queue.clear()
        elif len(queue) >= self._delivery.max_queue:
            if self._policy is SlowConsumer.DISCONNECT:
                self._close_slow()
                self.dropped(1)
                return
            queue.popleft()
            self.dropped(1)
        queue.append((text, payload))
        self._delivery.stats.queued += 1

    def dropped(self, frames: int) -> None:
        """Count ``frames`` discarded, in the total and under this outbox's policy."""
        if frames:
            stats = self._delivery.stats
            stats.dropped += frames
            by_policy = stats.dropped_by_policy
            name = self._policy.value
            by_policy[name] = by_policy.get(name, 0) + frames

    def cancel(self) -> None:
        """Forget waiting frames and stop the writer (the connection ended)."""
        self._queue.clear()
        self._task.cancel()

    def _close_slow(self) -> None:
        """Drop the backlog and close the connection with 1013, in a task."""
        self._delivery.stats.slow_disconnects += 1
        self.dropped(len(self._queue))
        self._queue.clear()
        self._closing = True
        self._task.cancel()
        self._delivery.close_slow(self._conn, f"outbox of {self._delivery.max_queue} frames full")

    async def _run(self) -> None:
        """Write waiting frames whenever the transport can take them."""
        conn = self._conn
        queue = self._queue
        limit = self._delivery.max_buffer
        written = 0
        try:
            while queue:
                if conn.protocol.state is not OPEN:
                    break
                if conn.send_in_progress is not None:
                    # The handler is sending a fragmented message: wait for
                    # its end instead of dropping the frame like broadcast().
                    await asyncio.shield(conn.send_in_progress)
                    continue
                if conn.transport.get_write_buffer_size() > limit:
                    await _wait_writable(conn)
                    continue
                text, payload = queue.popleft()
                if text:
                    conn.protocol.send_text(payload)
                else:
                    conn.protocol.send_binary(payload)
                conn.send_data()
                written += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transport failed: the connection is ending
            conn.logger.debug("outbox of %s stopped: %r", Who(conn), exc)
            self.dropped(len(queue))
            queue.clear()
        finally:
            self._delivery.stats.delivered += written
            # No await since ``while queue`` saw it empty: no frame can have
            # arrived in between, so the fast path may take over again. A
            # connection being closed for slowness keeps its (closing) outbox
            # so that it never returns to the fast path.
            if not self._closing:
                self._delivery.release(conn, self)


async def _wait_writable(conn: Connection) -> None:
    """Wait until the transport drained below its low-water mark.

    ``Connection.drain()`` waits while asyncio paused writing (the buffer
    passed websockets' ``write_limit``). If the hub's ``max_buffer`` is below
    that limit writing is not paused yet, so poll gently instead of spinning.
    """
    if conn.paused:
        await conn.drain()
    else:
        await asyncio.sleep(0.005)


async def _close_slow(conn: Connection, timeout: float) -> None:
    """Close with 1013; abort the TCP connection if the client never reads.

    ``Connection.close()`` queues the close frame behind the unread data and
    waits for the write buffer to drain, which never happens for a client
    that stopped reading; the timeout frees the buffers anyway.
    """
    try:
        async with asyncio.timeout(timeout):
            await conn.close(SLOW_CODE, SLOW_REASON)
    except TimeoutError:
        conn.transport.abort()


class Delivery:
    """Writes frames to local connections, fast when they keep up.

    Args:
        policy: the default slow-consumer policy.
        max_queue: frames an outbox holds before the policy applies.
        max_buffer: bytes in a transport's write buffer above which the
            connection is behind and frames go to its outbox.
        close_timeout: seconds a slow consumer gets to complete the closing
            handshake before its TCP connection is aborted.
        stats: the counters to update.
    """

    def __init__(
        self,
        *,
        policy: SlowConsumer,
        max_queue: int,
        max_buffer: int,
        close_timeout: float,
        stats: HubStats,
    ) -> None:
        self.policy = policy
        self.max_queue = max_queue
        self.max_buffer = max_buffer
        self.close_timeout = close_timeout
        self.stats = stats
        #: Set by :meth:`Hub.count_traffic`: frames the fast path writes
        #: straight to the transport (bypassing the protocol, where
        #: :class:`~wsroute.traffic.CountingConnection` counts) are added to
        #: the connection's ``traffic`` here.
        self.count_traffic = False
        self._behind: dict[Connection, Outbox] = {}
        self._policies: dict[Connection, SlowConsumer] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def set_policy(self, conn: Connection, policy: SlowConsumer) -> None:
        """Override the default policy for one connection (a route's choice)."""
        self._policies[conn] = policy

    def forget(self, conn: Connection) -> None:
        """Drop everything kept for a connection that ended."""
        self._policies.pop(conn, None)
        outbox = self._behind.pop(conn, None)
        if outbox is not None:
            outbox.dropped(len(outbox))
            outbox.cancel()

    def backlog(self, conn: Connection) -> int:
        """Frames waiting in the connection's outbox (0 when it keeps up)."""
        outbox = self._behind.get(conn)
        return 0 if outbox is None else len(outbox)

    def send(self, conns: Iterable[Connection], text: bool, payload: bytes) -> None:
        """Write one frame to every open connection in ``conns``; never awaits.

        The loop is ``websockets.broadcast()`` plus one buffer-size check per
        connection, with one saving: a connection without extensions (no
        compression) receives the *same* frame bytes, serialised once per
        message instead of once per connection — a server frame is unmasked,
        so the bytes are identical for every such client. A connection that
        negotiated permessage-deflate keeps its own compressor and goes
        through its protocol as ``broadcast()`` does. The write goes straight
        to the transport only when the protocol has nothing buffered, so the
        byte order on the wire is unchanged.

        The body is inlined on purpose: it runs once per connection per
        message, where a method call would cost as much as the check itself.
        """
        behind = self._behind
        limit = self.max_buffer
        shared: bytes | None = None
        delivered = 0
        counting = self.count_traffic
        for conn in conns:
            outbox = behind.get(conn) if behind else None
            if outbox is None:
                protocol = conn.protocol
                if protocol.state is not OPEN:
                    continue
                transport = conn.transport
                if conn.send_in_progress is None and transport.get_write_buffer_size() <= limit:
                    try:
                        if not protocol.extensions and not protocol.writes:
                            if shared is None:
                                shared = Frame(Opcode.TEXT if text else Opcode.BINARY, payload).serialize(mask=False)
                            transport.write(shared)
                            if counting:
                                traffic = conn.traffic  # type: ignore[attr-defined]
                                traffic.messages_sent += 1
                                traffic.bytes_sent += len(payload)
                        else:
                            if text:
                                protocol.send_text(payload)
                            else:
                                protocol.send_binary(payload)
                            conn.send_data()
                    except Exception as exc:
                        conn.logger.debug("frame to %s dropped: %r", Who(conn), exc)
                        continue
                    delivered += 1
                    continue
                outbox = self._fall_behind(conn)
            outbox.put(text, payload)
        self.stats.delivered += delivered

    def _fall_behind(self, conn: Connection) -> Outbox:
        """Give a connection that cannot take a frame now its outbox."""
        outbox = self._behind[conn] = Outbox(self, conn, self._policies.get(conn, self.policy))
        return outbox

    def release(self, conn: Connection, outbox: Outbox) -> None:
        """Called by an outbox whose writer ended: back to the fast path."""
        if self._behind.get(conn) is outbox:
            del self._behind[conn]

    def close_slow(self, conn: Connection, why: str) -> None:
        """Close ``conn`` with 1013 in the background (abort after ``close_timeout``), logging ``why``."""
        self.spawn(_close_slow(conn, self.close_timeout))
        conn.logger.info("closing slow consumer %s with 1013: %s", Who(conn), why)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background coroutine, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel outboxes and wait for slow-consumer closes in progress."""
        for conn in list(self._behind):
            self.forget(conn)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
