"""App start-up and shutdown code: ``@app.on_startup``, ``@app.on_shutdown``, ``App(lifespan=...)``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

import wsroute
from wsroute.errors import ConfigurationError, DependencyError
from wsroute.testing import TestClient, serve_app


class Recorder:
    """A plugin recording its lifecycle hooks into a shared list."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    @wsroute.hookimpl
    def wsroute_startup(self, app: wsroute.App) -> None:
        self.events.append("plugin startup")

    @wsroute.hookimpl
    def wsroute_shutdown(self, app: wsroute.App) -> None:
        self.events.append("plugin shutdown")


def recording_app(events: list[str], *, fail_in: str | None = None) -> wsroute.App:
    """An app whose every start-up and shutdown step appends to ``events``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: wsroute.App) -> AsyncIterator[dict[str, str]]:
        events.append("lifespan enter")
        if fail_in == "lifespan":
            raise RuntimeError("lifespan failed")
        try:
            yield {"greeting": "hello from the lifespan"}
        finally:
            events.append("lifespan exit")

    app = wsroute.App(load_entrypoints=False, plugins=[Recorder(events)], lifespan=lifespan)

    @app.on_startup
    def first(app: wsroute.App) -> None:
        events.append("startup 1")

    @app.on_startup
    async def second(app: wsroute.App) -> None:
        events.append("startup 2")
        if fail_in == "startup 2":
            raise RuntimeError("startup 2 failed")

    @app.on_shutdown
    async def shutdown_one(app: wsroute.App) -> None:
        events.append("shutdown 1")

    @app.on_shutdown
    def shutdown_two(app: wsroute.App) -> None:
        events.append("shutdown 2")

    @app.route("/greet")
    async def greet(ws: wsroute.Connection, greeting: str) -> None:
        await ws.send(greeting)

    return app


def test_start_up_and_shutdown_run_in_the_documented_order() -> None:
    """Plugins start first, then on_startup in order, then the lifespan; shutdown is the exact reverse."""
    events: list[str] = []
    with TestClient(recording_app(events)) as client:
        assert events == ["plugin startup", "startup 1", "startup 2", "lifespan enter"]
        with client.websocket_connect("/greet") as ws:
            assert ws.receive_text() == "hello from the lifespan"
    assert events[4:] == ["lifespan exit", "shutdown 2", "shutdown 1", "plugin shutdown"]


def test_failed_on_startup_raises_and_shuts_down_only_what_started() -> None:
    """A failing on_startup function stops start-up with its error; plugins are shut down, on_shutdown is not run."""
    events: list[str] = []
    app = recording_app(events, fail_in="startup 2")
    with pytest.raises(RuntimeError, match="startup 2 failed"), TestClient(app):
        pass
    assert events == ["plugin startup", "startup 1", "startup 2", "plugin shutdown"]
    assert not app.serving


def test_failed_lifespan_runs_on_shutdown_and_plugin_shutdown() -> None:
    """A lifespan that raises before yielding: on_shutdown functions and plugins' shutdown still run."""
    events: list[str] = []
    with pytest.raises(RuntimeError, match="lifespan failed"), TestClient(recording_app(events, fail_in="lifespan")):
        pass
    assert events == [
        "plugin startup", "startup 1", "startup 2", "lifespan enter", "shutdown 2", "shutdown 1", "plugin shutdown"
    ]


def test_a_binding_error_after_the_lifespan_exits_it() -> None:
    """A handler asking for a name neither provide() nor the lifespan gives fails start-up and exits the lifespan."""
    events: list[str] = []
    app = recording_app(events)

    @app.route("/other")
    async def other(ws: wsroute.Connection, missing: str) -> None: ...

    with pytest.raises(DependencyError, match="'missing'"), TestClient(app):
        pass
    assert "lifespan exit" in events and events[-1] == "plugin shutdown"


async def test_lifespan_values_are_dependencies_for_each_start() -> None:
    """Each start gets the values its lifespan yields, so a restarted app gets fresh ones."""
    starts: list[int] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: wsroute.App) -> AsyncIterator[dict[str, int]]:
        starts.append(len(starts) + 1)
        yield {"number": starts[-1]}

    app = wsroute.App(load_entrypoints=False, lifespan=lifespan)

    @app.route("/n")
    async def n(ws: wsroute.Connection, number: int) -> None:
        await ws.send(str(number))

    for expected in ("1", "2"):
        async with serve_app(app) as server, server.connect("/n") as ws:
            assert await ws.recv() == expected


def test_lifespan_that_yields_a_non_mapping_is_a_configuration_error() -> None:
    """Yielding a list instead of a mapping of names fails start-up naming the lifespan and the fix."""

    @contextlib.asynccontextmanager
    async def lifespan(app: wsroute.App) -> AsyncIterator[list[int]]:
        yield [1, 2]

    app = wsroute.App(load_entrypoints=False, lifespan=lifespan)
    with pytest.raises(ConfigurationError, match="yield a mapping of dependency names"), TestClient(app):
        pass


def test_lifespan_must_be_a_context_manager_factory() -> None:
    """An undecorated async generator function is refused at App() with the decorator to add."""

    async def lifespan(app: wsroute.App) -> AsyncIterator[None]:
        yield

    with pytest.raises(ConfigurationError, match="asynccontextmanager"):
        wsroute.App(load_entrypoints=False, lifespan=lifespan)


def test_on_startup_checks_its_function_and_closes_while_serving() -> None:
    """on_startup refuses a function that cannot take the app, and any registration while serving."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(ConfigurationError, match="one argument"):
        app.on_startup(lambda: None)
    with TestClient(app), pytest.raises(ConfigurationError, match="the app is serving"):
        app.on_shutdown(lambda app: None)
