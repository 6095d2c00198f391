"""Plugin hooks on the handshake path, against a real server: answers, headers, failures."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from timing import MS

import wsroute
from wsroute.testing import serve_app


def make_app(*plugins: object) -> wsroute.App:
    """An app with exactly ``plugins`` (no entry points) and an /echo route."""
    app = wsroute.App(load_entrypoints=False, plugins=plugins)

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    return app


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


class Answers:
    """wsroute_process_request answering /plain, synchronously."""

    @wsroute.hookimpl
    def wsroute_process_request(self, conn: wsroute.Connection, request: wsroute.Request) -> Any:
        if request.path == "/plain":
            return conn.respond(200, "plain answer\n")
        return None


class AnswersLater:
    """wsroute_process_request claiming /later and /pass with an awaitable."""

    @wsroute.hookimpl
    def wsroute_process_request(self, conn: wsroute.Connection, request: wsroute.Request) -> Any:
        if request.path == "/later":
            return self.later(conn)
        if request.path == "/echo-later":
            return self.pass_on()
        return None

    async def later(self, conn: wsroute.Connection) -> wsroute.Response:
        await asyncio.sleep(10 * MS)
        return conn.respond(202, "computed asynchronously\n")

    async def pass_on(self) -> None:
        await asyncio.sleep(0)


async def test_process_request_answers_plain_http() -> None:
    """A Response from wsroute_process_request is sent as is, before routing."""
    async with serve_app(make_app(Answers())) as server:
        result = await server.http_get("/plain")
        async with server.connect("/echo") as ws:
            await ws.send("routed")
            assert await ws.recv() == "routed"
    assert (result.status, result.text) == (200, "plain answer\n")


async def test_process_request_awaitable_answer_is_awaited() -> None:
    """An awaitable returned by wsroute_process_request is awaited and its Response sent."""
    async with serve_app(make_app(AnswersLater())) as server:
        result = await server.http_get("/later")
    assert (result.status, result.text) == (202, "computed asynchronously\n")


async def test_awaitable_resolving_to_none_continues_with_routing() -> None:
    """An awaitable resolving to None lets routing go on (here: 404 for an unrouted path)."""
    async with serve_app(make_app(AnswersLater())) as server:
        assert (await server.http_get("/echo-later")).status == 404


async def test_first_result_wins() -> None:
    """With two plugins answering the same path, the last registered answers (pluggy order)."""

    class Other:
        @wsroute.hookimpl
        def wsroute_process_request(self, conn: wsroute.Connection, request: wsroute.Request) -> Any:
            return conn.respond(418, "other\n") if request.path == "/plain" else None

    async with serve_app(make_app(Answers(), Other())) as server:
        assert (await server.http_get("/plain")).status == 418


@pytest.mark.parametrize("when", ["sync", "awaited"])
async def test_raising_process_request_answers_500_once_and_keeps_serving(
    caplog: pytest.LogCaptureFixture, when: str
) -> None:
    """A raising wsroute_process_request answers 500 for that request only, logged once with the plugin name."""

    class Breaks:
        @wsroute.hookimpl
        def wsroute_process_request(self, request: wsroute.Request) -> Any:
            if request.path != "/break":
                return None
            if when == "sync":
                raise RuntimeError("bug in plugin")
            return self.fail()

        async def fail(self) -> None:
            raise RuntimeError("bug in plugin")

    app = make_app()
    app.plugins.register(Breaks(), "breaks")
    async with serve_app(app) as server:
        result = await server.http_get("/break")
        async with server.connect("/echo") as ws:
            await ws.send("still serving")
            assert await ws.recv() == "still serving"
    assert result.status == 500
    assert "See server log" in result.text
    assert errors(caplog) == ["plugin 'breaks' failed in wsroute_process_request; answered 500"]


async def test_extra_headers_are_on_the_101_response() -> None:
    """Headers returned as a dict, as pairs, or by an async hook are all on the 101 a client sees."""

    class AsDict:
        @wsroute.hookimpl
        def wsroute_extra_headers(self) -> dict[str, str]:
            return {"X-Dict": "1"}

    class AsPairs:
        @wsroute.hookimpl
        def wsroute_extra_headers(self) -> list[tuple[str, str]]:
            return [("X-Pair", "a"), ("X-Pair", "b")]

    class Async:
        @wsroute.hookimpl
        async def wsroute_extra_headers(self, request: wsroute.Request) -> dict[str, str]:
            return {"X-Path": request.path}

    async with serve_app(make_app(AsDict(), AsPairs(), Async())) as server, server.connect("/echo?q=1") as ws:
        headers = ws.response.headers
        assert ws.response.status_code == 101
        assert headers["X-Dict"] == "1"
        assert headers.get_all("X-Pair") == ["a", "b"]
        assert headers["X-Path"] == "/echo?q=1"


async def test_extra_headers_are_on_rejections() -> None:
    """A 404 and a plugin's plain HTTP answer also get the extra headers."""

    class Extra:
        @wsroute.hookimpl
        def wsroute_extra_headers(self, response: wsroute.Response) -> dict[str, str]:
            return {"X-Status-Seen": str(response.status_code)}

    async with serve_app(make_app(Extra(), Answers())) as server:
        missing = await server.http_get("/nowhere")
        plain = await server.http_get("/plain")
    assert missing.headers["x-status-seen"] == "404"
    assert plain.headers["x-status-seen"] == "200"


async def test_raising_extra_headers_from_an_entry_point_is_logged_with_it(
    caplog: pytest.LogCaptureFixture, fake_distribution: Callable[[str, str], str]
) -> None:
    """An installed plugin failing in wsroute_extra_headers answers 500 once; the log names it and its entry point."""
    module = fake_distribution(
        "flaky-headers",
        """
        from wsroute import hookimpl

        @hookimpl
        def wsroute_extra_headers(request):
            if request.path == "/echo?fail":
                raise RuntimeError("flaky")
        """,
    )
    app = wsroute.App(disable_plugins=["hello-plugin"])

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        await ws.send("ok")

    async with serve_app(app) as server:
        assert await server.rejection("/echo?fail") == 500
        async with server.connect("/echo") as ws:
            assert await ws.recv() == "ok"
    [message] = errors(caplog)
    assert message.startswith(f"plugin 'flaky-headers' (entry point 'flaky-headers = {module}' of wsroute_fake_dist_")
    assert message.endswith("failed in wsroute_extra_headers; answered 500")


async def test_connection_hooks_see_open_and_close() -> None:
    """wsroute_connection_open and wsroute_connection_closed are called around a handler with its close code."""
    seen: list[Any] = []

    class Observer:
        @wsroute.hookimpl
        async def wsroute_connection_open(self, conn: wsroute.Connection) -> None:
            seen.append(("open", conn.path))

        @wsroute.hookimpl
        def wsroute_connection_closed(self, conn: wsroute.Connection, code: int | None) -> None:
            seen.append(("closed", conn.path, code))

    async with serve_app(make_app(Observer())) as server:
        async with server.connect("/echo") as ws:
            await ws.send("x")
            await ws.recv()
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(10 * MS)
    assert seen == [("open", "/echo"), ("closed", "/echo", 1000)]


class ServeOptionsOf:
    """wsroute_serve_options returning ``options`` (a dict, or anything else to test the check)."""

    def __init__(self, options: Any) -> None:
        self.options = options

    @wsroute.hookimpl
    def wsroute_serve_options(self) -> Any:
        return self.options


async def test_serve_options_override_the_apps_and_serves() -> None:
    """A plugin's server_header wins over App()'s and app.serve()'s, on the 101 and on a 404."""
    app = make_app(ServeOptionsOf({"server_header": "from-plugin"}), ServeOptionsOf(None))
    app_with_option = wsroute.App(load_entrypoints=False, plugins=[ServeOptionsOf({"server_header": "p"})],
                                  server_header="app")
    async with serve_app(app, server_header="serve") as server:
        async with server.connect("/echo") as ws:
            assert ws.response.headers.get_all("Server") == ["from-plugin"]
        response = await server.http_get("/nowhere")
        assert (response.status, response.headers["server"]) == (404, "from-plugin")
    async with serve_app(app_with_option) as server:
        response = await server.http_get("/nowhere")
        assert response.headers["server"] == "p"


async def test_serve_options_none_removes_the_server_header() -> None:
    """``{"server_header": None}`` from a plugin sends no Server header at all."""
    async with serve_app(make_app(ServeOptionsOf({"server_header": None}))) as server, server.connect("/echo") as ws:
        assert "Server" not in ws.response.headers


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ([ServeOptionsOf({"server_header": 3})], "wsroute_serve_options(server_header=3): expected a str"),
        ([ServeOptionsOf({"ping_intervall": 3})], "unknown option 'ping_intervall'; did you mean 'ping_interval'?"),
        ([ServeOptionsOf(["server_header"])], "returned ['server_header']; return a dict"),
        (
            [ServeOptionsOf({"server_header": "a"}), ServeOptionsOf({"server_header": "b"})],
            "sets server_header='a', but plugin",
        ),
    ],
)
async def test_bad_serve_options_stop_start_up(plugins: list[object], message: str) -> None:
    """A wrong option, a wrong value, a non-dict or two plugins disagreeing stop start-up, naming the plugin."""
    app = make_app(*plugins)
    with pytest.raises(wsroute.ConfigurationError) as raised:
        async with serve_app(app):
            pass
    assert message in str(raised.value)
    assert "plugin '" in str(raised.value)
    assert not app.serving


class Counting:
    """wsroute_process_request recording the paths it is asked about; answers /status."""

    def __init__(self, paths: Any = None) -> None:
        if paths is not None:
            self.wsroute_paths = paths
        self.seen: list[str] = []

    @wsroute.hookimpl
    def wsroute_process_request(self, conn: wsroute.Connection, request: wsroute.Request) -> Any:
        self.seen.append(request.path)
        if conn.decoded_path == "/status":
            return conn.respond(200, "fine\n")
        return None


async def test_declared_paths_skip_the_hook_for_other_paths() -> None:
    """A plugin declaring wsroute_paths is asked only about those paths (decoded, query ignored)."""
    plugin = Counting(frozenset({"/status"}))
    async with serve_app(make_app(plugin)) as server:
        async with server.connect("/echo?x=1") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert (await server.http_get("/nowhere")).status == 404
        assert (await server.http_get("/status?verbose=1")).status == 200
        assert (await server.http_get("/st%61tus")).status == 200
    assert plugin.seen == ["/status?verbose=1", "/st%61tus"]


async def test_an_undeclared_plugin_makes_every_path_asked() -> None:
    """With one plugin that declares no paths, every implementation is called for every request."""
    declared, undeclared = Counting(frozenset({"/status"})), Counting()
    async with serve_app(make_app(declared, undeclared)) as server:
        assert (await server.http_get("/nowhere")).status == 404
        assert (await server.http_get("/status")).status == 200
    assert undeclared.seen == ["/nowhere", "/status"]
    assert declared.seen == ["/nowhere"]  # pluggy calls the later-registered one first; /status stops at it


@pytest.mark.parametrize(
    ("paths", "fragment"),
    [
        ("/status", "wsroute_paths='/status' must be a set of decoded paths"),
        (b"/status", "wsroute_paths=b'/status' must be a set of decoded paths"),
        (42, "wsroute_paths=42 must be a set of decoded paths"),
        (frozenset({"status"}), "wsroute_paths has 'status'; it must be a set of decoded paths"),
        (["/ok", 7], "wsroute_paths has 7; it must be a set of decoded paths"),
    ],
)
async def test_malformed_declared_paths_stop_start_up_naming_the_plugin(paths: Any, fragment: str) -> None:
    """A lone string (read as its characters it would hide the plugin's own path) or a non-path fails start-up."""
    with pytest.raises(wsroute.PluginError, match=re.escape(fragment)) as caught:
        async with serve_app(make_app(Counting(paths))):
            pass
    assert "plugin '" in str(caught.value)
