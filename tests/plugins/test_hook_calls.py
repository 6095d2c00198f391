"""One hook-call path through pluggy: wrappers, call monitoring, awaiting async results, naming the culprit."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import wsroute
from wsroute.plugins import Plugins
from wsroute.testing import serve_app


async def echo(ws: wsroute.Connection) -> None:
    async for message in ws:
        await ws.send(message)


class Headers:
    """A plain plugin adding one header."""

    @wsroute.hookimpl
    def wsroute_extra_headers(self, app: Any, conn: Any, request: Any, response: Any) -> dict[str, str]:
        return {"X-Plain": "1"}


class NewStyleWrapper:
    """A pluggy new-style wrapper that adds to the other plugins' headers."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @wsroute.hookimpl(wrapper=True)
    def wsroute_extra_headers(self, app: Any, conn: Any, request: Any, response: Any) -> Any:
        results = yield
        self.seen.append(list(results))
        return [*results, {"X-Wrapped": "yes"}]


async def test_new_style_wrapper_runs_around_the_handshake_hook() -> None:
    """A wrapper=True implementation of wsroute_extra_headers runs per handshake and its added header is sent."""
    wrapper = NewStyleWrapper()
    app = wsroute.App(load_entrypoints=False, plugins=[Headers(), wrapper])
    app.add_route("/echo", echo)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["X-Plain"] == "1"
        assert ws.response.headers["X-Wrapped"] == "yes"
    assert wrapper.seen == [[{"X-Plain": "1"}]]


async def test_old_style_hookwrapper_sees_the_outcome() -> None:
    """A hookwrapper=True implementation of wsroute_process_request sees each request's result."""
    outcomes: list[Any] = []

    class Observer:
        @wsroute.hookimpl(hookwrapper=True)
        def wsroute_process_request(self, app: Any, conn: Any, request: Any) -> Any:
            outcome = yield
            outcomes.append((request.path, outcome.get_result()))

    app = wsroute.App(load_entrypoints=False, plugins=[Observer()])
    app.add_route("/echo", echo)
    async with serve_app(app) as server:
        async with server.connect("/echo?x=1") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert await server.rejection("/nowhere") == 404
    assert outcomes == [("/echo?x=1", None), ("/nowhere", None)]


async def test_wrapper_can_change_registered_routes() -> None:
    """A wrapper around wsroute_register_routes adds a route to what the plugins returned, and it is served."""

    async def extra(ws: wsroute.Connection) -> None:
        await ws.send("from the wrapper")

    class AddsRoute:
        @wsroute.hookimpl(wrapper=True)
        def wsroute_register_routes(self, app: Any) -> Any:
            results = yield
            return [*results, [("/extra", extra)]]

    app = wsroute.App(load_entrypoints=False, plugins=[AddsRoute()])
    async with serve_app(app) as server, server.connect("/extra") as ws:
        assert await ws.recv() == "from the wrapper"


async def test_wrapper_around_async_implementations_sees_coroutines_that_wsroute_awaits() -> None:
    """A wrapper sees an async implementation's coroutine; wsroute awaits it after the wrapper returns."""
    calls: list[str] = []

    class AsyncOpen:
        @wsroute.hookimpl
        async def wsroute_connection_open(self, app: Any, conn: Any) -> None:
            calls.append(f"open {conn.path}")

    class Wrapper:
        @wsroute.hookimpl(wrapper=True)
        def wsroute_connection_open(self, app: Any, conn: Any) -> Any:
            calls.append("before")
            results = yield
            calls.append(f"after: {type(results[0]).__name__}")
            return results

    app = wsroute.App(load_entrypoints=False, plugins=[AsyncOpen(), Wrapper()])
    app.add_route("/echo", echo)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
    assert calls == ["before", "after: coroutine", "open /echo"]


def test_wrapper_that_is_not_a_generator_is_refused_at_registration() -> None:
    """A wrapper=True implementation that does not yield is refused when registered, naming the plugin."""

    class NotAGenerator:
        @wsroute.hookimpl(wrapper=True)
        async def wsroute_startup(self, app: Any) -> None:
            pass

    with pytest.raises(wsroute.PluginError, match=r"(?s)plugin 'bad' \(register\(\)\).*not a generator function"):
        wsroute.App(load_entrypoints=False).plugins.register(NotAGenerator(), "bad")


async def test_failing_wrapper_names_its_plugin() -> None:
    """A wrapper raising in a start-up hook stops start-up with the wrapper's plugin name."""

    class Other:
        @wsroute.hookimpl
        def wsroute_register_routes(self, app: Any) -> None:
            return None

    class Broken:
        @wsroute.hookimpl(wrapper=True)
        def wsroute_register_routes(self, app: Any) -> Any:
            yield
            raise RuntimeError("wrapper broke")

    app = wsroute.App(load_entrypoints=False)
    app.plugins.register(Other(), "other")
    app.plugins.register(Broken(), "broken")
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(app):
            pass
    assert str(info.value) == "plugin 'broken' failed in wsroute_register_routes: RuntimeError('wrapper broke')"


async def test_failing_async_implementation_is_named_and_later_ones_are_not_left_unawaited() -> None:
    """The async implementation that raises is named; the ones after it are closed, never awaited."""
    ran: list[str] = []

    class First:
        @wsroute.hookimpl
        async def wsroute_startup(self, app: Any) -> None:
            ran.append("first")

    class Failing:
        @wsroute.hookimpl
        async def wsroute_startup(self, app: Any) -> None:
            raise OSError("no cache")

    app = wsroute.App(load_entrypoints=False)
    app.plugins.register(First(), "first")  # called last: pluggy calls the last registered first
    app.plugins.register(Failing(), "failing")
    with pytest.raises(wsroute.PluginError, match=r"^plugin 'failing' failed in wsroute_startup: OSError"):
        async with serve_app(app):
            pass
    assert ran == []


async def test_coroutine_returned_by_a_plain_def_is_credited_to_its_plugin(caplog: pytest.LogCaptureFixture) -> None:
    """A process_request answer computed by a plugin's coroutine method that raises is logged with that plugin."""

    class Answers:
        @wsroute.hookimpl
        def wsroute_process_request(self, app: Any, conn: Any, request: Any) -> Any:
            return self.answer() if request.path == "/slow" else None

        async def answer(self) -> None:
            raise LookupError("backend gone")

    app = wsroute.App(load_entrypoints=False)
    app.plugins.register(Answers(), "answers")
    app.plugins.register(Headers(), "headers")
    app.add_route("/echo", echo)
    caplog.set_level(logging.ERROR)
    async with serve_app(app) as server:
        assert (await server.http_get("/slow")).status == 500
        assert await server.rejection("/nowhere") == 404
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["plugin 'answers' failed in wsroute_process_request; answered 500"]


async def test_trace_env_logs_every_hook_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """WSROUTE_TRACE_PLUGINS=1 logs each hook call (with its plugins) and its outcome through pluggy's monitoring."""
    monkeypatch.setenv("WSROUTE_TRACE_PLUGINS", "1")
    app = wsroute.App(load_entrypoints=False, plugins=[Headers()])
    app.add_route("/echo", echo)
    caplog.set_level(logging.INFO, logger="wsroute.plugins.trace")
    async with serve_app(app) as server, server.connect("/echo"):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "wsroute.plugins.trace"]
    assert "hook wsroute_register_middleware(app) calls: no implementation" in lines
    assert f"hook wsroute_extra_headers(app, conn, request, response) calls: {__name__}.Headers" in lines
    assert "hook wsroute_extra_headers returned [{'X-Plain': '1'}]" in lines


def test_tracing_is_off_by_default_and_can_be_undone(caplog: pytest.LogCaptureFixture) -> None:
    """Without the variable nothing is traced; plugins.trace() switches it on and its return value off."""
    caplog.set_level(logging.INFO, logger="wsroute.plugins.trace")
    plugins = Plugins(load_entrypoints=False)
    plugins.hook.wsroute_register_middleware(app=None)  # no built-in implements it
    assert not caplog.records
    undo = plugins.trace()
    plugins.hook.wsroute_register_middleware(app=None)
    undo()
    plugins.hook.wsroute_register_middleware(app=None)
    assert [r.getMessage() for r in caplog.records] == [
        "hook wsroute_register_middleware(app) calls: no implementation",
        "hook wsroute_register_middleware returned []",
    ]


async def test_results_are_paired_with_their_plugins() -> None:
    """collect() credits each result to the plugin that returned it, also when another returned None.

    Without wrappers or monitoring wsroute calls the implementations itself
    and knows exactly; through pluggy's call (monitoring on) a result whose
    plugin cannot be told is credited to the candidates.
    """

    class Some:
        @wsroute.hookimpl
        def wsroute_register_dependencies(self) -> dict[str, int]:
            return {"x": 1}

    class Nothing:
        @wsroute.hookimpl
        def wsroute_register_dependencies(self) -> None:
            return None

    class Later:
        @wsroute.hookimpl
        async def wsroute_register_dependencies(self) -> dict[str, int]:
            return {"y": 2}

    plugins = Plugins(load_entrypoints=False)
    for name, plugin in (("some", Some()), ("nothing", Nothing()), ("later", Later())):
        plugins.register(plugin, name)
    assert await plugins.collect("wsroute_register_dependencies", app=None) == [
        ("later", {"y": 2}),
        ("some", {"x": 1}),
    ]
    undo = plugins.trace()
    try:
        assert await plugins.collect("wsroute_register_dependencies", app=None) == [
            ("later", {"y": 2}),
            ("nothing or some", {"x": 1}),
        ]
    finally:
        undo()


async def test_monitoring_added_while_serving_sees_the_handshake_hooks(caplog: pytest.LogCaptureFixture) -> None:
    """Hooks resolved at start-up still go through pluggy once tracing is switched on mid-serve, and stop after."""
    app = wsroute.App(load_entrypoints=False, plugins=[Headers()])
    app.add_route("/echo", echo)
    caplog.set_level(logging.INFO, logger="wsroute.plugins.trace")
    async with serve_app(app) as server:
        async with server.connect("/echo") as ws:
            assert ws.response.headers["X-Plain"] == "1"
        assert not [r for r in caplog.records if r.name == "wsroute.plugins.trace"]
        undo = app.plugins.trace()
        async with server.connect("/echo") as ws:
            assert ws.response.headers["X-Plain"] == "1"
        undo()
        async with server.connect("/echo") as ws:
            assert ws.response.headers["X-Plain"] == "1"
    lines = [r.getMessage() for r in caplog.records if r.name == "wsroute.plugins.trace"]
    assert lines.count("hook wsroute_extra_headers returned [{'X-Plain': '1'}]") == 1


def test_direct_call_keeps_pluggy_order_and_firstresult() -> None:
    """Without wrappers or monitoring a resolved hook gives pluggy's results: last registered first, None dropped,
    a firstresult hook stopping at the first answer."""
    calls: list[str] = []

    def plugin(name: str, answer: Any) -> object:
        class Plugin:
            @wsroute.hookimpl
            def wsroute_process_request(self, request: Any) -> Any:
                calls.append(name)
                return answer

            @wsroute.hookimpl
            def wsroute_extra_headers(self, request: Any) -> Any:
                return answer

        return Plugin()

    plugins = Plugins(load_entrypoints=False)
    for name, answer in (("a", "from a"), ("b", None), ("c", "from c"), ("d", None)):
        plugins.register(plugin(name, answer), name)
    first = plugins.resolve("wsroute_process_request")
    assert first.direct is not None
    kwargs = {"app": None, "conn": None, "request": "req"}
    assert first.first(kwargs) == plugins.hook.wsroute_process_request(**kwargs) == "from c"
    assert calls == ["d", "c", "d", "c"]
    headers = plugins.resolve("wsroute_extra_headers")
    kwargs = {**kwargs, "response": None}
    assert headers.call(kwargs) == plugins.hook.wsroute_extra_headers(**kwargs) == ["from c", "from a"]
    assert headers.each_sync(kwargs) == [("c", "from c"), ("a", "from a")]


def test_wrappers_make_every_call_go_through_pluggy() -> None:
    """A hook with a wrapper is never called directly, so the wrapper always runs."""
    wrapper = NewStyleWrapper()
    plugins = Plugins(load_entrypoints=False)
    plugins.register(Headers(), "headers")
    plugins.register(wrapper, "wrapper")
    resolved = plugins.resolve("wsroute_extra_headers")
    assert resolved.direct is None
    pairs = resolved.each_sync({"app": None, "conn": None, "request": None, "response": None})
    assert [result for _, result in pairs] == [{"X-Plain": "1"}, {"X-Wrapped": "yes"}]
    assert wrapper.seen == [[{"X-Plain": "1"}]]
