"""``wsroute.Router``: prefixes, middleware order, nesting, conflicts, and ``app.include_router``."""

from __future__ import annotations

from typing import Any

import pytest

import wsroute
from wsroute.errors import ConfigurationError, RouteError
from wsroute.testing import ConnectionClosed, HandshakeRejected, TestClient


def tagging(tag: str) -> Any:
    """Middleware that appends ``tag`` to ``conn.ctx.trail``."""

    def middleware(conn: wsroute.Connection, request: wsroute.Request) -> None:
        conn.ctx.__dict__.setdefault("trail", []).append(tag)

    return middleware


async def trail(ws: wsroute.Connection, **params: Any) -> None:
    """Send the middleware trail and the path parameters."""
    await ws.send_json({"trail": getattr(ws.ctx, "trail", []), "params": params})


def test_nested_routers_join_prefixes_and_run_middleware_outermost_first() -> None:
    """/api + /chat + /{room}: middleware runs app, outer router, inner router, then the route's own."""
    app = wsroute.App(load_entrypoints=False)
    app.middleware(tagging("app"))
    outer = wsroute.Router(prefix="/api", middleware=[tagging("outer")])
    inner = wsroute.Router(prefix="/chat")
    inner.middleware(tagging("inner"))
    inner.route("/{room}", middleware=[tagging("route")])(trail)
    outer.include_router(inner)
    app.include_router(outer)
    with TestClient(app) as client, client.websocket_connect("/api/chat/lobby") as ws:
        assert ws.receive_json() == {"trail": ["app", "outer", "inner", "route"], "params": {"room": "lobby"}}
    assert [route.path for route in app.routes] == ["/api/chat/{room}"]


def test_router_middleware_applies_only_to_its_routes() -> None:
    """A router's middleware refusing a request does not touch the app's other routes."""
    app = wsroute.App(load_entrypoints=False)
    admin = wsroute.Router(prefix="/admin")

    @admin.middleware
    def deny_all(conn: wsroute.Connection, request: wsroute.Request) -> None:
        raise wsroute.Deny(403, "admins only")

    admin.route("/panel")(trail)
    app.route("/public")(trail)
    app.include_router(admin)
    with TestClient(app) as client:
        with pytest.raises(HandshakeRejected) as refused, client.websocket_connect("/admin/panel"):
            pass
        assert (refused.value.status, refused.value.body) == (403, b"admins only\n")
        with client.websocket_connect("/public") as ws:
            assert ws.receive_json() == {"trail": [], "params": {}}


def test_conflict_across_routers_names_both_origins() -> None:
    """Two routers whose routes match the same paths fail at include_router, naming each router."""
    app = wsroute.App(load_entrypoints=False)
    first, second = wsroute.Router(prefix="/chat"), wsroute.Router(prefix="/chat")
    first.route("/{room}")(trail)
    second.route("/{name}")(trail)
    app.include_router(first)
    with pytest.raises(RouteError) as error:
        app.include_router(second)
    message = str(error.value)
    assert "route '/chat/{name}' from Router(prefix='/chat')" in message
    assert "route '/chat/{room}' from Router(prefix='/chat')" in message


def test_conflict_between_a_router_and_the_app_names_the_app() -> None:
    """A router route clashing with one registered on the app says which came from the app."""
    app = wsroute.App(load_entrypoints=False)
    app.route("/chat/lobby")(trail)
    router = wsroute.Router(prefix="/chat")
    router.route("/lobby")(trail)
    with pytest.raises(RouteError, match="from the app"):
        app.include_router(router)


def test_include_router_is_refused_while_serving() -> None:
    """Registration is closed while serving, include_router too, with the usual message."""
    app = wsroute.App(load_entrypoints=False)
    app.route("/x")(trail)
    router = wsroute.Router(prefix="/late")
    router.route("/y")(trail)
    with TestClient(app), pytest.raises(ConfigurationError, match="the app is serving"):
        app.include_router(router)
    assert [route.path for route in app.routes] == ["/x"]


def test_router_checks_its_arguments_at_once() -> None:
    """A bad prefix, a bare @router.route, a self-inclusion and a non-router fail when written."""
    with pytest.raises(ConfigurationError, match="not ending with '/'"):
        wsroute.Router(prefix="/chat/")
    router = wsroute.Router(prefix="/a")
    with pytest.raises(TypeError, match="needs a path"):
        router.route(trail)  # type: ignore[arg-type]
    child = wsroute.Router(prefix="/b")
    router.include_router(child)
    with pytest.raises(ConfigurationError, match="cannot include itself"):
        child.include_router(router)
    with pytest.raises(ConfigurationError, match=r"expected a wsroute\.Router"):
        wsroute.App(load_entrypoints=False).include_router("/chat")  # type: ignore[arg-type]


def test_router_routes_take_the_route_options() -> None:
    """Options such as message= and bound values pass through include_router."""
    app = wsroute.App(load_entrypoints=False)
    router = wsroute.Router(prefix="/play")

    @router.route("/", message="join", greeting="welcome")
    async def join(ws: wsroute.Connection, greeting: str) -> None:
        await ws.send(f"{greeting} {ws.first_message['name']}")

    app.include_router(router)
    with TestClient(app) as client, client.websocket_connect("/play/") as ws:
        ws.send_json({"type": "join", "name": "ada"})
        assert ws.receive_text() == "welcome ada"


def test_router_routes_take_the_per_route_limits() -> None:
    """A router route's limit options (max_size, max_subscriptions…) become its limits, not bound handler arguments."""
    app = wsroute.App(load_entrypoints=False)
    router = wsroute.Router(prefix="/r")

    @router.route("/small", max_size=8, max_subscriptions=3)
    async def small(ws: wsroute.Connection) -> None:
        async for message in ws:
            await ws.send(message)

    app.include_router(router)
    route = app.routes[0]
    assert (route.limits, route.bound, route.origin) == (
        {"max_size": 8, "max_subscriptions": 3},
        {},
        "Router(prefix='/r')",
    )
    with TestClient(app) as client, client.websocket_connect("/r/small") as ws:
        ws.send_text("tiny")
        assert ws.receive_text() == "tiny"
        ws.send_text("far too long for the limit")
        with pytest.raises(ConnectionClosed):
            ws.receive_text()
        assert ws.close_code == 1009


def test_a_bad_router_route_option_names_the_route() -> None:
    """A wrong limit on a router route fails at include_router with RouteError naming the full path."""
    app = wsroute.App(load_entrypoints=False)
    router = wsroute.Router(prefix="/r")
    router.route("/x", max_size=-1)(trail)
    with pytest.raises(RouteError, match=r"^route '/r/x': "):
        app.include_router(router)
    assert app.routes == []
