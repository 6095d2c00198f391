"""The built-in wsroute.otel plugin: spans per connection and per message, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from rawclient import upgrade_request
from timing import timeout, until

import wsroute
from wsroute.testing import TestServer, serve_app

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


# -- message spans for every kind of handler ----------------------------------------


def traced(exporter: InMemorySpanExporter, **settings: Any) -> tuple[wsroute.App, Any]:
    """An app tracing connections and messages into ``exporter``, and a tracer of the same provider for handlers."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = wsroute.App(
        load_entrypoints=False,
        settings={"wsroute.otel": {"enabled": True, "messages": True, "tracer_provider": provider, **settings}},
    )
    return app, provider.get_tracer("test")


def by_kind(exporter: InMemorySpanExporter) -> tuple[list[Any], list[Any]]:
    """The finished SERVER spans and INTERNAL spans, each in the order they ended."""
    spans = exporter.get_finished_spans()
    return [s for s in spans if s.kind is SpanKind.SERVER], [s for s in spans if s.kind is SpanKind.INTERNAL]


def attribute(span: Any, name: str) -> Any:
    """One attribute of a finished span, None when absent."""
    return (span.attributes or {}).get(name)


async def test_function_handler_async_for_gets_one_span_per_message_current_while_handled() -> None:
    """``async for message in ws``: one span per message, child of the connection, current while the handler works."""
    exporter = InMemorySpanExporter()
    app, tracer = traced(exporter)

    @app.route("/echo/{name}")
    async def echo(ws: wsroute.Connection, name: str) -> None:
        async for message in ws:
            with tracer.start_as_current_span("work"):
                await ws.send(message)

    async with serve_app(app) as server, server.connect("/echo/ann") as ws:
        for text in ("a", "b", "c"):
            await ws.send(text)
            assert await ws.recv() == text
    (connection,), internal = by_kind(exporter)
    messages = [s for s in internal if s.name == "WebSocket /echo/{name} message"]
    work = [s for s in internal if s.name == "work"]
    assert (len(messages), len(work), len(internal)) == (3, 3, 6)
    assert all(s.parent is not None and s.parent.span_id == connection.context.span_id for s in messages)
    assert [s.parent.span_id for s in work if s.parent is not None] == [s.context.span_id for s in messages]
    assert all(attribute(s, "wsroute.route") == "/echo/{name}" for s in messages)
    assert all(attribute(s, "wsroute.message_type") is None for s in messages)
    # each message's span covers the work done for it, and ends before the next one starts
    assert all(m.start_time <= w.start_time and w.end_time <= m.end_time for m, w in zip(messages, work, strict=True))
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(messages))


async def test_function_handler_recv_loop_span_ends_when_the_handler_returns() -> None:
    """``await ws.recv()`` twice then return: two message spans, the last one ended by the return, close 1000."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/two")
    async def two(ws: wsroute.Connection) -> None:
        await ws.send(f"1:{await ws.recv()}")
        await ws.send(f"2:{await ws.recv_json()}")

    async with serve_app(app) as server, server.connect("/two") as ws:
        await ws.send("x")
        assert await ws.recv() == "1:x"
        await ws.send("[1]")
        assert await ws.recv() == "2:[1]"
        await ws.wait_closed()
    (connection,), messages = by_kind(exporter)
    assert [s.name for s in messages] == ["WebSocket /two message"] * 2
    assert all(s.end_time is not None and s.end_time <= connection.end_time for s in messages)
    assert attribute(connection, "wsroute.close_code") == 1000


async def test_recv_streaming_gets_one_span_per_fragmented_message() -> None:
    """A handler reading fragments with ``recv_streaming()`` gets one span per message, not per fragment."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/stream")
    async def stream(ws: wsroute.Connection) -> None:
        while True:
            parts = [fragment async for fragment in ws.recv_streaming()]
            await ws.send(f"{len(parts) > 1}:{''.join(parts)}")

    async with serve_app(app) as server, server.connect("/stream") as ws:
        await ws.send(["ab", "cd", "ef"])  # one message in three frames
        assert await ws.recv() == "True:abcdef"
        await ws.send(["g", "h"])
        assert await ws.recv() == "True:gh"
    (connection,), messages = by_kind(exporter)
    assert [s.name for s in messages] == ["WebSocket /stream message"] * 2
    assert all(s.parent is not None and s.parent.span_id == connection.context.span_id for s in messages)


@wsroute.message("move")
@attrs.frozen
class Move:
    """A typed message for the typed ``@on`` test."""

    x: int
    y: int


async def test_handler_class_with_typed_on_entries_gets_spans_with_the_message_type() -> None:
    """Typed and untyped ``@on`` entries and ``on_message`` each give a span; dispatched ones carry their type."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/game")
    class Game(wsroute.Handler):
        @wsroute.on(Move)
        async def move(self, msg: Move) -> None:
            await self.send_json({"moved": [msg.x, msg.y]})

        @wsroute.on("chat")
        async def chat(self, data: Any) -> None:
            await self.send_json({"chat": data["text"]})

        async def on_message(self, message: Any) -> None:
            await self.send_json({"other": message})

    async with serve_app(app) as server, server.connect("/game") as ws:
        for sent in ('{"type": "move", "x": 1, "y": 2}', '{"type": "move", "x": "no"}',
                     '{"type": "chat", "text": "hi"}', "plain"):
            await ws.send(sent)
            await ws.recv()  # the answer, or the error reply of the invalid move
    (connection,), messages = by_kind(exporter)
    assert [s.name for s in messages] == ["WebSocket /game message"] * 4
    assert [attribute(s, "wsroute.message_type") for s in messages] == ["move", "move", "chat", None]
    assert all(s.parent is not None and s.parent.span_id == connection.context.span_id for s in messages)


async def test_first_message_route_names_the_routing_message_span_after_the_chosen_route() -> None:
    """On a path routed by first message, the first message's span takes the route and its type; later ones too."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/play", message="join")
    async def join(ws: wsroute.Connection) -> None:
        await ws.send(f"hello {ws.first_message['name']}")
        async for message in ws:
            await ws.send(message)

    async with serve_app(app) as server, server.connect("/play") as ws:
        await ws.send('{"type": "join", "name": "ann"}')
        assert await ws.recv() == "hello ann"
        await ws.send("again")
        assert await ws.recv() == "again"
    (connection,), messages = by_kind(exporter)
    assert connection.name == "WebSocket /play[join]"
    assert [s.name for s in messages] == ["WebSocket /play[join] message"] * 2
    assert [attribute(s, "wsroute.route") for s in messages] == ["/play[join]"] * 2
    assert [attribute(s, "wsroute.message_type") for s in messages] == ["join", None]


async def test_rejected_first_message_span_keeps_the_path_pattern() -> None:
    """A first message that chooses no route gets a span named after the path; the close is 1008."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/play", message="join")
    async def join(ws: wsroute.Connection) -> None:
        await ws.recv()

    async with serve_app(app) as server, server.connect("/play") as ws:
        await ws.send('{"type": "leave"}')
        await ws.wait_closed()
        assert ws.close_code == 1008
    (connection,), messages = by_kind(exporter)
    assert [s.name for s in messages] == ["WebSocket /play message"]
    assert (connection.name, attribute(connection, "wsroute.close_code")) == ("WebSocket /play", 1008)


async def test_handler_failure_is_recorded_on_the_message_span() -> None:
    """A handler raising while it handles a message marks that message's span ERROR with the exception."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/fail")
    async def fail(ws: wsroute.Connection) -> None:
        async for message in ws:
            if message == "boom":
                raise KeyError(message)
            await ws.send(message)

    async with serve_app(app) as server, server.connect("/fail") as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"
        await ws.send("boom")
        await ws.wait_closed()
    (connection,), messages = by_kind(exporter)
    assert [s.status.status_code for s in messages] == [StatusCode.UNSET, StatusCode.ERROR]
    assert [e.name for e in messages[1].events] == ["exception"]
    assert (connection.status.status_code, attribute(connection, "wsroute.close_code")) == (StatusCode.ERROR, 1011)


def served_class(cls: type) -> type:
    """The connection class below the per-serve subclass that only holds the handshake deadline's wheel."""
    return cls.__bases__[0] if "open_timeouts" in vars(cls) else cls


async def test_connection_class_is_websockets_own_unless_tracing_messages() -> None:
    """Without tracing the connection class is wsroute's; tracing without messages keeps websockets' ``recv``."""
    seen: dict[str, type] = {}

    def app_for(name: str, **settings: Any) -> wsroute.App:
        app = wsroute.App(load_entrypoints=False, settings={"wsroute.otel": settings} if settings else None)

        @app.route("/")
        async def handler(ws: wsroute.Connection) -> None:
            seen[name] = served_class(type(ws))
            await ws.send("ok")

        return app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    apps = {
        "off": app_for("off"),
        "connections": app_for("connections", enabled=True, tracer_provider=provider),
        "messages": app_for("messages", enabled=True, messages=True, tracer_provider=provider),
    }
    for app in apps.values():
        async with serve_app(app) as server, server.connect("/") as ws:
            assert await ws.recv() == "ok"
    assert seen["off"] is wsroute.Connection
    assert issubclass(seen["connections"], wsroute.Connection)
    assert (seen["connections"].recv, seen["connections"].close) == (wsroute.Connection.recv, wsroute.Connection.close)
    assert seen["messages"].recv is not wsroute.Connection.recv
    assert apps["off"].message_tracer is None and apps["connections"].message_tracer is None


async def test_message_spans_compose_with_traffic_counting_and_message_rate() -> None:
    """With counting and a message rate too, messages the rate drops get no span; every one is counted."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = wsroute.App(
        load_entrypoints=False,
        message_rate="2/h",
        message_rate_policy="drop",
        settings={"wsroute.otel": {"enabled": True, "messages": True, "tracer_provider": provider}},
    )
    traffic = app.count_traffic()
    seen: list[type] = []

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        seen.append(served_class(type(ws)))
        async for message in ws:
            await ws.send(message)

    async with serve_app(app) as server, server.connect("/echo") as ws:
        for text in ("0", "1", "2", "3"):
            await ws.send(text)
        assert [await asyncio.wait_for(ws.recv(), timeout(5)) for _ in range(2)] == ["0", "1"]
        await until(lambda: app.stats().refusals.get(("/echo", "message_rate_drop")) == 2)
    (connection,), messages = by_kind(exporter)
    assert [s.name for s in messages] == ["WebSocket /echo message"] * 2
    assert all(s.parent is not None and s.parent.span_id == connection.context.span_id for s in messages)
    assert traffic.snapshot()["/echo"].messages_received == 4
    assert [c.__name__ for c in seen[0].__mro__[:3]] == [
        "TracedRateLimitedCountingConnection", "RateLimitedCountingConnection", "CountingConnection"]


# -- the status actually sent -------------------------------------------------------


async def test_a_101_replaced_by_503_during_shutdown_is_a_503_span() -> None:
    """A handshake held in middleware while the server stops gets websockets' real 503, and so does its span."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)
    entered, release = asyncio.Event(), asyncio.Event()

    @app.middleware
    async def hold(conn: wsroute.Connection, request: Any) -> None:
        entered.set()
        await release.wait()

    @app.route("/late")
    async def late(ws: wsroute.Connection) -> None:
        await ws.send("never")

    serving = app.serve("127.0.0.1", 0)
    server = await serving
    test_server = TestServer(app, server)
    client = asyncio.create_task(test_server.handshake("/late"))
    try:
        await asyncio.wait_for(entered.wait(), timeout(5))
        stopping = asyncio.create_task(serving.stop(timeout=timeout(5)))
        await until(lambda: not server.is_serving())
        release.set()
        answer = await asyncio.wait_for(client, timeout(5))
        await stopping
    finally:
        release.set()
        client.cancel()
    assert (answer.status, answer.body) == (503, b"Server is shutting down.\n")
    (span,) = exporter.get_finished_spans()
    assert (span.name, attribute(span, "http.response.status_code")) == ("WebSocket /late", 503)
    assert span.status.status_code is StatusCode.ERROR
    assert attribute(span, "wsroute.close_code") is None


async def test_handshake_the_client_left_ends_its_span_without_a_status() -> None:
    """A client leaving during the handshake ends the span at once, with no status code (none was sent)."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)
    entered = asyncio.Event()

    @app.middleware
    async def wait_for_the_client_to_leave(conn: wsroute.Connection, request: Any) -> None:
        entered.set()
        await asyncio.wait_for(asyncio.shield(conn.connection_lost_waiter), timeout(5))

    @app.route("/gone")
    async def gone(ws: wsroute.Connection) -> None:
        await ws.send("never")

    async with serve_app(app) as server:
        _, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(upgrade_request("/gone"))
        await asyncio.wait_for(entered.wait(), timeout(5))
        writer.close()
        await until(lambda: len(exporter.get_finished_spans()) == 1)
    (span,) = exporter.get_finished_spans()
    assert (span.name, attribute(span, "client.address")) == ("WebSocket /gone", "127.0.0.1")
    assert attribute(span, "http.response.status_code") is None
    assert attribute(span, "error.type") is None


async def test_handshake_cut_by_open_timeout_ends_its_span_with_the_error() -> None:
    """A handshake still in middleware at ``open_timeout`` is cut; its span ends with ``error.type`` and no status."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.middleware
    async def too_slow(conn: wsroute.Connection, request: Any) -> None:
        await asyncio.sleep(timeout(30))

    @app.route("/slow")
    async def slow(ws: wsroute.Connection) -> None:
        await ws.send("never")

    async with serve_app(app, open_timeout=timeout(0.2)) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(upgrade_request("/slow"))
        assert await asyncio.wait_for(reader.read(), timeout(5)) == b""  # dropped without an answer
        writer.close()
        await until(lambda: len(exporter.get_finished_spans()) == 1)
    (span,) = exporter.get_finished_spans()
    assert attribute(span, "http.response.status_code") is None
    assert attribute(span, "error.type") == "CancelledError"
    assert span.status.status_code is StatusCode.ERROR


async def test_background_task_failure_marks_the_connection_span_only() -> None:
    """A ``Handler.spawn()`` task failing while a message is handled leaves that message's span unmarked."""
    exporter = InMemorySpanExporter()
    app, _ = traced(exporter)

    @app.route("/spawn")
    class Spawner(wsroute.Handler):
        async def on_message(self, message: Any) -> None:
            self.spawn(self.explode())
            await asyncio.wait_for(self.ws.wait_closed(), timeout(5))  # handling this message until the 1011

        async def explode(self) -> None:
            raise RuntimeError("background")

    async with serve_app(app) as server, server.connect("/spawn") as ws:
        await ws.send("go")
        await ws.wait_closed()
        assert ws.close_code == 1011
    (connection,), messages = by_kind(exporter)
    assert [s.status.status_code for s in messages] == [StatusCode.UNSET]
    assert [e.name for e in messages[0].events] == []
    assert connection.status.status_code is StatusCode.ERROR
    assert [e.attributes["exception.message"] for e in connection.events if e.attributes] == ["background"]


async def test_connections_that_never_send_a_request_leave_no_reference_cycle() -> None:
    """Clients that connect and leave without a request are freed by reference counting, not the collector."""
    import gc

    exporter = InMemorySpanExporter()
    app = make_app(exporter, messages=True)

    def traced_alive() -> int:
        return sum(1 for o in gc.get_objects() if type(o).__name__.startswith("Traced"))

    async with serve_app(app) as server:
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.close()
                await writer.wait_closed()
            await until(lambda: traced_alive() == 0, 2)  # raises if a cycle keeps one alive
        finally:
            gc.enable()
