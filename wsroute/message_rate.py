"""Per-connection message rate: a ``recv()`` that spends a token per message.

Function handlers own their loop (``async for message in ws``), so the limit
cannot live in wsroute's dispatch. Every way of reading a message goes
through websockets' ``Connection.recv()`` — ``__aiter__`` is ``while True:
yield await self.recv()``, and handler classes call ``ws.recv()`` — so the
limit overrides that one method, in a subclass of the app's connection class
that is built at start-up **only when some route sets** ``message_rate``.
Apps without it keep websockets' ``recv()`` untouched: no cost per message.

Past the rate, the policy of the connection's route decides:

* ``"close"``: close with 1008 "message rate exceeded"; the handler's
  ``recv()`` (or ``async for``) raises ``ConnectionClosedError`` as for any
  closed connection, which wsroute does not log;
* ``"drop"``: the message is discarded, counted, and ``recv()`` waits for the
  next one.

Messages are counted when the handler reads them, so a handler that reads
slowly never trips the limit; websockets' ``max_queue`` bounds what waits
unread. ``recv_streaming()`` is not limited.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["REASON", "rate_limited"]

REASON = "message rate exceeded"


@functools.cache
def rate_limited(base: type[Connection]) -> type[Connection]:
    """A subclass of ``base`` whose ``recv()`` enforces the connection's message rate.

    Built once per class (cached). The bucket is put on the connection by the
    handshake (:meth:`wsroute.guard.Guard.admit`); a connection of a route
    without ``message_rate`` has none and reads as usual.
    """
    parent_recv = base.recv

    async def recv(self: Any, decode: bool | None = None) -> Any:
        while True:
            message = await parent_recv(self, decode)
            bucket = self._bucket
            if bucket is None or bucket.take(time.monotonic()):
                return message
            guard, plan, _, _ = self._held
            if plan.close:
                guard.refused(plan.name, "message_rate")
                await self.close(CloseCode.POLICY_VIOLATION, REASON)
                return await parent_recv(self, decode)  # raises ConnectionClosedError (1008)
            guard.refused(plan.name, "message_rate_drop")

    recv.__doc__ = base.recv.__doc__
    namespace = {"__slots__": ("_bucket",), "recv": recv, "__module__": __name__, "__doc__": base.__doc__}
    cls: type[Connection] = type(f"RateLimited{base.__name__}", (base,), namespace)
    original_init = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._bucket = None
        original_init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls
