"""wsroute.testing: the synchronous TestClient, serve_app and the pytest plugin's fixtures.

The TestClient tests are plain functions: they run in the test thread with
no event loop, the app runs in the client's background thread.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import wsroute
from wsroute.testing import ConnectionClosed, HandshakeRejected, TestClient, TestServer


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def auth(conn: wsroute.Connection, request: wsroute.Request) -> wsroute.Response | None:
        if conn.path == "/private" and request.headers.get("Authorization") != "Bearer t":
            return conn.respond(401, "bad token\n")
        return None

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    @app.route("/private")
    async def private(ws: wsroute.Connection) -> None:
        await ws.send("welcome")

    @app.route("/json")
    async def json_echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send_json({"got": message})

    @app.route("/bye")
    async def bye(ws: wsroute.Connection) -> None:
        await ws.recv()
        await ws.close(4001, "done here")

    @app.route("/silent")
    async def silent(ws: wsroute.Connection) -> None:
        await ws.wait_closed()

    return app


def test_echo_text_bytes_and_json() -> None:
    """Text, binary and JSON round-trip through a real server in a background thread."""
    with TestClient(make_app()) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_bytes() == b"\x00\x01"
        ws.send_json({"a": [1, 2]})
        assert ws.receive_json() == {"a": [1, 2]}


def test_receive_of_the_other_kind_fails_naming_what_came() -> None:
    """receive_text on a binary message and receive_bytes on a text one raise AssertionError saying what arrived."""
    with TestClient(make_app()) as client, client.websocket_connect("/echo") as ws:
        ws.send_bytes(b"\x00\x01\x02")
        with pytest.raises(AssertionError) as binary:
            ws.receive_text()
        ws.send_text("hello")
        with pytest.raises(AssertionError) as text:
            ws.receive_bytes()
        ws.send_text("not json")
        with pytest.raises(AssertionError) as not_json:
            ws.receive_json()
    assert str(binary.value) == "expected a text message, got 3 bytes of binary"
    assert str(text.value) == "expected a binary message, got text 'hello'"
    assert str(not_json.value) == "expected a JSON message, got 'not json'"


def test_receive_json_of_server_json() -> None:
    """receive_json decodes what the server sent with send_json."""
    with TestClient(make_app()) as client, client.websocket_connect("/json") as ws:
        ws.send_text("x")
        assert ws.receive_json() == {"got": "x"}


def test_receive_times_out_instead_of_hanging() -> None:
    """A receive with nothing to read raises TimeoutError after the client's timeout."""
    with (
        TestClient(make_app(), timeout=0.2) as client,
        client.websocket_connect("/silent") as ws,
        pytest.raises(TimeoutError),
    ):
        ws.receive_text()


def test_close_code_and_reason_after_the_server_closes() -> None:
    """When the server closes, receive raises ConnectionClosed and the code and reason are kept."""
    with TestClient(make_app()) as client, client.websocket_connect("/bye") as ws:
        assert ws.close_code is None
        ws.send_text("go")
        with pytest.raises(ConnectionClosed):
            ws.receive_text()
        assert (ws.close_code, ws.close_reason) == (4001, "done here")


def test_refused_handshake_raises_with_status_headers_and_body() -> None:
    """A 401 from middleware and a 404 from routing are HandshakeRejected with the response."""
    with TestClient(make_app()) as client:
        with pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/private"):
            pass
        assert refused.value.status == 401
        assert refused.value.body == b"bad token\n"
        assert refused.value.headers["content-type"].startswith("text/plain")
        with pytest.raises(HandshakeRejected) as missing, client.websocket_connect("/nope"):
            pass
        assert missing.value.status == 404


def test_headers_reach_the_middleware() -> None:
    """headers= are sent with the handshake."""
    with TestClient(make_app()) as client, client.websocket_connect("/private", {"Authorization": "Bearer t"}) as ws:
        assert ws.receive_text() == "welcome"


def test_subprotocols_are_offered() -> None:
    """subprotocols= are offered in the handshake and the choice is readable."""
    app = wsroute.App(load_entrypoints=False, subprotocols=["mqtt"])

    @app.route("/mqtt")
    async def mqtt(ws: wsroute.Connection) -> None:
        await ws.send(ws.subprotocol or "none")

    with TestClient(app) as client, client.websocket_connect("/mqtt", subprotocols=["mqtt"]) as ws:
        assert ws.subprotocol == "mqtt"
        assert ws.receive_text() == "mqtt"


def test_get_answers_plain_http() -> None:
    """client.get sends plain HTTP and returns the HTTPResult (404 for an unknown path)."""
    with TestClient(make_app()) as client:
        result = client.get("/nope")
    assert result.status == 404


def test_start_up_errors_are_raised_in_the_test_thread() -> None:
    """A configuration mistake found at start-up is raised from the with statement."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/needs")
    async def needs(ws: wsroute.Connection, database: Any) -> None:
        pass

    with pytest.raises(wsroute.DependencyError, match="database"), TestClient(app):
        pass


def test_server_stops_when_the_block_exits() -> None:
    """After the block, the port no longer accepts connections."""
    import socket

    with TestClient(make_app()) as client:
        port = client.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_wsroute_client_fixture(wsroute_client: Any) -> None:
    """The pytest plugin's wsroute_client fixture starts a TestClient and stops it after the test."""
    client = wsroute_client(make_app())
    with client.websocket_connect("/echo") as ws:
        ws.send_text("fixture")
        assert ws.receive_text() == "fixture"


async def test_wsroute_server_fixture(wsroute_server: Any) -> None:
    """The async wsroute_server fixture serves the app in the test's loop."""
    server: TestServer = await wsroute_server(make_app())
    async with server.connect("/echo") as ws:
        await ws.send("async")
        assert await ws.recv() == "async"


def test_test_client_needs_no_async_plugin(tmp_path: Path) -> None:
    """A test file using TestClient passes under pytest with pytest-asyncio switched off."""
    test_file = tmp_path / "test_user_app.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import wsroute
            from wsroute.testing import TestClient

            app = wsroute.App(load_entrypoints=False)

            @app.route("/echo")
            async def echo(ws):
                async for message in ws:
                    await ws.send(message)

            def test_echo():
                with TestClient(app) as client:
                    with client.websocket_connect("/echo") as ws:
                        ws.send_text("plain pytest")
                        assert ws.receive_text() == "plain pytest"

            def test_fixture(wsroute_client):
                with wsroute_client(app).websocket_connect("/echo") as ws:
                    ws.send_json({"ok": True})
                    assert ws.receive_json() == {"ok": True}
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:asyncio", "-p", "no:cacheprovider", "-q", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
