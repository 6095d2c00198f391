"""Node's ``ws`` client against a traced app: its headers and its fragmented frames give the spans wsroute promises."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from interoptest import NODE_DIR, node_binary
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from timing import timeout

import wsroute
from wsroute.testing import serve_app

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"

#: Sends one text message in two frames (fin false, then fin true) and one binary
#: message, prints the replies as JSON once the server's echoes are in, then closes.
SCRIPT = """
import WebSocket from "ws";
const fail = setTimeout(() => { console.error("no outcome within 20 s"); process.exit(2); }, 20000);
const ws = new WebSocket(process.env.WS_URL, { headers: { traceparent: process.env.TRACEPARENT } });
const replies = [];
ws.on("open", () => {
  ws.send("ab", { fin: false });
  ws.send("cd", { fin: true });
  ws.send(Buffer.from([1, 2]), { binary: true });
});
ws.on("message", (data, isBinary) => {
  replies.push(isBinary ? data.toString("hex") : data.toString());
  if (replies.length === 2) ws.close(1000, "done");
});
ws.on("close", (code) => { clearTimeout(fail); console.log(JSON.stringify({ replies, code })); });
ws.on("error", (err) => { console.error(String(err)); process.exit(1); });
"""


async def run_node(url: str) -> dict[str, Any]:
    """Run :data:`SCRIPT` against ``url`` and return what it printed."""
    env = {**os.environ, "WS_URL": url, "TRACEPARENT": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    proc = await asyncio.create_subprocess_exec(
        node_binary(), "--input-type=module", "-e", SCRIPT, cwd=NODE_DIR, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout(30)):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode == 0 and out.strip(), f"node exited {proc.returncode}:\n{err.decode()}"
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_node_ws_fragmented_and_binary_messages_give_one_span_each_under_its_traceparent() -> None:
    """A fragmented text message and a binary one from Node's ws are two message spans in the client's trace."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = wsroute.App(
        load_entrypoints=False,
        settings={"wsroute.otel": {"enabled": True, "messages": True, "tracer_provider": provider}},
    )

    @app.route("/echo/{room}")
    async def echo(ws: wsroute.Connection, room: str) -> None:
        async for message in ws:
            await ws.send(message if isinstance(message, str) else message.hex())

    async with serve_app(app) as server:
        result = await run_node(server.url("/echo/red"))
    assert result == {"replies": ["abcd", "0102"], "code": 1000}
    spans = exporter.get_finished_spans()
    (connection,) = [s for s in spans if s.kind is SpanKind.SERVER]
    messages = [s for s in spans if s.kind is SpanKind.INTERNAL]
    assert connection.name == "WebSocket /echo/{room}"
    assert connection.parent is not None and format(connection.parent.span_id, "016x") == PARENT_ID
    assert (connection.attributes or {})["wsroute.close_code"] == 1000
    assert [s.name for s in messages] == ["WebSocket /echo/{room} message"] * 2
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in messages)
    assert all(s.parent is not None and s.parent.span_id == connection.context.span_id for s in messages)
