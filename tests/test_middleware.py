"""Middleware in process_request: order, rejections, failures, built-in helpers."""

from __future__ import annotations

import logging

import pytest

import wsroute
from wsroute.testing import serve_app

RAN: list[str] = []


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def first(conn, request):
        RAN.append(f"app1 {conn.route.path if conn.route else None} {conn.params}")

    @app.middleware
    async def second(conn, request):
        RAN.append("app2")
        if request.headers.get("X-Block") == "yes":
            return conn.respond(401, "blocked\n")
        conn.ctx.user = request.headers.get("X-User")
        return None

    def require_admin(conn, request):
        RAN.append("route")
        if conn.ctx.user != "admin":
            return conn.respond(403, "admins only\n")

    @app.route("/admin/{section}", middleware=[require_admin])
    async def admin(ws, section):
        RAN.append("handler")
        await ws.send(f"{ws.ctx.user} in {section}")

    @app.route("/boom")
    async def boom_route(ws):
        RAN.append("handler")

    return app


async def test_middleware_order_app_then_route_and_ctx_reaches_handler() -> None:
    """App middleware runs in registration order, then route middleware; ctx reaches ws.ctx."""
    RAN.clear()
    headers = {"X-User": "admin"}
    async with serve_app(make_app()) as server, server.connect("/admin/users", additional_headers=headers) as ws:
        assert await ws.recv() == "admin in users"
    assert RAN == ["app1 /admin/{section} {'section': 'users'}", "app2", "route", "handler"]


async def test_rejecting_middleware_stops_the_chain_and_handler() -> None:
    """A Response from middleware is sent instead of the upgrade; nothing after it runs."""
    RAN.clear()
    async with serve_app(make_app()) as server:
        assert await server.rejection("/admin/x", additional_headers={"X-Block": "yes"}) == 401
        assert RAN == ["app1 /admin/{section} {'section': 'x'}", "app2"]
        RAN.clear()
        assert await server.rejection("/admin/x", additional_headers={"X-User": "bob"}) == 403
        assert RAN == ["app1 /admin/{section} {'section': 'x'}", "app2", "route"]


async def test_middleware_not_run_for_unknown_paths() -> None:
    """Unmatched paths get 404 before any middleware runs."""
    RAN.clear()
    async with serve_app(make_app()) as server:
        assert await server.rejection("/nothing") == 404
    assert RAN == []


async def test_raising_middleware_fails_closed_with_500_logged_once(caplog) -> None:
    """A middleware exception answers 500, is logged once, and no handler runs."""
    RAN.clear()
    app = make_app()

    @app.middleware
    def explode(conn, request):
        raise RuntimeError("db down")

    caplog.set_level(logging.ERROR)
    async with serve_app(app) as server:
        assert await server.rejection("/boom") == 500
    assert "handler" not in RAN
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "middleware failed for /boom" in errors[0].getMessage()
    assert "db down" in str(errors[0].exc_info[1])


async def test_middleware_returning_garbage_is_a_500() -> None:
    """Returning something other than None or a Response fails closed."""
    app = wsroute.App(load_entrypoints=False)

    @app.middleware
    def wrong(conn, request):
        return "no"

    @app.route("/x")
    async def x(ws):
        raise AssertionError("must not run")

    async with serve_app(app) as server:
        assert await server.rejection("/x") == 500


def tokens(token: str):
    return {"t-alice": "alice", "t-bob": "bob"}.get(token)


async def async_tokens(token: str):
    return tokens(token)


@pytest.mark.parametrize("verify", [tokens, async_tokens])
async def test_bearer_auth(verify) -> None:
    """bearer_auth: missing header 401 with WWW-Authenticate, bad token 403, good token sets the user."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.bearer_auth(verify))

    @app.route("/me")
    async def me(ws):
        await ws.send(f"{ws.ctx.user}/{ws.ctx.user_id}")

    async with serve_app(app) as server:
        assert await server.rejection("/me") == 401
        answer = await server.http_get("/me", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
        assert answer.headers.get("www-authenticate") == 'Bearer realm="wsroute"'
        assert await server.rejection("/me", additional_headers={"Authorization": "Bearer nope"}) == 403
        async with server.connect("/me", additional_headers={"Authorization": "Bearer t-alice"}) as ws:
            assert await ws.recv() == "alice/alice"


async def test_query_token_auth() -> None:
    """query_token_auth reads ?token=, 401 when missing, 403 when refused."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.query_token_auth(tokens))

    @app.route("/me")
    async def me(ws):
        await ws.send(ws.ctx.user_id)

    async with serve_app(app) as server:
        assert await server.rejection("/me") == 401
        assert await server.rejection("/me?token=bad") == 403
        async with server.connect("/me?token=t-bob") as ws:
            assert await ws.recv() == "bob"


async def test_query_token_given_twice_is_refused(caplog) -> None:
    """``?token=good&token=bad`` (either order, encoded or not) gets 400 before verify runs; one token is decoded."""
    seen: list[str] = []

    def verify(token: str) -> str | None:
        seen.append(token)
        return tokens(token)

    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.query_token_auth(verify))

    @app.route("/me")
    async def me(ws):
        await ws.send(ws.ctx.user_id)

    caplog.set_level(logging.WARNING)
    async with serve_app(app) as server:
        for target in ("/me?token=t-bob&token=bad", "/me?token=bad&token=t-bob", "/me?token=t-bob&t%6Fken=t-bob"):
            answer = await server.handshake(target)
            assert (answer.status, answer.text) == (400, "Duplicate 'token' query parameter.\n")
        assert seen == []
        async with server.connect("/me?token=t%2Dbob") as ws:
            assert await ws.recv() == "bob"
        assert (await server.handshake("/me?token=t-bob%00")).status == 403
    assert seen == ["t-bob", "t-bob\x00"]
    assert caplog.records == []


async def test_allow_origins() -> None:
    """allow_origins refuses other or missing origins with 403 and admits listed ones."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.allow_origins(["https://good.example"]))

    @app.route("/x")
    async def x(ws):
        await ws.send("in")

    async with serve_app(app) as server:
        assert await server.rejection("/x") == 403
        assert await server.rejection("/x", origin="https://evil.example") == 403
        async with server.connect("/x", origin="https://good.example") as ws:
            assert await ws.recv() == "in"


def test_helpers_check_their_arguments_at_once() -> None:
    """Helpers given the wrong arguments raise TypeError when created, not per request."""
    with pytest.raises(TypeError, match="'verify' must be a callable"):
        wsroute.bearer_auth("secret")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'origins' must be a list of str"):
        wsroute.allow_origins("https://x")


async def test_sync_verify_returning_a_coroutine_is_awaited() -> None:
    """A plain function that returns a coroutine (a lambda around an async lookup) is awaited, not admitted."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.bearer_auth(lambda token: async_tokens(token)))

    @app.route("/me")
    async def me(ws):
        await ws.send(ws.ctx.user_id)

    async with serve_app(app) as server:
        assert await server.rejection("/me", additional_headers={"Authorization": "Bearer WRONG"}) == 403
        async with server.connect("/me", additional_headers={"Authorization": "Bearer t-bob"}) as ws:
            assert await ws.recv() == "bob"


async def test_sync_middleware_returning_a_coroutine_is_awaited() -> None:
    """Middleware written as a plain function returning a coroutine still rejects and continues correctly."""
    app = wsroute.App(load_entrypoints=False)

    async def check(conn, request):
        if request.headers.get("X-Key") != "k":
            return conn.respond(401, "no key\n")
        conn.ctx.seen = True
        return None

    app.middleware(lambda conn, request: check(conn, request))

    @app.middleware
    def after(conn, request):
        conn.ctx.after = True

    @app.route("/x")
    async def x(ws):
        await ws.send(f"{ws.ctx.seen} {ws.ctx.after}")

    async with serve_app(app) as server:
        assert await server.rejection("/x") == 401
        async with server.connect("/x", additional_headers={"X-Key": "k"}) as ws:
            assert await ws.recv() == "True True"


async def test_duplicate_auth_and_origin_headers_are_refused_not_crashed(caplog) -> None:
    """Two Authorization headers get 400 and two Origin headers 403, with nothing logged as an error."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.allow_origins(["https://good.example"]))
    app.middleware(wsroute.bearer_auth(tokens))

    @app.route("/x")
    async def x(ws):
        await ws.send("in")

    caplog.set_level(logging.ERROR)
    good = [("Origin", "https://good.example")]
    async with serve_app(app) as server:
        both_origins = [("Origin", "https://good.example"), ("Origin", "https://evil.example")]
        assert await server.rejection("/x", additional_headers=both_origins) == 403
        two_tokens = [*good, ("Authorization", "Bearer t-bob"), ("Authorization", "Bearer t-alice")]
        assert await server.rejection("/x", additional_headers=two_tokens) == 400
        async with server.connect("/x", additional_headers=[*good, ("Authorization", "Bearer t-bob")]) as ws:
            assert await ws.recv() == "in"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
