"""The built-in wsroute.otel plugin: spans per connection and per message, checked with the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import wsroute
from wsroute.testing import serve_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def make_app(exporter: InMemorySpanExporter, **settings: Any) -> wsroute.App:
    """An app with tracing enabled into ``exporter``, a Handler class route and a failing route."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = wsroute.App(
        load_entrypoints=False,
        settings={"wsroute.otel": {"enabled": True, "tracer_provider": provider, **settings}},
    )

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_message(self, message: Any) -> None:
            await self.ws.send(message)

        @wsroute.on("ping")
        async def ping(self, data: Any) -> None:
            await self.ws.send("pong")

    @app.route("/fail")
    async def fail(ws: wsroute.Connection) -> None:
        await ws.recv()
        raise KeyError("boom")

    return app


async def test_connection_span_from_handshake_to_close_with_traceparent_parent() -> None:
    """A connection is one SERVER span named after its route pattern, child of the traceparent, with its close code."""
    exporter = InMemorySpanExporter()
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    async with serve_app(make_app(exporter)) as server, server.connect("/rooms/red", additional_headers=headers) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
    (span,) = exporter.get_finished_spans()
    assert span.name == "WebSocket /rooms/{room}"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    assert span.attributes is not None
    assert span.attributes["wsroute.route"] == "/rooms/{room}"
    assert span.attributes["url.path"] == "/rooms/red"
    assert span.attributes["http.response.status_code"] == 101
    assert span.attributes["client.address"] == "127.0.0.1"
    assert span.attributes["wsroute.close_code"] == 1000


async def test_message_spans_are_children_of_the_connection_span() -> None:
    """With messages enabled, each handled message is an INTERNAL child span; a typed one carries its type."""
    exporter = InMemorySpanExporter()
    async with serve_app(make_app(exporter, messages=True)) as server, server.connect("/rooms/blue") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send('{"type": "ping"}')
        assert await ws.recv() == "pong"
    spans = exporter.get_finished_spans()
    (connection,) = [s for s in spans if s.kind is SpanKind.SERVER]
    messages = [s for s in spans if s.kind is SpanKind.INTERNAL]
    assert [s.name for s in messages] == ["WebSocket /rooms/{room} message"] * 2
    assert all(s.parent is not None and s.parent.span_id == connection.context.span_id for s in messages)
    assert [(s.attributes or {}).get("wsroute.message_type") for s in messages] == [None, "ping"]


async def test_failure_and_refusal_spans() -> None:
    """A failing handler's span has status ERROR, the exception and code 1011; a 404's span ends with its status."""
    exporter = InMemorySpanExporter()
    async with serve_app(make_app(exporter)) as server:
        async with server.connect("/fail") as ws:
            await ws.send("go")
            await ws.wait_closed()
        assert await server.rejection("/nowhere") == 404
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    failed = by_name["WebSocket /fail"]
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["wsroute.close_code"] == 1011
    assert [e.name for e in failed.events] == ["exception"]
    refused = by_name["WebSocket"]
    assert (refused.attributes or {})["http.response.status_code"] == 404
    assert "wsroute.route" not in (refused.attributes or {})


async def test_disabled_tracing_registers_nothing() -> None:
    """Without enabling, no tracing plugin is registered and no span is made."""
    app = wsroute.App(load_entrypoints=False)
    async with serve_app(app):
        pass
    assert not app.plugins.is_registered("wsroute.otel.tracing")
    assert app.message_tracer is None


async def test_unknown_setting_fails_start_up() -> None:
    """A misspelt tracing setting stops start-up naming the known keys."""
    app = wsroute.App(load_entrypoints=False, settings={"wsroute.otel": {"enable": True}})
    with pytest.raises(wsroute.PluginError, match="unknown key 'enable'"):
        async with serve_app(app):
            pass
