"""OpenTelemetry tracing (built-in plugin ``wsroute.otel``): off unless enabled and installed.

Enable it with ``App(settings={"wsroute.otel": {"enabled": True}})`` or
``WSROUTE_OTEL=1``, after ``pip install 'wsroute[otel]'`` (opentelemetry-api
and -sdk); enabled without OpenTelemetry installed, start-up fails saying so.
Disabled, it does nothing at all: not even the import.

* One span per connection attempt, ``SERVER`` kind, from the handshake
  request to the close: named ``WebSocket <route pattern>`` once routed
  (``WebSocket`` for a request no route took), with attributes
  ``wsroute.route`` (the route's label: its pattern, plus ``[type]`` on a path
  routed by first message), ``url.path``, ``client.address``,
  ``http.response.status_code`` and, at the close, ``wsroute.close_code`` and
  ``wsroute.close_reason``. A handler failure is recorded on it as an
  exception event with status ERROR.
* The status code is the one websockets actually sent, read where it sends
  it (the protocol's ``send_response``): a 101 that websockets replaced by
  ``503 Server is shutting down`` after ``process_response`` (the server
  stopped serving during the handshake) is a 503 here. A refused handshake
  ends its span when the answer is sent (status ERROR from 500 on); a
  handshake that ends without an upgrade and without an answer (the client
  left, ``open_timeout``) ends its span with no status code, and an
  ``error.type`` when an exception cut it.
* Its parent is the remote context of the request's ``traceparent`` header
  (W3C Trace Context, through OpenTelemetry's configured propagator), so a
  browser's or a gateway's trace continues into the WebSocket.
* With ``"messages": True``, one ``INTERNAL`` child span per message the
  application handles, named ``WebSocket <route> message``, whatever kind of
  handler it is: a message's handling runs from the moment ``recv()`` (or
  ``async for message in ws``, or the first fragment of
  ``recv_streaming()``) hands it over until the handler asks for the next
  message, closes the connection or returns. Handler classes (``on_message``,
  ``@on("type")`` and typed ``@on(Class)`` methods) add
  ``wsroute.message_type`` when a message is dispatched by type; on a path
  routed by first message, the first message's span is renamed after the
  route it chose and carries that route's type. While it is open the span is
  the current span of the task that received the message, so spans the
  handler opens nest under it; a handler failure is recorded on it too
  (a ``Handler.spawn()`` task's failure only on the connection's span).

How it hooks in: the connection span starts in ``wsroute_process_request``
and ends in ``wsroute_connection_closed``; everything else lives in a
subclass of the app's connection class (:func:`traced_connection`), which
the plugin adds to ``app.connection_wrappers`` when tracing is enabled. Its
``recv()`` is overridden only with ``"messages": True``, so tracing without
message spans adds nothing per message, and an app without tracing serves
with websockets' own connection methods.

Settings (``"wsroute.otel"``): ``enabled`` (False), ``messages`` (False),
``tracer_provider`` (None: OpenTelemetry's global provider).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any

from websockets.protocol import State

from ..errors import ConfigurationError
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..connection import Connection

NAME = "wsroute.otel"

DEFAULTS: dict[str, Any] = {"enabled": False, "messages": False, "tracer_provider": None}

#: The attributes :func:`traced_connection` adds to a connection (slots: no dict growth).
SLOTS = ("_otel_message", "_otel_prepared", "_otel_span", "_otel_status")


@hookimpl
def wsroute_configure(app: Any) -> None:
    """Read the settings; when enabled, register a :class:`Tracing` and its connection class for this app."""
    settings = app.plugin_settings(NAME, DEFAULTS)
    enabled = settings["enabled"] or os.environ.get("WSROUTE_OTEL", "") in ("1", "true", "yes")
    if not enabled:
        return
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigurationError(
            "tracing is enabled (settings 'wsroute.otel' or WSROUTE_OTEL) but OpenTelemetry is not installed: "
            "pip install 'wsroute[otel]', or switch tracing off"
        ) from None
    provider = settings["tracer_provider"] or trace.get_tracer_provider()
    tracing = Tracing(provider.get_tracer("wsroute"), bool(settings["messages"]))
    app.plugins.register(tracing, f"{NAME}.tracing", source=f"registered by {NAME}")
    app.connection_wrappers.append(tracing.connection_class)
    if tracing.messages:
        app.message_tracer = tracing.message_type


class Tracing:
    """The spans of one app: the connection's span and its open message span live on the connection."""

    def __init__(self, tracer: Any, messages: bool) -> None:
        from opentelemetry import context, propagate, trace

        self.tracer = tracer
        self.messages = messages
        self._propagate = propagate
        self._trace = trace
        self._attach = context.attach
        self._detach = context.detach
        self._in_context = trace.set_span_in_context
        self._internal = trace.SpanKind.INTERNAL
        self._classes: dict[type[Connection], type[Connection]] = {}

    def __repr__(self) -> str:
        return f"<{NAME} tracing messages={self.messages}>"

    def connection_class(self, base: type[Connection]) -> type[Connection]:
        """``base`` subclassed to report to these spans (built once per base class)."""
        cls = self._classes.get(base)
        if cls is None:
            cls = self._classes[base] = traced_connection(base, self)
        return cls

    # -- the connection span ----------------------------------------------------

    @hookimpl
    def wsroute_process_request(self, conn: Any, request: Any) -> None:
        """Start the connection's span, parented by the request's ``traceparent``; never answers."""
        parent = self._propagate.extract(request.headers)
        conn._otel_span = self.tracer.start_span(
            "WebSocket",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"url.path": request.path.partition("?")[0], "network.protocol.name": "websocket"},
        )

    def responded(self, conn: Any, status: int) -> None:
        """The handshake's answer was sent: name the span after its route; end it unless 101."""
        span = conn._otel_span
        if span is None:  # a connection no process_request hook of ours saw
            return
        conn._otel_status = status
        self._name(span, conn)
        _client_address(span, conn)
        span.set_attribute("http.response.status_code", status)
        if status != 101:
            conn._otel_span = None
            if status >= 500:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
            span.end()

    def handshake_ended(self, conn: Any, exc: BaseException | None) -> None:
        """The handshake ended without an open connection and its span is still open: end it.

        Either no answer was sent (the client left, ``exc`` cut it) or a 101
        was sent and the client left before the handler could start; no
        session runs for such a connection, so nothing else would end it.
        """
        span = conn._otel_span
        conn._otel_span = None
        if conn._otel_status is None:  # else responded() did this
            self._name(span, conn)
            _client_address(span, conn)
        if exc is not None:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(exc).__qualname__))
        elif conn._otel_status == 101:
            span.set_attribute("wsroute.close_code", 1006)
        span.end()

    @hookimpl
    def wsroute_handle_exception(self, conn: Any, exc: BaseException) -> None:
        """Record a handler failure on the connection's span and the message's (the close code stays the others').

        The message span gets it only when the failure is reported in the task
        that received the message: a ``Handler.spawn()`` task's failure is
        reported from a task of its own and belongs to the connection only.
        """
        error = self._trace.Status(self._trace.StatusCode.ERROR, type(exc).__name__)
        held = getattr(conn, "_otel_message", None)
        if held is not None and held[2] is asyncio.current_task():
            held[0].record_exception(exc)
            held[0].set_status(error)
        span = getattr(conn, "_otel_span", None)
        if span is not None:
            span.record_exception(exc)
            span.set_status(error)

    @hookimpl
    def wsroute_connection_closed(self, conn: Any, code: int | None, reason: str) -> None:
        """End the connection's span (and a message span still open) with the close code and reason."""
        if getattr(conn, "_otel_message", None) is not None:
            self.end_message(conn)
        span = getattr(conn, "_otel_span", None)
        if span is None:
            return
        conn._otel_span = None
        self._name(span, conn)  # a path routed by first message knows its route only now
        span.set_attribute("wsroute.close_code", 1006 if code is None else code)
        if reason:
            span.set_attribute("wsroute.close_reason", reason)
        span.end()

    @staticmethod
    def _name(span: Any, conn: Any) -> None:
        route = _route(conn)
        if route is not None:
            span.update_name(f"WebSocket {route}")
            span.set_attribute("wsroute.route", route)

    # -- message spans (``"messages": True``) --------------------------------------

    def start_message(self, conn: Any) -> None:
        """A message was handed to the handler: open its span, current in this task."""
        prepared = conn._otel_prepared
        if prepared is None:
            prepared = self._prepare(conn)
        parent, name, attributes = prepared
        span = self.tracer.start_span(name, context=parent, kind=self._internal, attributes=attributes)
        token = self._attach(self._in_context(span))
        conn._otel_message = (span, token, asyncio.current_task())

    def end_message(self, conn: Any) -> None:
        """The handler asked for the next message, closed or returned: end the open message span."""
        span, token, task = conn._otel_message
        conn._otel_message = None
        if conn._otel_prepared is None and conn.route is not None:  # the message that chose the route
            label = str(conn.route.label)
            span.update_name(f"WebSocket {label} message")
            span.set_attribute("wsroute.route", label)
            if conn.route.message_type is not None:
                span.set_attribute("wsroute.message_type", conn.route.message_type)
        if task is asyncio.current_task():  # a task of its own (3.11's wait_for) keeps its context
            self._detach(token)
        span.end()

    def message_type(self, conn: Any, message_type: str) -> None:
        """``app.message_tracer``: a Handler class dispatches the open message by its type."""
        held = conn._otel_message
        if held is not None:
            held[0].set_attribute("wsroute.message_type", message_type)

    def _prepare(self, conn: Any) -> tuple[Any, str, dict[str, str]]:
        """``(parent context, name, attributes)`` of this connection's message spans; kept once routed."""
        span = conn._otel_span
        route = _route(conn) or ""
        prepared = (
            self._in_context(span) if span is not None else None,
            f"WebSocket {route} message",
            {"wsroute.route": route},
        )
        if conn.route is not None:
            conn._otel_prepared = prepared
        return prepared


def traced_connection(base: type[Connection], tracing: Tracing) -> type[Connection]:
    """A subclass of ``base`` that reports its handshake and, with message spans, its messages to ``tracing``.

    * ``__init__`` wraps this connection's protocol's ``send_response`` (once
      per connection; websockets creates the protocol before the connection)
      to read the status it really sends, then unwraps it;
    * ``handshake`` ends the span of a handshake that did not open;
    * with ``tracing.messages`` only: ``recv`` (which ``async for`` and
      ``recv_json`` use), ``recv_streaming`` and ``close`` end the open
      message span, and ``recv``/``recv_streaming`` open the next one.
    """
    parent_init = base.__init__
    parent_handshake = base.handshake
    parent_lost = base.connection_lost

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._otel_span = None
        self._otel_status = None
        self._otel_message = None
        self._otel_prepared = None
        parent_init(self, *args, **kwargs)
        protocol = self.protocol
        send_response = protocol.send_response
        wrapped = "send_response" in vars(protocol)  # by a base class of ours: put its wrapper back

        def restore() -> None:
            if wrapped:
                protocol.send_response = send_response
            else:
                del protocol.send_response  # once per connection; no cycle left behind

        def traced_send_response(response: Any) -> None:
            send_response(response)
            restore()
            tracing.responded(self, response.status_code)

        traced_send_response.wsroute_otel_restore = restore  # type: ignore[attr-defined]
        protocol.send_response = traced_send_response

    def connection_lost(self: Any, exc: Exception | None) -> None:
        """websockets' transport callback; then unwrap ``send_response`` if no answer was ever sent.

        The wrapper refers to this connection, which refers to the protocol
        holding the wrapper: left in place (a client that connects and leaves
        without a request, a handshake cut by ``open_timeout``), that cycle
        would keep the connection for the garbage collector.
        """
        try:
            parent_lost(self, exc)
        finally:
            restore = getattr(vars(self.protocol).get("send_response"), "wsroute_otel_restore", None)
            if restore is not None:
                restore()

    async def handshake(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            await parent_handshake(self, *args, **kwargs)
        except BaseException as exc:
            if self._otel_span is not None:
                tracing.handshake_ended(self, exc)
            raise
        if self._otel_span is not None and self.protocol.state is not State.OPEN:
            tracing.handshake_ended(self, None)  # websockets runs no handler for it

    handshake.__doc__ = base.handshake.__doc__
    namespace: dict[str, Any] = {
        "__slots__": SLOTS, "__init__": __init__, "handshake": handshake, "connection_lost": connection_lost,
        "__module__": __name__,
        "__doc__": base.__doc__,
    }
    if tracing.messages:
        namespace.update(_message_methods(base, tracing))
    return type(f"Traced{base.__name__}", (base,), namespace)


def _message_methods(base: type[Connection], tracing: Tracing) -> dict[str, Any]:
    """``recv``, ``recv_streaming`` and ``close`` that end and open the message spans."""
    parent_recv = base.recv
    parent_streaming = base.recv_streaming
    parent_close = base.close
    start, end = tracing.start_message, tracing.end_message

    async def recv(self: Any, decode: bool | None = None) -> Any:
        if self._otel_message is not None:
            end(self)
        message = await parent_recv(self, decode)
        start(self)
        return message

    async def recv_streaming(self: Any, decode: bool | None = None) -> AsyncIterator[Any]:
        if self._otel_message is not None:
            end(self)
        fragments: Any = parent_streaming(self, decode)  # an async generator: aclosing() finishes it
        async with contextlib.aclosing(fragments):
            first = True
            async for fragment in fragments:
                if first:
                    start(self)
                    first = False
                yield fragment

    def close(self: Any, code: int = 1000, reason: str = "") -> Coroutine[Any, Any, None]:
        if self._otel_message is not None:
            end(self)
        return parent_close(self, code, reason)

    recv.__doc__ = base.recv.__doc__
    recv_streaming.__doc__ = base.recv_streaming.__doc__
    close.__doc__ = base.close.__doc__
    return {"recv": recv, "recv_streaming": recv_streaming, "close": close}


def _route(conn: Any) -> str | None:
    route = getattr(conn, "route", None)
    if route is not None:
        return str(route.label)
    group = getattr(conn, "group", None)
    return str(group.pattern.source) if group is not None else None


def _client_address(span: Any, conn: Any) -> None:
    with contextlib.suppress(Exception):  # the transport may already be gone
        ip = conn.client_ip
        if ip is not None:
            span.set_attribute("client.address", ip)
