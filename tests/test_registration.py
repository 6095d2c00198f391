"""Mistakes in putting an app together fail early, with messages that say the fix."""

from __future__ import annotations

import functools
from typing import ClassVar

import attrs
import pytest

import wsroute
from wsroute import ConfigurationError, DependencyError, HandlerError, RouteError
from wsroute.testing import serve_app


async def handler(ws):
    pass


def test_route_returns_the_decorated_object_unchanged() -> None:
    """@app.route gives back the very function or class it decorated."""
    app = wsroute.App(load_entrypoints=False)

    async def f(ws):
        pass

    class C(wsroute.Handler):
        pass

    assert app.route("/f")(f) is f
    assert app.route("/c")(C) is C
    assert [r.path for r in app.routes] == ["/f", "/c"]


def test_sync_function_is_rejected() -> None:
    """A plain def handler is refused with the reason and the fix."""
    app = wsroute.App(load_entrypoints=False)

    def sync(ws):
        pass

    with pytest.raises(HandlerError) as info:
        app.route("/s")(sync)
    assert "is not a coroutine function; define it with 'async def'" in str(info.value)
    assert "route '/s'" in str(info.value)


def test_class_that_is_not_a_handler_is_rejected() -> None:
    """A class not derived from wsroute.Handler is refused."""
    app = wsroute.App(load_entrypoints=False)

    class NotAHandler:
        async def on_message(self, message):
            pass

    with pytest.raises(HandlerError, match=r"is not a wsroute\.Handler subclass; subclass wsroute\.Handler"):
        app.route("/n")(NotAHandler)


def test_non_callable_is_rejected() -> None:
    """Something that is not callable at all is refused."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(HandlerError, match="is not a handler"):
        app.add_route("/x", 42)


def test_conflicting_routes_fail_at_registration() -> None:
    """Registering a second route for the same requests names both patterns."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/items/{id:int}", handler)
    with pytest.raises(RouteError, match=r"route '/items/\{n\}' conflicts with route '/items/\{id:int\}'"):
        app.add_route("/items/{n}", handler)
    app.add_route("/same", handler)
    with pytest.raises(RouteError, match=r"conflicts with '/same'"):
        app.add_route("/same", handler)


def test_message_routes_cannot_mix_with_a_plain_route() -> None:
    """A path is either routed by first message or has one route; duplicate types fail."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/p", handler, message="a")
    with pytest.raises(RouteError, match=r"route '/p\[a\]' conflicts"):
        app.add_route("/p", handler, message="a")
    with pytest.raises(RouteError, match="route '/p' conflicts"):
        app.add_route("/p", handler)


def test_route_middleware_on_message_routes_is_refused() -> None:
    """Route middleware cannot run for message routes (the message is unknown before the upgrade)."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(RouteError, match="first message is not known yet"):
        app.add_route("/p", handler, message="a", middleware=[lambda c, r: None])


def test_user_converter_registration() -> None:
    """add_converter makes a converter usable; unknown ones list the known names."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(RouteError, match="unknown converter 'slug' \\(known: int, path, str, uuid\\)"):
        app.add_route("/post/{s:slug}", handler)
    app.add_converter(wsroute.Converter("slug", r"[a-z-]+"))
    app.add_route("/post/{s:slug}", handler)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"handler": lambda c: None}, "handler= cannot be passed to wsroute: routes are registered with @app.route"),
        ({"message_key": ""}, "App(message_key=''): expected a non-empty str"),
        ({"first_message_timeout": 0}, "App(first_message_timeout=0): expected a number of seconds > 0"),
        ({"slow_consumer": "explode"}, "App(slow_consumer='explode'): expected one of"),
        ({"create_connection": object}, "must be a subclass of wsroute.Connection"),
    ],
)
def test_bad_app_options(options, fragment) -> None:
    """Wrong App() options raise ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError) as info:
        wsroute.App(load_entrypoints=False, **options)
    assert fragment in str(info.value)


async def test_missing_dependency_fails_at_startup_naming_route_and_parameter() -> None:
    """A parameter nothing provides stops start-up with the route, the parameter and the fixes."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/items/{item_id:int}")
    async def item(ws, item_id, db):
        pass

    with pytest.raises(DependencyError) as info:
        async with serve_app(app):
            pass
    message = str(info.value)
    assert "route '/items/{item_id:int}': parameter 'db'" in message
    assert "add app.provide(db=...)" in message


async def test_bound_argument_without_parameter_is_an_error() -> None:
    """app.route(path, x=...) for a handler without x names the unused binding."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/x", handler, cache={})
    with pytest.raises(DependencyError, match=r"app.route\(..., cache=...\) is bound but .* has no parameter 'cache'"):
        async with serve_app(app):
            pass


async def test_handler_without_connection_parameter_is_an_error() -> None:
    """A function handler must take the connection first."""
    app = wsroute.App(load_entrypoints=False)

    async def nothing():
        pass

    app.add_route("/x", nothing)
    with pytest.raises(HandlerError, match="must take the connection as its first positional parameter"):
        async with serve_app(app):
            pass


async def test_dependencies_are_bound_once_with_partial() -> None:
    """Provided and route-bound values reach the handler; route values win over app values."""
    app = wsroute.App(load_entrypoints=False)
    app.provide(db="app-db", cache="app-cache")

    @app.route("/x/{n:int}", cache="route-cache")
    async def x(ws, n, db, cache, unused="default"):
        await ws.send_json([n, db, cache, unused])

    async with serve_app(app) as server, server.connect("/x/3") as ws:
        assert await ws.recv() == '[3,"app-db","route-cache","default"]'
    binding = app._assembly.session.bindings[app.routes[0]]
    assert isinstance(binding.call, functools.partial)
    assert binding.call.keywords == {"db": "app-db", "cache": "route-cache"}
    assert binding.path_args == ("n",)


async def test_declarative_routes() -> None:
    """App(routes=[...]) registers routes like the decorator does."""

    async def hello(ws, who):
        await ws.send(f"hello {who}")

    app = wsroute.App(load_entrypoints=False, routes=[("/hello", hello, {"who": "you"})])
    async with serve_app(app) as server, server.connect("/hello") as ws:
        assert await ws.recv() == "hello you"


def test_public_api_is_guarded() -> None:
    """wsroute.__all__ is the public API; every name resolves."""
    assert sorted(wsroute.__all__) == sorted(
        [
            "App", "BadMessage", "BrokerError", "BrokerUnavailable", "Close", "ConfigurationError", "Connection",
            "Converter", "DependencyError", "Deny", "Handler", "HandlerError", "InvalidMessage", "LagMonitor",
            "LoadError", "MessageDecoder", "PluginError", "Position", "Rate", "Recovery", "Rejection", "Request",
            "Response", "Route", "RouteError", "Router", "ServerError", "SubscriptionLimit", "URLPathError",
            "WsrouteError", "__version__", "allow_origins",
            "bearer_auth", "hookimpl", "message", "on", "query_token_auth",
        ]
    )
    for name in wsroute.__all__:
        assert getattr(wsroute, name) is not None


@pytest.mark.parametrize(
    ("name", "signature"),
    [
        ("on_connect", "(self)"),
        ("on_message", "(self, message)"),
        ("on_disconnect", "(self, code, reason)"),
        ("on_presence", "(self, topic, event, user_id)"),
    ],
)
def test_handler_with_a_plain_def_lifecycle_method_is_refused(name, signature) -> None:
    """A Handler whose awaited method is a plain def fails at registration, naming the method and the fix."""
    app = wsroute.App(load_entrypoints=False)
    Sync = type("Sync", (wsroute.Handler,), {name: lambda self, *args: None})

    with pytest.raises(HandlerError) as info:
        app.route("/sync")(Sync)
    assert str(info.value).startswith(
        f"route '/sync': {__name__}.Sync.{name} is a plain 'def', but wsroute awaits it; "
        f"define it as 'async def {name}{signature}: ...'"
    )
    assert app.routes == []


def test_plain_def_overriding_an_on_method_is_refused() -> None:
    """A subclass replacing an @on method with a plain def of the same name fails at registration."""
    app = wsroute.App(load_entrypoints=False)

    class Base(wsroute.Handler):
        @wsroute.on("move")
        async def move(self, data):
            pass

    class Child(Base):
        def move(self, data):
            pass

    with pytest.raises(HandlerError) as info:
        app.route("/child")(Child)
    assert str(info.value).startswith(
        f"route '/child': {Child.__module__}.{Child.__qualname__}.move is a plain 'def', but it receives messages "
        "of type 'move' and wsroute awaits it; define it as 'async def move(self, data): ...'"
    )


class Database:
    """A stand-in dependency."""


async def test_dependency_annotation_without_attrs_fails_at_startup() -> None:
    """A provided dependency declared only as an annotation (no @attrs.define) stops start-up with the fix."""
    app = wsroute.App(load_entrypoints=False)
    app.provide(db=Database())

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        db: Database

        async def on_connect(self):
            await self.send(type(self.db).__name__)

    with pytest.raises(DependencyError) as info:
        async with serve_app(app):
            pass
    message = str(info.value)
    assert message.startswith(
        f"route '/rooms/{{room}}': {Room.__module__}.{Room.__qualname__} declares 'db: Database' and "
        "app.provide(db=...) gives a value, but its constructor does not take 'db', so self.db would be "
        "missing at the first connection: Room is not an attrs class; put @attrs.define directly above "
        "'class Room', below @app.route(...)"
    )


async def test_route_bound_dependency_annotation_without_attrs_names_the_field() -> None:
    """A value bound with app.route(path, name=...) to an annotation-only field names app.route as the source."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/items", limit=10)
    class Items(wsroute.Handler):
        limit: int

    with pytest.raises(DependencyError, match=r"declares 'limit: int' and app.route\('/items', limit=...\) gives"):
        async with serve_app(app):
            pass


WRONG_ORDER_APP = wsroute.App(load_entrypoints=False)
WRONG_ORDER_APP.provide(db=Database())


@attrs.define
@WRONG_ORDER_APP.route("/wrong-order")
class WrongOrder(wsroute.Handler):
    """Decorated in the wrong order: the route holds the class attrs had not yet rebuilt."""

    db: Database


async def test_attrs_applied_after_route_is_named_as_the_cause() -> None:
    """@attrs.define above @app.route is recognised and the message says to swap them."""
    with pytest.raises(DependencyError) as info:
        async with serve_app(WRONG_ORDER_APP):
            pass
    assert str(info.value).endswith(
        "@attrs.define was applied after @app.route registered the plain class (decorators run bottom-up); "
        "put @app.route('/wrong-order') above @attrs.define"
    )


async def test_annotations_that_are_not_dependencies_are_left_alone() -> None:
    """Annotation-only attributes nothing provides (set in on_connect) and ClassVars do not stop start-up."""
    app = wsroute.App(load_entrypoints=False)
    app.provide(db=Database())

    @app.route("/count")
    class Count(wsroute.Handler):
        count: int
        kinds: ClassVar[tuple[str, ...]] = ("a",)

        async def on_connect(self):
            self.count = len(self.kinds)
            await self.send(str(self.count))

    async with serve_app(app) as server, server.connect("/count") as ws:
        assert await ws.recv() == "1"


# -- registration is closed while serving --------------------------------------


class _LatePlugin:
    @wsroute.hookimpl
    def wsroute_configure(self, app):
        pass


@pytest.mark.parametrize(
    ("register", "fragment"),
    [
        (lambda app: app.add_route("/late", handler), "cannot add route '/late': the app is serving"),
        (lambda app: app.route("/late")(handler), "cannot add route '/late': the app is serving"),
        (lambda app: app.middleware(lambda conn, request: None), "cannot add middleware"),
        (lambda app: app.provide(db=1), "cannot add dependencies 'db': the app is serving"),
        (lambda app: app.add_converter(wsroute.Converter("slug", "[a-z]+")), "cannot add converter 'slug'"),
        (lambda app: app.plugins.register(_LatePlugin(), "late"), "cannot register plugin"),
        (lambda app: app.plugins.unregister("wsroute.hub"), "cannot unregister plugin 'wsroute.hub'"),
    ],
)
async def test_registration_after_start_is_refused(register, fragment) -> None:
    """Adding a route, middleware, dependency, converter or plugin to a running app raises ConfigurationError."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", handler)
    async with serve_app(app) as server:
        assert app.serving
        with pytest.raises(ConfigurationError) as info:
            register(app)
        assert fragment in str(info.value)
        assert "register it before app.serve()/app.run()" in str(info.value) or "register plugins before" in str(
            info.value
        )
        assert await server.rejection("/late") == 404
    assert [route.path for route in app.routes] == ["/echo"]
    assert app.plugins.is_registered("wsroute.hub")


async def test_late_route_is_a_404_not_a_500(caplog) -> None:
    """A request for a path refused while serving gets 404 and logs no error (it once got 500 with a KeyError)."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", handler)
    async with serve_app(app) as server:
        with pytest.raises(ConfigurationError):
            app.add_route("/late", handler)
        assert await server.rejection("/late") == 404
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_registration_opens_again_after_the_server_stopped() -> None:
    """Once the server stopped, routes may be added and are served by the next start."""

    async def hello(ws):
        await ws.send("hello")

    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", handler)
    async with serve_app(app):
        pass
    assert not app.serving
    app.add_route("/hello", hello)
    async with serve_app(app) as server, server.connect("/hello") as ws:
        assert await ws.recv() == "hello"


async def test_plugin_may_not_register_routes_in_startup() -> None:
    """A route added from wsroute_startup (after the handshake was built) stops start-up with the fix."""

    class Late:
        @wsroute.hookimpl
        def wsroute_startup(self, app):
            app.add_route("/late", handler)

    app = wsroute.App(load_entrypoints=False, plugins=[Late()])
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(app):
            pass
    assert "failed in wsroute_startup" in str(info.value)
    assert "return it from a plugin's wsroute_register_* hook" in str(info.value)
    assert not app.serving


async def test_one_app_serves_once_at_a_time() -> None:
    """Starting a second server for an app that is serving raises ConfigurationError."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", handler)
    async with serve_app(app):
        with pytest.raises(ConfigurationError, match="this App is already serving"):
            async with serve_app(app):
                pass
        assert app.serving


# -- every option is checked when the App is built ------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"ping_intervall": 5},
            "App(ping_intervall=5): unknown option 'ping_intervall'; did you mean 'ping_interval'? "
            "App() takes wsroute's options and those of websockets' serve() and loop.create_server()",
        ),
        ({"first_msg_timeout": 3}, "App(first_msg_timeout=3): unknown option 'first_msg_timeout'; "
         "did you mean 'first_message_timeout'?"),
        ({"ping_interval": "20"}, "App(ping_interval='20'): expected a number of seconds >= 0, or None"),
        ({"max_size": 0}, "App(max_size=0): expected a size in bytes > 0, None, or a (message, fragment) tuple"),
        ({"compression": "gzip"}, "App(compression='gzip'): expected 'deflate' or None"),
        ({"reuse_port": "yes"}, "App(reuse_port='yes'): expected True, False or None"),
        ({"forwarded_allow_ips": "nope"}, "App(forwarded_allow_ips='nope'): forwarded_allow_ips: 'nope' is not an IP"),
        ({"forwarded_allow_ips": 5}, "App(forwarded_allow_ips=5): expected a str such as '10.0.0.0/8, 127.0.0.1'"),
        ({"hub_options": {"max_queue": 0}}, "App(hub_options={'max_queue': 0}): max_queue must be a positive <int>"),
        ({"hub_options": {"policy": "keep_latest"}}, "App(hub_options={'policy': ...}): use App(slow_consumer=...)"),
        ({"hub_options": {"max_queu": 3}}, "unknown hub option 'max_queu'; did you mean 'max_queue'?"),
        ({"broker": "bogus://x"}, "App(broker='bogus://x'): broker 'bogus://x': unknown scheme 'bogus'"),
        ({"hub": object()}, "App(hub=<object object"),
        ({"hub": "memory://"}, "expected a wsroute.hub.Hub"),
        ({"first_message_timeout": True}, "App(first_message_timeout=True): expected a number of seconds > 0"),
    ],
)
def test_every_option_mistake_is_a_configuration_error(options, message) -> None:
    """A misspelt keyword or a wrong value raises ConfigurationError naming option, value and expectation."""
    with pytest.raises(ConfigurationError) as info:
        wsroute.App(load_entrypoints=False, **options)
    assert message in str(info.value)


def test_hub_and_hub_keywords_are_exclusive() -> None:
    """App(hub=Hub(...)) together with broker/slow_consumer/hub_options is refused, naming them."""
    from wsroute.hub import Hub

    with pytest.raises(ConfigurationError, match=r"App\(hub=\.\.\., slow_consumer, hub_options=\.\.\.\): pass either"):
        wsroute.App(load_entrypoints=False, hub=Hub(), slow_consumer="drop_oldest", hub_options={"max_queue": 8})


async def test_app_takes_a_hub_built_by_the_user() -> None:
    """App(hub=Hub(...)) uses that very hub: a handler's publish reaches a subscriber through it."""
    from wsroute.hub import Hub

    hub = Hub(policy="keep_latest", max_queue=8)
    app = wsroute.App(load_entrypoints=False, hub=hub)
    assert app.hub is hub

    @app.route("/sub")
    async def sub(ws):
        await app.hub.subscribe(ws, "news")
        await ws.send("ready")
        await ws.wait_closed()

    async with serve_app(app) as server, server.connect("/sub") as ws:
        assert await ws.recv() == "ready"
        await hub.publish("news", "hello")
        assert await ws.recv() == "hello"


async def test_pass_through_options_reach_websockets() -> None:
    """Valid websockets and create_server options are accepted and applied (server_header, backlog)."""
    app = wsroute.App(load_entrypoints=False, server_header="wsroute-test", backlog=16, ping_interval=None)
    app.add_route("/echo", handler)
    async with serve_app(app) as server, server.connect("/echo") as ws:
        assert ws.response.headers["Server"] == "wsroute-test"


def test_serve_options_are_checked_when_serve_is_called() -> None:
    """app.serve(**options) raises ConfigurationError at once for a misspelt or wrong option."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(ConfigurationError, match=r"app\.serve\(max_sise=10\): unknown option 'max_sise'; did you mean"):
        app.serve("127.0.0.1", 0, max_sise=10)
    with pytest.raises(ConfigurationError, match=r"app\.serve\(open_timeout=-1\): expected a number of seconds"):
        app.serve("127.0.0.1", 0, open_timeout=-1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"drain_timout": 1}, "app.run(drain_timout=1): unknown option 'drain_timout'; did you mean 'drain_timeout'?"),
        ({"loop": "trio"}, "app.run(loop='trio'): expected one of auto, asyncio, uvloop"),
        ({"drain_timeout": "5"}, "app.run(drain_timeout='5'): expected a number of seconds >= 0"),
        ({"keep_connections": 1}, "app.run(keep_connections=1): expected True or False"),
        ({"ping_timeout": "x"}, "app.run(ping_timeout='x'): expected a number of seconds >= 0, or None"),
    ],
)
def test_run_options_are_checked_before_anything_starts(options, message) -> None:
    """app.run(**options) raises ConfigurationError before starting a loop or a server."""
    app = wsroute.App(load_entrypoints=False)
    app.add_route("/echo", handler)
    with pytest.raises(ConfigurationError) as info:
        app.run("127.0.0.1", 0, **options)
    assert message in str(info.value)
    assert not app.serving


# -- decorator and middleware mistakes fail at registration --------------------


def test_bare_route_decorator_is_refused_at_once() -> None:
    """@app.route without ("/path") raises RouteError naming the function, instead of silently registering nothing."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(RouteError) as info:

        @app.route
        async def chat(ws):
            pass

    assert str(info.value).startswith('@app.route needs the path: write @app.route("/chat") above ')
    assert "test_bare_route_decorator_is_refused_at_once.<locals>.chat" in str(info.value)
    assert app.routes == []


def test_add_route_with_a_non_str_path_is_refused() -> None:
    """add_route(handler, path) in the wrong order is refused with the expected shape."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(RouteError, match=r"add_route\(path=<function handler .*\): expected the path pattern as a str"):
        app.add_route(handler, "/x")


class _CallableMiddleware:
    def __call__(self, conn, request):
        return None


class _WrongCallable:
    def __call__(self, conn):
        return None


def _three(conn, request, limit):
    return None


@pytest.mark.parametrize(
    "middleware",
    [
        lambda conn, request: None,
        lambda *args: None,
        lambda conn, request, limit=3: None,
        functools.partial(_three, limit=5),
        _CallableMiddleware(),
        wsroute.allow_origins(["https://example.com"]),
    ],
)
def test_middleware_callable_as_conn_request_is_accepted(middleware) -> None:
    """Functions, *args, defaults, partials and callable objects that take (conn, request) are accepted."""
    app = wsroute.App(load_entrypoints=False)
    assert app.middleware(middleware) is middleware
    assert app.middleware_chain == [middleware]


@pytest.mark.parametrize(
    ("middleware", "fragment"),
    [
        (lambda conn: None, "(conn) cannot be called as (conn, request): too many positional arguments"),
        (_three, "_three(conn, request, limit) cannot be called as (conn, request): missing a required argument"),
        (_WrongCallable(), "(conn) cannot be called as (conn, request)"),
        (lambda *, conn, request: None, "cannot be called as (conn, request): too many positional arguments"),
        (42, "middleware 42 is not callable"),
    ],
)
def test_middleware_with_the_wrong_signature_is_refused(middleware, fragment) -> None:
    """A middleware that cannot take (conn, request) fails at registration with its signature and the fix."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(ConfigurationError) as info:
        app.middleware(middleware)
    assert fragment in str(info.value)
    assert str(info.value).startswith("@app.middleware: middleware ")


def test_route_middleware_signature_is_checked_too() -> None:
    """Route-level middleware is checked the same way, naming the route."""
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(ConfigurationError, match=r"^route '/x': middleware .* cannot be called as \(conn, request\)"):
        app.add_route("/x", handler, middleware=[lambda request: None])


def test_add_route_takes_route_options_and_bound_values_together() -> None:
    """add_route splits route()'s options (here name, max_size) from values bound to the handler (room)."""
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws: wsroute.Connection, room: str) -> None:
        await ws.send(room)

    route = app.add_route("/lobby", handler, name="lobby", max_size=4096, room="main")
    assert (route.name, route.limits, dict(route.bound)) == ("lobby", {"max_size": 4096}, {"room": "main"})


@pytest.mark.parametrize("register", ["route", "add_route"])
def test_misspelt_route_option_is_refused_at_registration_with_a_suggestion(register: str) -> None:
    """max_sise=10 on a handler without such a parameter is a RouteError suggesting max_size."""
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws: wsroute.Connection) -> None:
        await ws.recv()

    with pytest.raises(RouteError, match=r"route '/x': unknown option max_sise=\.\.\.; did you mean max_size="):
        if register == "route":
            app.route("/x", max_sise=10)(handler)
        else:
            app.add_route("/x", handler, max_sise=10)
