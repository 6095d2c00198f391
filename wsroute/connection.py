"""The connection object handlers receive: websockets' ``ServerConnection`` plus
what routing and middleware found out about it.

wsroute passes ``create_connection=Connection`` to websockets' ``serve()``, so
``ws`` in a handler *is* the websockets connection — ``send``, ``recv``,
``async for``, ``close``, ``request``, ``remote_address`` all behave exactly as
documented by websockets — with a few more attributes:

* ``ws.params``: the converted path parameters of the matched route;
* ``ws.ctx``: a plain namespace that middleware fills (``conn.ctx.user = …``).
  It is not called ``state`` because ``state`` is websockets' protocol state;
* ``ws.route``: the matched :class:`~wsroute.app.Route`;
* ``ws.path``: the raw request path as the client sent it, without the query
  string (``/rooms/hello%20world``); ``ws.decoded_path``: the same path
  percent-decoded (``/rooms/hello world``);
* ``ws.query``: the parsed, decoded query string, ``{name: [values]}``;
* ``ws.first_message``: the decoded first message on message-routed paths;
* ``ws.client_ip``: the peer's address, or the client's address from
  ``X-Forwarded-For`` / ``Forwarded`` when the peer is a trusted proxy;
* ``ws.max_subscriptions``: the topics this connection may subscribe to
  (its route's limit, see docs/security.md).

``ws.close(code, reason)`` differs in one way: a reason longer than a close
frame can carry (123 bytes of UTF-8) is cut to fit (:mod:`wsroute.reasons`),
so the client always receives the code that was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
import urllib.parse
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode
from websockets.protocol import State

from .dispatch import UndecodableMessage, decode_json
from .forwarding import client_ip_of
from .jsonutil import encode_json
from .outcomes import BadMessage
from .reasons import fit_close_reason
from .urls import BadTarget, decode_path, parse_query

if TYPE_CHECKING:
    from .app import App
    from .opentimeout import OpenTimeout
    from .routes import Route, RouteGroup

__all__ = ["Connection"]

#: Per-connection dependency values and their cleanups (:mod:`wsroute.perconnection`).
Scoped = tuple[dict[str, Any], "contextlib.AsyncExitStack | None"]

#: Cleanups started by ``connection_lost``, kept referenced until done.
_CLEANUPS: set[asyncio.Task[Any]] = set()


class Connection(ServerConnection):
    """A websockets ``ServerConnection`` with routing results attached."""

    # ServerConnection has no __slots__, so instances keep their __dict__;
    # slots for our attributes stop that dict from growing to its next size
    # (about 1.5 KB per idle connection, measured).
    __slots__ = (
        "_handler_task", "_held", "_ip", "_keepalive", "_opening", "_query", "_scoped",
        "app", "ctx", "first_message", "group", "max_subscriptions", "params", "route",
    )

    #: The handshake deadline of the server this class was made for
    #: (:mod:`wsroute.opentimeout`); set on a per-serve subclass, None here.
    open_timeouts: ClassVar[OpenTimeout | None] = None

    app: App
    route: Route | None
    group: RouteGroup | None
    params: dict[str, Any]
    first_message: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx = types.SimpleNamespace()
        self.params = {}
        self.route = None
        self.group = None
        self.first_message = None
        self._query: dict[str, list[str]] | None = None
        self._scoped: Scoped | None = None
        self._held: Any = None  # (guard, plan, ip, user) once admitted: see wsroute.guard
        self._ip: str | None = None
        self._keepalive: set[Any] | None = None  # the keepalive slot this connection is pinged from
        self._handler_task: asyncio.Task[Any] | None = None  # websockets' task for it, from the first hook
        self.max_subscriptions: int | None = None
        self._opening: set[Any] | None = None  # the handshake deadline's slot, from connection_made

    def count_refusal(self, reason: str) -> None:
        """Count a refusal of this connection's route for :meth:`wsroute.App.stats` (see wsroute.guard)."""
        held = self._held
        if held is not None:
            held[0].refused(held[1].name, reason)

    @property
    def path(self) -> str:
        """The raw request path, without its query string: ``/rooms/hello%20world``.

        Exactly what the client sent (always ASCII), so it is safe to log and
        keeps ``%2F`` apart from ``/``. Routing matches the decoded form.
        """
        if self.request is None:
            return ""
        return self.request.path.partition("?")[0]

    @property
    def decoded_path(self) -> str:
        """:attr:`path` percent-decoded as UTF-8, segment by segment, in NFC: ``/rooms/hello world``.

        An encoded slash (``%2F``) becomes ``/`` here, so use ``ws.params``
        for parameter values; the router kept it inside its segment.
        """
        return decode_path(self.path)

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string, decoded and parsed once: ``{"token": ["abc"]}``.

        ``+`` is a space. A query that is not UTF-8 once percent-decoded was
        refused with 400 before the upgrade, so middleware and handlers never
        see one (a plugin answering before routing gets U+FFFD replacements).
        """
        if self._query is None:
            raw = self.request.path.partition("?")[2] if self.request is not None else ""
            try:
                self._query = parse_query(raw)
            except BadTarget:
                self._query = urllib.parse.parse_qs(raw, keep_blank_values=True)
        return self._query

    @property
    def client_ip(self) -> str | None:
        """The client's IP address, honouring proxy headers only from trusted peers."""
        trusted = getattr(getattr(self, "app", None), "forwarded_allow_ips", None)
        return client_ip_of(self.remote_address, self.request, trusted)

    def close(self, code: CloseCode | int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> Coroutine[Any, Any, None]:
        """Perform the closing handshake, as websockets does, with a reason that fits.

        websockets raises ``ProtocolError`` for a reason over 123 bytes, which
        would turn a deliberate close into 1011. Here the reason is cut at a
        character boundary instead (see :func:`wsroute.reasons.fit_close_reason`).
        Every close wsroute performs goes through this method, including
        websockets' own ``Server.close()`` at shutdown.

        Returns websockets' own ``close()`` coroutine (await it as usual):
        a plain method rather than ``async def``, so that the close every
        connection ends with costs no second coroutine.
        """
        return super().close(code, fit_close_reason(reason) if reason else reason)

    def hold_scoped(self, scoped: Scoped) -> None:
        """Keep per-connection dependency values and cleanups from the handshake for the session."""
        self._scoped = scoped

    def take_scoped(self) -> Scoped | None:
        """Hand the held values and cleanups over (once); the taker runs the cleanups."""
        scoped, self._scoped = self._scoped, None
        return scoped

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """websockets' start of the handshake (after TLS, if any): its ``open_timeout`` deadline starts now.

        This is where websockets' own timer starts (its connection handler
        task is created here), so a slow TLS handshake is bounded by
        ``ssl_handshake_timeout`` alone, as in websockets.
        """
        super().connection_made(transport)
        deadlines = self.open_timeouts
        if deadlines is not None:
            self._opening = deadlines.join(self)

    def handshake_timed_out(self) -> None:
        """``open_timeout`` passed before the handshake ended: cancel it and abort, as websockets does.

        Called by :mod:`wsroute.opentimeout`. A pending ``process_request``
        (middleware awaiting a database, say) is cancelled with the
        handshake; the TCP connection is aborted, and nothing is logged. A
        connection whose handshake has ended meanwhile (its 101 or its
        rejection sent) is left alone.
        """
        self._opening = None
        if self.protocol.state is not State.CONNECTING:
            return
        task = self._handler_task
        if task is not None and not task.done():
            task.cancel()
        self.transport.abort()

    def start_keepalive(self) -> None:
        """The handshake succeeded: end its deadline, join the app's keepalive timer instead of starting a task.

        websockets calls this once the handshake succeeded. Pings, latency
        and the 1011 "keepalive ping timeout" are websockets' own; only the
        timer is shared (:mod:`wsroute.keepalive`). A connection served
        without an App (or with settings the timer cannot take) keeps
        websockets' task.
        """
        opening = self._opening
        if opening is not None:
            self._opening = None
            opening.discard(self)
        if self.ping_interval is None:
            return
        try:
            keepalive = self.app.keepalive
        except AttributeError:  # not set up by an App's handshake
            keepalive = None
        slot = keepalive.join(self) if keepalive is not None else None
        if slot is None:
            super().start_keepalive()
        else:
            self._keepalive = slot

    def connection_lost(self, exc: Exception | None) -> None:
        """websockets' transport callback; also runs held cleanups no session took.

        The handshake may fail after the dependencies ran (a header plugin
        answered 500, the server began shutting down, the client left): then
        no handler runs, and the generator dependencies are closed here.
        """
        try:
            super().connection_lost(exc)
        finally:
            held = self._held  # limit counts (wsroute.guard): released once, however the connection ended
            if held is not None:
                self._held = None
                held[0].release(self, held)
            slot = self._keepalive
            if slot is not None:
                self._keepalive = None
                slot.discard(self)
            opening = self._opening  # a handshake that ended without a 101
            if opening is not None:
                self._opening = None
                opening.discard(self)
        scoped = self.take_scoped()
        if scoped is not None and scoped[1] is not None:
            task = asyncio.get_running_loop().create_task(scoped[1].aclose())
            _CLEANUPS.add(task)
            task.add_done_callback(_CLEANUPS.discard)

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` encoded as compact JSON in a text frame.

        An instance of a :func:`wsroute.message` class gains its type field
        (under ``App(message_key=...)``): ``Moved(by="ann", x=1, y=2)`` is
        sent as ``{"type":"moved","by":"ann","x":1,"y":2}``.

        Raises:
            TypeError: ``obj`` holds a value JSON cannot encode.
        """
        await self.send(encode_json(obj, self.app.message_key))

    async def recv_json(self) -> Any:
        """Receive the next message and decode it as JSON.

        The rules are :func:`wsroute.dispatch.decode_json`'s, the same as
        first-message routing and ``@on`` dispatch: strict RFC 8259 (no
        ``NaN``), nesting at most 256 levels.

        Returns:
            The decoded value (dict, list, str, int, float, bool or None).

        Raises:
            BadMessage: the message is binary (code 1003) or not JSON (1008);
                a :class:`wsroute.Close`, so uncaught it closes the
                connection with that code and a reason saying what was wrong.
            websockets.exceptions.ConnectionClosed: as ``recv()`` does.
        """
        message = await self.recv()
        return _json_of(message)


def _json_of(message: str | bytes) -> Any:
    """Decode one received message for ``recv_json``, or raise :class:`BadMessage`."""
    if not isinstance(message, str):
        raise BadMessage("expected a JSON text message, got binary", CloseCode.UNSUPPORTED_DATA)
    try:
        return decode_json(message)
    except UndecodableMessage as exc:
        raise BadMessage(str(exc)) from None
