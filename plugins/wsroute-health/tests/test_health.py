"""wsroute-health against a real server: /healthz, /readyz, settings and failures."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import time
from typing import Any

import pytest
import wsroute_health

import wsroute
from wsroute.testing import serve_app


class Checks:
    """A plugin registering the given readiness checks."""

    def __init__(self, **checks: Any) -> None:
        self.checks = checks

    @wsroute.hookimpl
    def wsroute_register_health_checks(self, app: wsroute.App) -> dict[str, Any]:
        return self.checks


def make_app(*plugins: object, **settings: Any) -> wsroute.App:
    """An app with exactly wsroute-health and ``plugins`` (no entry points), and an /echo route."""
    app = wsroute.App(
        load_entrypoints=False,
        plugins=[wsroute_health, *plugins],
        settings={"wsroute-health": settings} if settings else None,
    )

    @app.route("/echo")
    async def echo(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    return app


async def ok() -> None:
    """A check that passes."""


async def broken() -> None:
    """A check that raises."""
    raise ConnectionError("database unreachable")


async def hangs() -> None:
    """A check that never finishes."""
    await asyncio.Event().wait()


# -- liveness -----------------------------------------------------------------


async def test_healthz_answers_200_ok() -> None:
    """GET /healthz answers 200 with the body OK, as plain HTTP."""
    async with serve_app(make_app()) as server:
        result = await server.http_get("/healthz")
    assert (result.status, result.text) == (200, "OK")
    assert result.headers["cache-control"] == "no-store"


async def test_healthz_with_http_client_in_a_thread() -> None:
    """A stock HTTP client (urllib's http.client) gets 200 OK from /healthz."""
    async with serve_app(make_app()) as server:

        def fetch() -> tuple[int, bytes]:
            client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            try:
                client.request("GET", "/healthz")
                response = client.getresponse()
                return response.status, response.read()
            finally:
                client.close()

        assert await asyncio.to_thread(fetch) == (200, b"OK")


async def test_head_answers_without_a_body() -> None:
    """HEAD on both paths gives the status and headers of GET but no body."""
    async with serve_app(make_app(Checks(db=ok))) as server:

        def head(path: str) -> tuple[int, str | None, bytes]:
            client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            try:
                client.request("HEAD", path)
                response = client.getresponse()
                return response.status, response.getheader("Content-Type"), response.read()
            finally:
                client.close()

        assert await asyncio.to_thread(head, "/healthz") == (200, "text/plain; charset=utf-8", b"")
        assert await asyncio.to_thread(head, "/readyz") == (200, "application/json", b"")
        raw = await server.http_get("/healthz", method="HEAD")
    assert raw.body == b""
    assert raw.headers["content-length"] == "2"


async def test_other_methods_get_405() -> None:
    """POST to a health path answers 405 with Allow: GET, HEAD."""
    async with serve_app(make_app()) as server:
        result = await server.http_get("/healthz", method="POST")
    assert result.status == 405
    assert result.headers["allow"] == "GET, HEAD"


async def test_query_string_is_ignored() -> None:
    """/healthz?probe=k8s is answered like /healthz."""
    async with serve_app(make_app()) as server:
        result = await server.http_get("/healthz?probe=k8s")
    assert (result.status, result.text) == (200, "OK")


async def test_percent_encoded_health_path_is_answered() -> None:
    """/health%7A is /healthz once decoded, as wsroute matches routes; a bad escape goes on to routing's 400."""
    async with serve_app(make_app()) as server:
        result = await server.http_get("/health%7A?probe=k8s")
        assert (result.status, result.text) == (200, "OK")
        assert (await server.http_get("/healthz%FF")).status == 400


async def test_other_paths_go_on_to_routing() -> None:
    """Requests to other paths are routed as usual: WebSocket routes work, unknown paths get 404."""
    async with serve_app(make_app()) as server:
        async with server.connect("/echo") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert (await server.http_get("/healthz/extra")).status == 404


async def test_websocket_handshake_to_healthz_is_answered_as_http() -> None:
    """A WebSocket client connecting to /healthz is refused with the plain 200 answer."""
    async with serve_app(make_app()) as server:
        assert await server.rejection("/healthz") == 200


# -- readiness ----------------------------------------------------------------


async def test_readyz_200_when_every_check_passes() -> None:
    """All checks pass: 200, and the JSON body lists each check with its status and duration."""
    async with serve_app(make_app(Checks(db=ok, cache=lambda: True))) as server:
        result = await server.http_get("/readyz")
    assert result.status == 200
    assert result.headers["content-type"] == "application/json"
    body = json.loads(result.body)
    assert body["status"] == "pass"
    assert set(body["checks"]) == {"db", "cache"}
    for check in body["checks"].values():
        assert check["status"] == "pass"
        assert isinstance(check["duration_ms"], float | int) and check["duration_ms"] >= 0


async def test_readyz_with_no_checks_is_ready() -> None:
    """With no check registered the app is ready."""
    async with serve_app(make_app()) as server:
        result = await server.http_get("/readyz")
    assert result.status == 200
    assert json.loads(result.body) == {"status": "pass", "checks": {}}


async def test_raising_check_is_a_failed_check_not_a_500() -> None:
    """A check that raises makes /readyz 503 with the error, while the others still pass."""
    async with serve_app(make_app(Checks(db=broken, cache=ok))) as server:
        result = await server.http_get("/readyz")
    assert result.status == 503
    body = json.loads(result.body)
    assert body["status"] == "fail"
    assert body["checks"]["db"]["status"] == "fail"
    assert body["checks"]["db"]["error"] == "ConnectionError: database unreachable"
    assert body["checks"]["cache"]["status"] == "pass"


async def test_check_returning_false_fails() -> None:
    """A check returning False is a failed check."""
    async with serve_app(make_app(Checks(flag=lambda: False))) as server:
        result = await server.http_get("/readyz")
    assert result.status == 503
    flag = json.loads(result.body)["checks"]["flag"]
    assert (flag["status"], flag["error"]) == ("fail", "returned False")


async def test_hanging_check_is_cut_at_its_timeout() -> None:
    """A check that never returns fails after `timeout` seconds and /readyz still answers."""
    async with serve_app(make_app(Checks(stuck=hangs, db=ok), timeout=0.2)) as server:
        start = time.perf_counter()
        result = await server.http_get("/readyz")
        elapsed = time.perf_counter() - start
    assert result.status == 503
    stuck = json.loads(result.body)["checks"]["stuck"]
    assert stuck["error"] == "timed out after 0.2 s"
    assert 200 <= stuck["duration_ms"] < 1000
    assert elapsed < 1.5


async def test_blocking_sync_check_runs_in_a_thread_and_is_cut() -> None:
    """A plain-def check that blocks runs in a thread: the server keeps serving and the check times out."""

    def blocks() -> None:
        time.sleep(0.6)

    async with serve_app(make_app(Checks(slow=blocks), timeout=0.1)) as server:
        probe = asyncio.create_task(server.http_get("/readyz"))
        await asyncio.sleep(0.03)
        start = time.perf_counter()
        live = await server.http_get("/healthz")  # not blocked by the sleeping check
        assert time.perf_counter() - start < 0.3
        result = await probe
    assert live.status == 200
    assert result.status == 503
    assert json.loads(result.body)["checks"]["slow"]["error"] == "timed out after 0.1 s"


async def test_checks_run_concurrently() -> None:
    """Three checks of 0.3 s each answer in about 0.3 s, not 0.9 s."""

    async def slow() -> None:
        await asyncio.sleep(0.3)

    checks = Checks(a=slow, b=slow, c=slow)
    async with serve_app(make_app(checks)) as server:
        start = time.perf_counter()
        result = await server.http_get("/readyz")
        elapsed = time.perf_counter() - start
    assert result.status == 200
    assert elapsed < 0.75


async def test_readyz_503_while_shutting_down() -> None:
    """While the app is shutting down /readyz answers 503 without running the checks, /healthz stays 200."""
    calls = []

    async def counted() -> None:
        calls.append(1)

    app = make_app(Checks(db=counted))
    async with serve_app(app) as server:
        app.shutting_down = True
        ready = await server.http_get("/readyz")
        live = await server.http_get("/healthz")
    assert ready.status == 503
    assert json.loads(ready.body) == {"status": "fail", "shutting_down": True, "checks": {}}
    assert live.status == 200
    assert calls == []


async def test_show_errors_false_hides_error_text() -> None:
    """With show_errors=False a failed check shows its status but not its error."""
    async with serve_app(make_app(Checks(db=broken), show_errors=False)) as server:
        result = await server.http_get("/readyz")
    assert result.status == 503
    assert "error" not in json.loads(result.body)["checks"]["db"]


async def test_failing_check_is_logged_when_it_starts_failing_only(caplog: pytest.LogCaptureFixture) -> None:
    """A failing check is logged once when it starts failing, not on every probe."""
    caplog.set_level(logging.INFO, logger="wsroute.health")
    state = {"up": False}

    def toggles() -> bool:
        return state["up"]

    async with serve_app(make_app(Checks(db=toggles))) as server:
        for _ in range(3):
            assert (await server.http_get("/readyz")).status == 503
        state["up"] = True
        assert (await server.http_get("/readyz")).status == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "wsroute.health"]
    assert messages == ["readiness check 'db' failed: returned False", "readiness check 'db' passes again"]


async def test_async_callable_object_check() -> None:
    """An object with async __call__ is run on the loop as an async check."""

    class Ping:
        async def __call__(self) -> None:
            raise RuntimeError("no pong")

    async with serve_app(make_app(Checks(ping=Ping()))) as server:
        result = await server.http_get("/readyz")
    assert json.loads(result.body)["checks"]["ping"]["error"] == "RuntimeError: no pong"


# -- settings -----------------------------------------------------------------


async def test_paths_are_configurable() -> None:
    """liveness_path and readiness_path move the endpoints; the defaults are then ordinary paths."""
    async with serve_app(make_app(liveness_path="/live", readiness_path="/ready")) as server:
        assert (await server.http_get("/live")).status == 200
        assert (await server.http_get("/ready")).status == 200
        assert (await server.http_get("/healthz")).status == 404
        assert (await server.http_get("/readyz")).status == 404


async def test_path_none_switches_an_endpoint_off() -> None:
    """readiness_path=None leaves /readyz to routing (404) while /healthz still answers."""
    async with serve_app(make_app(readiness_path=None)) as server:
        assert (await server.http_get("/readyz")).status == 404
        assert (await server.http_get("/healthz")).status == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timeout": 0}, "'timeout' must be a number of seconds > 0 (got 0 that is a <int>)"),
        ({"timeout": "1"}, "'timeout' must be a number of seconds > 0 (got '1' that is a <str>)"),
        ({"timeout": True}, "'timeout' must be a number of seconds > 0"),
        ({"liveness_path": "healthz"}, "'liveness_path' must be a path such as '/healthz'"),
        ({"readiness_path": "/ready?x"}, "'readiness_path' must be a path"),
        ({"readiness_path": "/healthz"}, "'liveness_path' and 'readiness_path' must differ"),
        ({"show_errors": "no"}, "'show_errors' must be True or False"),
        ({"timeuot": 1}, "unknown key 'timeuot' (known: liveness_path, readiness_path, show_errors, timeout)"),
    ],
)
async def test_invalid_settings_stop_start_up(settings: dict[str, Any], message: str) -> None:
    """An invalid or unknown setting stops start-up with a PluginError naming the plugin."""
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(make_app(**settings)):
            pass
    assert "'wsroute-health'" in str(info.value)
    assert message in str(info.value)


async def test_same_check_name_from_two_plugins_stops_start_up() -> None:
    """Two plugins registering the same check name stop start-up naming both."""
    app = make_app()
    app.plugins.register(Checks(db=ok), "first")
    app.plugins.register(Checks(db=ok), "second")
    with pytest.raises(
        wsroute.PluginError,
        match=r"health check 'db' is registered by plugin '(first|second)' and by plugin '(first|second)'",
    ):
        async with serve_app(app):
            pass


async def test_non_callable_check_stops_start_up() -> None:
    """A check that is not callable stops start-up naming its plugin."""
    app = make_app()
    app.plugins.register(Checks(db="SELECT 1"), "sql")
    with pytest.raises(wsroute.PluginError, match="plugin 'sql': health check 'db' is not callable"):
        async with serve_app(app):
            pass


async def test_raising_register_health_checks_names_the_plugin() -> None:
    """A plugin that raises in wsroute_register_health_checks stops start-up with its name."""

    class Broken:
        @wsroute.hookimpl
        def wsroute_register_health_checks(self, app: wsroute.App) -> Any:
            raise KeyError("oops")

    app = make_app()
    app.plugins.register(Broken(), "broken")
    with pytest.raises(wsroute.PluginError, match="plugin 'broken' failed in wsroute_register_health_checks"):
        async with serve_app(app):
            pass


async def test_route_on_a_health_path_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A route registered on /healthz is shadowed, and a warning says so at start-up."""
    app = make_app()

    @app.route("/healthz")
    async def shadowed(ws: wsroute.Connection) -> None:
        pass

    async with serve_app(app) as server:
        assert (await server.http_get("/healthz")).text == "OK"
    assert any("route /healthz is never reached" in r.getMessage() for r in caplog.records)


async def test_disabled_by_name() -> None:
    """App(disable_plugins=["wsroute-health"]) leaves /healthz to routing."""
    app = wsroute.App(disable_plugins=["wsroute-health"])
    async with serve_app(app) as server:
        assert (await server.http_get("/healthz")).status == 404


async def test_loaded_from_its_entry_point_by_default() -> None:
    """A plain App() gets the plugin from its installed entry point and answers /healthz."""
    app = wsroute.App()
    info = {p.name: p for p in app.plugins.list()}["wsroute-health"]
    assert info.source.startswith("entry point 'wsroute-health = wsroute_health' of wsroute-health ")
    async with serve_app(app) as server:
        assert (await server.http_get("/healthz")).status == 200
    assert "wsroute-health.endpoints" in {p.name for p in app.plugins.list()}
