"""Every limit against a real server and real clients: the status or close code, and others unaffected."""

from __future__ import annotations

import asyncio
import resource

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus

import wsroute
from wsroute.connection import Connection
from wsroute.limits import default_max_connections
from wsroute.testing import serve_app

pytestmark = pytest.mark.timeout(60)

OTHER_IP = ("127.0.0.2", 0)  # a second client address on loopback


def echo_app(**options: object) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    @app.route("/echo")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    return app


async def refused(server, path: str = "/echo", **kwargs: object) -> tuple[int, dict[str, str]]:
    """The status and headers a handshake is refused with."""
    try:
        async with server.connect(path, **kwargs):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code, {k.lower(): v for k, v in exc.response.headers.raw_items()}
    raise AssertionError("the handshake was accepted")


async def echoes(ws, text: str = "ping") -> bool:
    await ws.send(text)
    return await asyncio.wait_for(ws.recv(), 5) == text


async def wait_for_stat(app: wsroute.App, key: tuple[str, str], want: int) -> int:
    """Poll app.stats() (bounded) until the count reaches ``want``; the last value."""
    for _ in range(200):
        got = app.stats().refusals.get(key, 0)
        if got >= want:
            return got
        await asyncio.sleep(0.01)
    return app.stats().refusals.get(key, 0)


async def test_max_connections_answers_503_with_retry_after_and_recovers() -> None:
    """Past max_connections a handshake gets 503 + Retry-After; once one closes, a new client connects."""
    app = echo_app(max_connections=2)
    async with serve_app(app) as server:
        first = await server.connect("/echo")
        second = await server.connect("/echo")
        status, headers = await refused(server)
        assert (status, headers.get("retry-after")) == (503, "1")
        assert await echoes(first) and await echoes(second)
        assert app.stats().open_connections == 2
        await first.close()
        for _ in range(200):  # the server frees the slot when the TCP connection is gone
            if app.stats().open_connections == 1:
                break
            await asyncio.sleep(0.01)
        async with server.connect("/echo") as third:
            assert await echoes(third)
        await second.close()
        assert app.stats().refusals == {("/echo", "max_connections"): 1}
        assert app.stats().max_connections == 2


async def test_max_connections_per_ip_answers_429_and_spares_other_addresses() -> None:
    """Past max_connections_per_ip one address gets 429; a client from 127.0.0.2 still connects and echoes."""
    app = echo_app(max_connections_per_ip=2)
    async with serve_app(app) as server:
        held = [await server.connect("/echo") for _ in range(2)]
        status, _ = await refused(server)
        assert status == 429
        async with server.connect("/echo", local_addr=OTHER_IP) as other:
            assert await echoes(other)
        assert all([await echoes(ws) for ws in held])
        for ws in held:
            await ws.close()
        assert app.stats().refusals == {("/echo", "max_connections_per_ip"): 1}


async def test_route_max_connections_per_ip_overrides_the_app() -> None:
    """A route's max_connections_per_ip applies to it alone; the app's other routes are not limited."""
    app = echo_app()

    @app.route("/one", max_connections_per_ip=1)
    async def one(ws):
        await ws.wait_closed()

    async with serve_app(app) as server, server.connect("/one"):
        assert (await refused(server, "/one"))[0] == 429
        async with server.connect("/echo") as a, server.connect("/echo") as b:
            assert await echoes(a) and await echoes(b)


async def test_max_connections_per_user_answers_429_and_spares_other_users() -> None:
    """Past max_connections_per_user the user's next handshake gets 429; another user connects."""
    app = echo_app(max_connections_per_user=1)

    @app.middleware
    def who(conn, request):
        conn.ctx.user_id = request.headers.get("X-User")

    async with serve_app(app) as server:
        async with server.connect("/echo", additional_headers={"X-User": "alice"}) as alice:
            status, _ = await refused(server, additional_headers={"X-User": "alice"})
            assert status == 429
            async with server.connect("/echo", additional_headers={"X-User": "bob"}) as bob:
                assert await echoes(bob) and await echoes(alice)
        assert app.stats().refusals == {("/echo", "max_connections_per_user"): 1}


async def test_handshake_rate_answers_429_with_retry_after_per_ip() -> None:
    """Past handshake_rate one address gets 429 + Retry-After; another address is unaffected."""
    app = echo_app(handshake_rate="2/m")
    async with serve_app(app) as server:
        for _ in range(2):
            async with server.connect("/echo") as ws:
                assert await echoes(ws)
        status, headers = await refused(server)
        assert status == 429 and int(headers["retry-after"]) >= 1
        async with server.connect("/echo", local_addr=OTHER_IP) as other:
            assert await echoes(other)
        assert app.stats().refusals == {("/echo", "handshake_rate"): 1}


async def test_message_rate_close_sends_1008_and_spares_other_connections() -> None:
    """Past message_rate (policy close) the connection is closed with 1008; another connection echoes on."""
    app = echo_app(message_rate=wsroute.Rate(5, per=60))
    async with serve_app(app) as server:
        async with server.connect("/echo") as calm, server.connect("/echo") as noisy:
            for i in range(5):
                assert await echoes(noisy, str(i))
            await noisy.send("one too many")
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(noisy.recv(), 5)
            assert (noisy.close_code, noisy.close_reason) == (1008, "message rate exceeded")
            assert await echoes(calm)
        assert app.stats().refusals == {("/echo", "message_rate"): 1}


async def test_message_rate_applies_to_handler_classes() -> None:
    """A Handler class's on_message loop is rate-limited too (1008 past the rate)."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/h", message_rate="2/m")
    class Echo(wsroute.Handler):
        async def on_message(self, message):
            await self.ws.send(message)

    async with serve_app(app) as server, server.connect("/h") as ws:
        assert await echoes(ws) and await echoes(ws)
        await ws.send("third")
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008


async def test_message_rate_drop_discards_and_counts() -> None:
    """Policy drop: messages past the rate are discarded and counted; the connection stays open."""
    app = echo_app(message_rate="3/m", message_rate_policy="drop")
    async with serve_app(app) as server, server.connect("/echo") as ws:
        for i in range(5):
            await ws.send(str(i))
        assert [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)] == ["0", "1", "2"]
        assert await wait_for_stat(app, ("/echo", "message_rate_drop"), 2) == 2
        assert ws.close_code is None


async def test_route_message_rate_leaves_other_routes_alone() -> None:
    """A route's message_rate limits that route; the app's other route takes any number of messages."""
    app = echo_app()

    @app.route("/slow", message_rate="1/m")
    async def slow(ws):
        async for message in ws:
            await ws.send(message)

    async with serve_app(app) as server, server.connect("/echo") as fast, server.connect("/slow") as limited:
        for i in range(50):
            assert await echoes(fast, str(i))
        assert await echoes(limited)
        await limited.send("again")
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(limited.recv(), 5)
        assert limited.close_code == 1008 and await echoes(fast)


DEADLINE_ONLY = {"__slots__", "__module__", "__qualname__", "__doc__", "open_timeouts"}


async def test_without_message_rate_connections_keep_websockets_recv() -> None:
    """No message_rate anywhere: connections are plain wsroute Connections (no per-message cost)."""
    app = echo_app()
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert await echoes(ws)
        (conn,) = server.server.connections
        # The class websockets creates is a per-serve subclass that adds only the
        # handshake deadline's wheel (wsroute.opentimeout); no method.
        assert type(conn).__bases__ == (Connection,) and set(vars(type(conn))) <= DEADLINE_ONLY


async def test_max_subscriptions_raises_subscription_limit_and_keeps_the_connection() -> None:
    """Past max_subscriptions subscribe() raises SubscriptionLimit; the connection and its topics stay."""
    app = wsroute.App(load_entrypoints=False, max_subscriptions=2)

    @app.route("/subs")
    class Subs(wsroute.Handler):
        async def on_connect(self):
            await self.subscribe("a")
            await self.subscribe("b")
            await self.subscribe("a")  # already subscribed: not a new topic
            try:
                await self.subscribe("c")
            except wsroute.SubscriptionLimit as exc:
                await self.ws.send(f"refused: {exc}")

    async with serve_app(app) as server:
        async with server.connect("/subs") as ws:
            answer = await asyncio.wait_for(ws.recv(), 5)
            assert answer.startswith("refused: subscribe('c'): this connection is subscribed to 2 topics")
            await app.hub.publish("b", "news")
            assert await asyncio.wait_for(ws.recv(), 5) == "news"
        assert app.stats().refusals == {("/subs", "max_subscriptions"): 1}


async def test_route_max_size_closes_with_1009_and_other_routes_keep_theirs() -> None:
    """A route's max_size closes a larger message with 1009; the app's other route takes larger ones."""
    app = echo_app()

    @app.route("/small", max_size=10)
    async def small(ws):
        async for message in ws:
            await ws.send(message)

    async with serve_app(app) as server:
        async with server.connect("/small") as ws, server.connect("/echo") as big:
            assert await echoes(ws, "x" * 10)
            await ws.send("x" * 11)
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009
            assert await echoes(big, "y" * 1000)
        assert await wait_for_stat(app, ("/small", "max_size"), 1) == 1


def test_default_max_connections_follows_the_descriptor_limit() -> None:
    """Without max_connections the cap is the soft descriptor limit minus the reserve."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert wsroute.App(load_entrypoints=False).stats().max_connections == default_max_connections(soft)
    assert default_max_connections(1024) == 1024 - 102
    assert default_max_connections(256) == 256 - 64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_connections": 0}, "App(max_connections=0): expected a whole number >= 1"),
        ({"max_connections_per_ip": "5"}, "App(max_connections_per_ip='5'): expected a whole number >= 1"),
        ({"handshake_rate": "fast"}, "App(handshake_rate='fast'): expected a rate such as '50/s'"),
        ({"message_rate_policy": "ignore"}, "App(message_rate_policy='ignore'): expected one of 'close', 'drop'"),
        ({"redact": "Authorization"}, "App(redact='Authorization'): expected a list of header"),
    ],
)
def test_app_limit_mistakes_fail_when_the_app_is_built(options: dict[str, object], message: str) -> None:
    """A wrong limit value raises ConfigurationError naming the option and what is expected."""
    with pytest.raises(wsroute.ConfigurationError) as info:
        wsroute.App(load_entrypoints=False, **options)
    assert str(info.value).startswith(message)


def test_route_limit_mistakes_name_the_route() -> None:
    """A wrong route limit raises RouteError naming the route when it is registered."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(wsroute.RouteError) as info:

        @app.route("/x", message_rate="lots")
        async def x(ws):
            pass

    assert str(info.value).startswith("route '/x': message_rate='lots': expected a rate such as '50/s'")


def test_message_routed_paths_share_their_limits() -> None:
    """Routes keyed by first message on one path must agree on limits (one handshake decides them)."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/play", message="join", max_connections_per_ip=2)
    class Join(wsroute.Handler):
        pass

    with pytest.raises(wsroute.RouteError, match="limits="):

        @app.route("/play", message="leave")
        class Leave(wsroute.Handler):
            pass


def test_set_limits_changes_app_limits_before_start() -> None:
    """app.set_limits() (what the CLI uses) replaces app-wide limits and validates them."""
    app = echo_app(max_connections_per_ip=3)
    app.set_limits(max_connections=7)
    assert (app.limits.max_connections, app.limits.max_connections_per_ip) == (7, 3)
    with pytest.raises(wsroute.ConfigurationError, match="max_connections=-1"):
        app.set_limits(max_connections=-1)
