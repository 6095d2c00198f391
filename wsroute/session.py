"""One connection after the upgrade: pick the route, run it, report how it ended.

:class:`Session` is websockets' connection handler for a prepared app. It
reads the first message when the path is routed by message, registers the
connection with the hub, runs the bound handler, and turns the outcome into a
close code:

* a first message that names no route, or does not fit the route's message
  class → 1008 with the reason, and the handler never runs;
* the handler returns → 1000 (websockets closes normally);
* the client leaves (``ConnectionClosed``) → nothing to log;
* the handler raises :class:`wsroute.Close` → that code and reason, logged
  at INFO;
* the handler raises (or a task it started with ``Handler.spawn()``) → 1011
  (or the code a plugin chooses), logged once with the route; other
  connections are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from websockets.asyncio.connection import Connection as WebSocketConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import EXTERNAL_CLOSE_CODES, CloseCode
from websockets.protocol import State

from .di import Binding
from .dispatch import Rejection, choose_by_first_message
from .messages import InvalidMessage
from .outcomes import Close, Deny
from .perconnection import Plan
from .plugins import HookFailed, Resolved
from .routes import Route, RouteGroup
from .traffic import TrafficTable

if TYPE_CHECKING:
    from .app import App
    from .connection import Connection, Scoped

__all__ = ["Session"]

logger = logging.getLogger("wsroute")


@attrs.frozen
class Session:
    """The per-connection lifecycle, with everything looked up in advance."""

    app: App
    bindings: Mapping[Route, Binding]
    message_key: str
    first_message_timeout: float
    traffic: TrafficTable | None
    open_hook: Resolved
    closed_hook: Resolved
    exception_hook: Resolved
    plans: Mapping[Route, Plan] = attrs.field(factory=dict)

    async def __call__(self, conn: Connection) -> None:
        # One coroutine from the upgrade to the handler's return: the steps
        # around the handler are plain functions (a coroutine per step would
        # cost every connection a frame, and every handshake its set-up).
        route = conn.route
        try:
            if route is None:
                route = await self._route_by_first_message(conn, conn.group)
                if route is None:
                    return
            binding = self.bindings[route]
            kwargs = _path_arguments(binding, conn.params)
            scoped = conn.take_scoped()
            if scoped is None and binding.scoped:
                scoped = await self._resolve_after_upgrade(conn, route)
                if scoped is None:
                    return
            stack = None
            if scoped is not None:
                values, stack = scoped
                kwargs = {**kwargs, **values}
            counters = self._count_open(conn, route) if self.traffic is not None else None
            hub = self.app.hub
            hub.attach(conn, route.slow_consumer)
            try:
                if self.open_hook.impls:
                    await self._report_open(conn)
                if stack is None:
                    await self._handler_call(conn, route, binding, kwargs)
                else:
                    async with stack:  # generator dependencies clean up when the handler ends, however
                        await self._handler_call(conn, route, binding, kwargs)
            finally:
                hub.detach(conn)
                if counters is not None:
                    counters.open -= 1
        except ConnectionClosed as exc:
            if conn.protocol.state is State.OPEN:
                # Not this client leaving: another socket the handler used
                # (a relay, an upstream) closed. That is a handler failure.
                await self._failed(conn, route, exc)
        except Exception as exc:
            await self._failed(conn, route, exc)
        finally:
            if self.closed_hook.impls:
                await self._report_closed(conn)

    def _handler_call(
        self, conn: Connection, route: Route, binding: Binding, kwargs: Mapping[str, Any]
    ) -> Coroutine[Any, Any, None]:
        """The handler's coroutine, not awaited: a function's call, or a Handler class's message loop."""
        if not binding.is_class:
            return binding.call(conn, **kwargs)  # type: ignore[no-any-return]
        handler = binding.call(**kwargs)
        handler.ws = conn
        handler.app = self.app
        return handler._run(  # type: ignore[no-any-return]
            self.message_key,
            lambda exc, source: self._failed(conn, route, exc, source),
            route.codec,
            route.on_invalid_message == "close",
        )

    def _count_open(self, conn: Connection, route: Route) -> Any:
        """Count the connection open on its route (traffic counting on); return the counters to decrement."""
        assert self.traffic is not None
        counters = conn.traffic = self.traffic.counters(route.label)  # type: ignore[attr-defined]
        counters.open += 1
        return counters

    async def _report_open(self, conn: Connection) -> None:
        """``wsroute_connection_open``: synchronous implementations cost no coroutine of their own."""
        if self.open_hook.all_sync:
            self.open_hook.each_sync({"app": self.app, "conn": conn})
        else:
            await self.open_hook.each({"app": self.app, "conn": conn})

    async def _resolve_after_upgrade(self, conn: Connection, route: Route) -> Scoped | None:
        """Per-connection dependencies of a route chosen by first message: after the upgrade.

        A ``Deny`` can no longer answer HTTP; it closes with 1008 and its reason.
        """
        try:
            return await self.plans[route].resolve(conn)
        except Deny as deny:
            logger.info("denied %s with 1008: %s", route.label, deny.reason)
            await conn.close(CloseCode.POLICY_VIOLATION, deny.reason)
            return None

    async def _route_by_first_message(self, conn: Connection, group: RouteGroup | None) -> Route | None:
        """Read and decode the first message; close 1008/1003 when it is wrong."""
        if group is None:  # pragma: no cover - process_request refused unmatched paths
            return None
        if self.traffic is not None:
            conn.traffic = self.traffic.counters(group.pattern.source)  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(self.first_message_timeout):
                message = await conn.recv()
        except TimeoutError:
            self.app.first_message_rejections["timeout"] += 1
            reason = f"no first message within {self.first_message_timeout:g} s"
            logger.debug("first message rejected with 1008: %s", reason, extra={"websocket": conn})
            await conn.close(CloseCode.POLICY_VIOLATION, reason)
            return None
        try:
            route, data = choose_by_first_message(message, self.message_key, group.by_message)
        except Rejection as rejection:
            self.app.first_message_rejections[rejection.kind] += 1
            logger.debug("first message rejected with %d: %s", rejection.code, rejection.reason,
                         extra={"websocket": conn})
            await conn.close(rejection.code, rejection.reason)
            return None
        if route.codec is not None and route.message_class is not None:
            try:  # the dict chose the route; the class validates the same text
                data = route.codec.decode(data[self.message_key], message)
            except InvalidMessage as exc:
                await conn.close(CloseCode.POLICY_VIOLATION, str(exc))
                return None
        conn.route = route
        conn.first_message = data
        task = asyncio.current_task()
        if task is not None:
            task.set_name(f"wsroute {route.label}")
        return route

    async def _failed(self, conn: Connection, route: Route | None, exc: Exception, source: str = "handler") -> None:
        """Log ``exc`` once with the route, then close with the hook's code.

        ``source`` says what raised: ``"handler"`` or ``"background task
        'name'"`` (a task from ``Handler.spawn``); both are handler failures.
        """
        name = route.label if route is not None else conn.path
        context = {"websocket": conn}  # the connection's id, route, client IP and user, for the log formats
        if isinstance(exc, Close):  # a decision, not a failure
            logger.info("%s for route %s closed the connection: %d %s", source, name, exc.code, exc.reason,
                        extra=context)
            with contextlib.suppress(Exception):
                await conn.close(exc.code, exc.reason)
            return
        if isinstance(exc, ConnectionClosed):
            logger.error("%s for route %s failed: %s", source, name, _other_closed(conn, exc), exc_info=exc,
                         extra=context)
        else:
            logger.error("%s for route %s failed", source, name, exc_info=exc, extra=context)
        code = self._close_code_for(conn, route, exc)
        with contextlib.suppress(Exception):  # the transport may already be gone
            await conn.close(code, "internal error")

    def _close_code_for(self, conn: Connection, route: Route | None, exc: Exception) -> int:
        if not self.exception_hook:
            return int(CloseCode.INTERNAL_ERROR)
        try:
            code: Any = self.exception_hook.first({"app": self.app, "conn": conn, "route": route, "exc": exc})
        except HookFailed as failure:
            logger.error("%s", failure, exc_info=failure.__cause__)
            return int(CloseCode.INTERNAL_ERROR)
        if code is None:
            return int(CloseCode.INTERNAL_ERROR)
        if type(code) is not int or not (code in EXTERNAL_CLOSE_CODES or 3000 <= code <= 4999):
            logger.error("wsroute_handle_exception returned %r, not a close code; closing with 1011", code)
            return int(CloseCode.INTERNAL_ERROR)
        return code

    async def _report_closed(self, conn: Connection) -> None:
        # The handler has returned: close now (1000, a no-op if already
        # closed) so observers see the final code rather than None.
        await conn.close()
        kwargs = {"app": self.app, "conn": conn, "code": conn.close_code, "reason": conn.close_reason or ""}
        try:
            if self.closed_hook.all_sync:
                self.closed_hook.each_sync(kwargs)  # no coroutine per connection
            else:
                await self.closed_hook.each(kwargs)
        except HookFailed as failure:
            logger.error("%s", failure, exc_info=failure.__cause__)


def _path_arguments(binding: Binding, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The path parameters the handler takes: all of them, the named ones, or none."""
    names = binding.path_args
    if names is None:
        return params
    return {name: params[name] for name in names} if names else {}


def _other_closed(conn: Connection, exc: ConnectionClosed) -> str:
    """Explain a ``ConnectionClosed`` that did not come from ``conn`` itself.

    Only called while ``conn`` is still open, so the exception came from
    another socket the handler used: typically the websockets FAQ's
    dict-of-connections pattern, ``await CONNECTED[other].send(...)`` after
    ``other`` left. The closed connection is found in the traceback (the
    frame of its ``send``/``recv``) so the log can name it; this runs on the
    failure path only.
    """
    other = _connection_in_traceback(exc, conn)
    which = "another connection" if other is None else f"another connection ({_describe_connection(other)})"
    return (
        f"{which} was closed ({type(exc).__name__}: {exc}) and the handler still used it; this client's own "
        "connection is open. To message other clients, use app.hub.send_to_user(user_id, message) (or "
        "hub.publish/broadcast), which skips connections that have left, instead of keeping connections in a "
        "dict; or catch websockets.exceptions.ConnectionClosed around the send"
    )


def _connection_in_traceback(exc: BaseException, conn: Connection) -> WebSocketConnection | None:
    """The websockets connection, other than ``conn``, whose method raised ``exc``."""
    tb = exc.__traceback__
    found: WebSocketConnection | None = None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, WebSocketConnection) and owner is not conn:
            found = owner  # keep the innermost
        tb = tb.tb_next
    return found


def _describe_connection(other: WebSocketConnection) -> str:
    """``client 127.0.0.1:50312 on route /chat, user 'bob'``, or ``to 10.0.0.5:443`` for a client connection."""
    peer = other.remote_address
    address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
    route = getattr(other, "route", None)
    if route is None and not hasattr(other, "ctx"):
        return f"to {address}"  # e.g. a websockets client connection the handler opened
    described = f"client {address}" if route is None else f"client {address} on route {route.label}"
    user_id = getattr(getattr(other, "ctx", None), "user_id", None)
    return described if user_id is None else f"{described}, user {user_id!r}"
