"""OpenTelemetry tracing (built-in plugin ``wsroute.otel``): off unless enabled and installed.

Enable it with ``App(settings={"wsroute.otel": {"enabled": True}})`` or
``WSROUTE_OTEL=1``, after ``pip install 'wsroute[otel]'`` (opentelemetry-api
and -sdk); enabled without OpenTelemetry installed, start-up fails saying so.
Disabled, it does nothing at all: not even the import.

* One span per connection attempt, ``SERVER`` kind, from the handshake
  request to the close: named ``WebSocket <route pattern>`` once routed
  (``WebSocket`` for a request no route took), with attributes
  ``wsroute.route`` (the pattern), ``url.path``, ``client.address``,
  ``http.response.status_code`` (101, or the refusal's status, when the span
  then ends) and, at the close, ``wsroute.close_code`` and
  ``wsroute.close_reason``. A handler failure is recorded on it as an
  exception event with status ERROR.
* Its parent is the remote context of the request's ``traceparent`` header
  (W3C Trace Context, through OpenTelemetry's configured propagator), so a
  browser's or a gateway's trace continues into the WebSocket.
* With ``"messages": True``, one ``INTERNAL`` child span per message a
  :class:`~wsroute.Handler` class handles (``on_message`` or an ``@on``
  method), named ``WebSocket <route> message``, with ``wsroute.message_type``
  when the message was dispatched by type (not yet for classes with typed
  ``@on`` entries, which use the typed decoder). A function handler owns its
  ``async for`` loop, so wsroute cannot see where a message's handling ends:
  open spans there yourself (``trace.get_tracer(...)``).

Settings (``"wsroute.otel"``): ``enabled`` (False), ``messages`` (False),
``tracer_provider`` (None: OpenTelemetry's global provider).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigurationError
from ..hookspecs import hookimpl

NAME = "wsroute.otel"

DEFAULTS: dict[str, Any] = {"enabled": False, "messages": False, "tracer_provider": None}


@hookimpl
def wsroute_configure(app: Any) -> None:
    """Read the settings; when enabled, register a :class:`Tracing` for this app."""
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
    if tracing.messages:
        app.message_tracer = tracing.message_span


class Tracing:
    """The spans of one app; one open span per connection attempt, keyed by connection."""

    def __init__(self, tracer: Any, messages: bool) -> None:
        from opentelemetry import propagate, trace

        self.tracer = tracer
        self.messages = messages
        self._propagate = propagate
        self._trace = trace
        # weak: a handshake cut before its response (client gone) leaves no entry behind
        self._spans: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"<{NAME} tracing messages={self.messages}>"

    @hookimpl
    def wsroute_process_request(self, conn: Any, request: Any) -> None:
        """Start the connection's span, parented by the request's ``traceparent``; never answers."""
        parent = self._propagate.extract(request.headers)
        span = self.tracer.start_span(
            "WebSocket",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"url.path": request.path.partition("?")[0], "network.protocol.name": "websocket"},
        )
        self._spans[conn] = span

    @hookimpl
    def wsroute_extra_headers(self, conn: Any, response: Any) -> None:
        """Name the span after its route; end it here unless the connection opens (101)."""
        span = self._spans.get(conn)
        if span is None:
            return
        route = _route(conn)
        if route is not None:
            span.update_name(f"WebSocket {route}")
            span.set_attribute("wsroute.route", route)
        status = response.status_code
        span.set_attribute("http.response.status_code", status)
        with contextlib.suppress(Exception):  # the transport may already be gone
            ip = conn.client_ip
            if ip is not None:
                span.set_attribute("client.address", ip)
        if status != 101:
            if status >= 500:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
            del self._spans[conn]
            span.end()

    @hookimpl
    def wsroute_handle_exception(self, conn: Any, exc: BaseException) -> None:
        """Record a handler failure on the connection's span (the close code stays the others' choice)."""
        span = self._spans.get(conn)
        if span is not None:
            span.record_exception(exc)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(exc).__name__))

    @hookimpl
    def wsroute_connection_closed(self, conn: Any, code: int | None, reason: str) -> None:
        """End the connection's span with the close code and reason."""
        span = self._spans.pop(conn, None)
        if span is None:
            return
        route = _route(conn)  # a path routed by first message knows its route only now
        if route is not None:
            span.update_name(f"WebSocket {route}")
            span.set_attribute("wsroute.route", route)
        span.set_attribute("wsroute.close_code", 1006 if code is None else code)
        if reason:
            span.set_attribute("wsroute.close_reason", reason)
        span.end()

    @contextlib.contextmanager
    def message_span(self, conn: Any, message_type: str | None) -> Iterator[None]:
        """A child span of the connection's span around one handled message (``messages`` enabled)."""
        parent = self._spans.get(conn)
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        attributes = {"wsroute.route": _route(conn) or ""}
        if message_type is not None:
            attributes["wsroute.message_type"] = message_type
        with self.tracer.start_as_current_span(
            f"WebSocket {attributes['wsroute.route']} message",
            context=context,
            kind=self._trace.SpanKind.INTERNAL,
            attributes=attributes,
        ):
            yield


def _route(conn: Any) -> str | None:
    route = getattr(conn, "route", None)
    if route is not None:
        return str(route.label)
    group = getattr(conn, "group", None)
    return str(group.pattern.source) if group is not None else None
