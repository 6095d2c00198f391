"""The App: where routes, middleware, dependencies, plugins and the hub meet.

Registration (``@app.route``, ``@app.middleware``, ``app.provide``) only
records and validates. Serving is assembled by :mod:`wsroute.assembly`:
when the app starts, it configures the plugins, closes registration, binds
every handler's dependencies once and builds the
:class:`~wsroute.handshake.Handshake` and :class:`~wsroute.session.Session`
that websockets calls for each connection, so nothing is looked up per
request. The App's serving methods (``serve``, ``run``, ``startup``,
``shutdown``, ``stats``) are thin methods over it.
"""

from __future__ import annotations

import collections
import difflib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .assembly import Assembly
from .asyncapi import build as build_asyncapi
from .callbacks import describe
from .connection import Connection
from .endpoints import endpoint_of
from .errors import ConfigurationError, PluginError, RouteError
from .guard import Stats
from .hub import Hub
from .keepalive import Keepalive
from .lifespan import Lifespan, LifespanFactory, check_callback
from .limits import Limits, Rate
from .messages import is_message_class
from .middleware import check_middleware
from .options import (
    SERVE_PARAMETERS,
    MessageOptions,
    ServeOptions,
    build_hub,
    check_names,
    check_on_invalid_message,
    check_policy,
    trusted_proxies,
)
from .perconnection import Factory
from .plugins import Plugins
from .routenames import RouteNames, default_name
from .routers import Router
from .routes import Route, RouteGroup, check_handler, message_codec
from .routing import DEFAULT_CONVERTERS, Converter, PathRouter, Pattern
from .serving import Serving
from .subprotocols import check_subprotocols
from .traffic import TrafficTable

__all__ = ["App"]

logger = logging.getLogger("wsroute")

H = TypeVar("H")
M = TypeVar("M", bound=Callable[..., Any])

_TRAILING_SLASH = ("optional", "strict")


class App:
    """A WebSocket application.

    Args:
        message_key: the JSON field holding a message's type (first-message
            routing and ``@on`` dispatch).
        first_message_timeout: seconds a message-routed connection has to
            send its first message before it is closed with 1008.
        routes: declarative routes, ``(path, handler)`` or
            ``(path, handler, {options})``, as ``app.add_route`` takes them.
        plugins: plugin modules or objects to register.
        load_entrypoints: load plugins installed with a ``wsroute`` entry point.
        disable_plugins: plugin names to block.
        settings: per-plugin settings, ``{"wsroute-health": {...}}``.
        broker: the hub's broker: ``None`` (in memory), ``"redis://..."``, or
            a broker object.
        slow_consumer: the hub's default policy for clients that do not keep
            up: ``"disconnect"`` (the default), ``"drop_oldest"`` or ``"keep_latest"``.
        hub_options: further keyword arguments for :class:`~wsroute.hub.Hub`
            (``max_queue``, ``max_buffer``, ``close_timeout``, ``broker_options``).
        hub: a :class:`~wsroute.hub.Hub` built by you, instead of ``broker``,
            ``slow_consumer`` and ``hub_options``.
        forwarded_allow_ips: proxies whose ``X-Forwarded-For``/``Forwarded``
            headers are believed for ``ws.client_ip``.
        trailing_slash: ``"optional"`` (default): ``/chat`` also matches
            ``/chat/`` and ``/chat/`` also matches ``/chat`` (one slash, an
            exact match wins), because WebSocket clients do not follow
            redirects; ``"strict"``: exact paths only. Routes may override it.
        subprotocols: the subprotocols every route negotiates unless it
            gives its own list (``@app.route(path, subprotocols=[...])``);
            default none.
        on_invalid_message: what a typed ``@wsroute.on(Class)`` message
            that fails validation gets: ``"reply"`` (default) sends
            ``{"type": "error", "for": "move", "detail": "..."}`` and keeps
            the connection open; ``"close"`` closes with 1008 and the detail
            as reason. Routes may override it. (An invalid typed *first*
            message always closes with 1008.)
        lifespan: ``lifespan(app)`` returning an async context manager
            (``@contextlib.asynccontextmanager``), entered at start-up and
            exited at shutdown, as in Starlette; a mapping it yields becomes
            dependencies injected by name. Order: :mod:`wsroute.lifespan`.
        max_connections: open connections per process; past it handshakes
            get 503 with ``Retry-After``. Default ``None``: the descriptor
            limit minus a reserve (:func:`~wsroute.limits.default_max_connections`).
        max_connections_per_ip: per ``ws.client_ip``; past it 429. Default off.
        max_connections_per_user: per ``conn.ctx.user_id`` (set by your
            middleware); past it 429. Default off.
        handshake_rate: handshakes per client IP, ``"20/s"`` or a
            :class:`~wsroute.Rate`; past it 429 with ``Retry-After``. Default off.
        message_rate: messages per connection, ``"50/s"`` or
            ``wsroute.Rate(50, per=1.0, burst=100)``. Default off.
        message_rate_policy: past ``message_rate``, ``"close"`` (1008
            "message rate exceeded", the default) or ``"drop"`` the message.
        max_subscriptions: topics per connection; past it ``subscribe()``
            raises :class:`~wsroute.SubscriptionLimit`. Default 1000.
        redact: more header and query-parameter names whose values wsroute's
            logging set-up replaces with ``[redacted]`` (``Authorization``,
            ``Cookie``, ``token``… and every ``query_token_auth`` parameter
            are always redacted). See docs/security.md.
        **serve_options: passed on to websockets' ``serve()`` (``ping_interval``,
            ``max_size``, ``compression``, ``ssl``…) and the event loop's
            ``create_server()`` (``backlog``, ``reuse_port``…).
            ``ping_interval``/``ping_timeout`` keep websockets' meaning and
            defaults (20 s each), served by one timer for all connections
            instead of a task per connection (:mod:`wsroute.keepalive`). A
            ``process_request`` or ``process_response`` of your own runs
            before wsroute's (see :mod:`wsroute.chaining`).

    Raises:
        ConfigurationError: any option that is wrong — an unknown keyword
            (with the closest valid name), a value of the wrong kind — naming
            the option, the value and what is expected (see
            :mod:`wsroute.options`).

    Example::

        app = wsroute.App()

        @app.route("/echo")
        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        app.run("127.0.0.1", 8765)
    """

    def __init__(
        self,
        *,
        message_key: str = "type",
        first_message_timeout: float = 10.0,
        routes: Iterable[Sequence[Any]] = (),
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
        disable_plugins: Iterable[str] = (),
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        broker: Any = None,
        slow_consumer: str | None = None,
        hub_options: Mapping[str, Any] | None = None,
        hub: Hub | None = None,
        forwarded_allow_ips: str | Iterable[str] | None = None,
        trailing_slash: str = "optional",
        subprotocols: Sequence[str] = (),
        on_invalid_message: str = "reply",
        lifespan: LifespanFactory | None = None,
        max_connections: int | None = None,
        max_connections_per_ip: int | None = None,
        max_connections_per_user: int | None = None,
        handshake_rate: str | Rate | None = None,
        message_rate: str | Rate | None = None,
        message_rate_policy: str = "close",
        max_subscriptions: int = 1000,
        redact: Iterable[str] = (),
        **serve_options: Any,
    ) -> None:
        self.lifespan = Lifespan(factory=lifespan)
        self.per_connection: dict[str, Factory] = {}
        self.route_names = RouteNames()
        #: Where the routes being added come from, for error messages: a router while
        #: :meth:`include_router` adds its routes, else the app.
        self._origin = "the app"
        check_names(serve_options, SERVE_PARAMETERS | _APP_KEYWORDS, "App", values=serve_options)
        self.messages = MessageOptions(message_key, first_message_timeout, on_invalid_message)
        if trailing_slash not in _TRAILING_SLASH:
            raise ConfigurationError(
                f"App(trailing_slash={trailing_slash!r}): expected one of {', '.join(map(repr, _TRAILING_SLASH))}"
            )
        self.trailing_slash = trailing_slash
        try:
            self.subprotocols = check_subprotocols(subprotocols, "App()")
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.limits = _app_limits(
            max_connections=max_connections,
            max_connections_per_ip=max_connections_per_ip,
            max_connections_per_user=max_connections_per_user,
            handshake_rate=handshake_rate,
            message_rate=message_rate,
            message_rate_policy=message_rate_policy,
            max_subscriptions=max_subscriptions,
        )
        self.redact = _names(redact)
        self.message_key = message_key
        self.first_message_timeout = float(first_message_timeout)
        self._assembly = Assembly(self, ServeOptions(serve_options, where="App"))
        self.serve_options = dict(serve_options)
        self.settings: dict[str, Mapping[str, Any]] = dict(settings or {})
        self.forwarded_allow_ips = trusted_proxies(forwarded_allow_ips)
        self.router: PathRouter[RouteGroup] = PathRouter()
        self.converters: dict[str, Converter] = dict(DEFAULT_CONVERTERS)
        self.middleware_chain: list[Callable[..., Any]] = []
        self.provided: dict[str, Any] = {}
        self.shutting_down = False
        self.hub = build_hub(hub, broker, slow_consumer, hub_options)
        self.hub.message_key = message_key  # the type field its *_json methods add to message instances
        self.plugins = Plugins(load_entrypoints=load_entrypoints, disable=disable_plugins)
        for plugin in plugins:
            self.plugins.register(plugin, source="App(plugins=...)")
        for spec in routes:
            self._add_route_spec(spec, "App(routes=...)")
        self._plugins_configured = False
        self._settings_read: set[str] = set()
        self.traffic: TrafficTable | None = None
        #: First messages that chose no route, by :attr:`Rejection.kind` (and
        #: ``"timeout"``): a bounded set of names, read by metrics plugins.
        self.first_message_rejections: collections.Counter[str] = collections.Counter()
        #: ``(conn, message_type) -> None``, called when a Handler class dispatches a
        #: message by its type; set by the tracing plugin (``wsroute.otel`` with
        #: ``messages``), None otherwise (no cost).
        self.message_tracer: Callable[[Connection, str], None] | None = None
        #: ``class -> subclass`` functions a plugin adds in ``wsroute_configure``,
        #: applied in order to the connection class at start-up (``wsroute.otel``).
        self.connection_wrappers: list[Callable[[type[Connection]], type[Connection]]] = []
        #: The keepalive pings of every open connection, from one timer
        #: (:mod:`wsroute.keepalive`); ``len(app.keepalive)`` counts them.
        self.keepalive = Keepalive()

    # -- registration ------------------------------------------------------

    def route(
        self,
        path: str,
        *,
        message: str | type | None = None,
        middleware: Iterable[Callable[..., Any]] = (),
        slow_consumer: str | None = None,
        trailing_slash: str | None = None,
        subprotocols: Sequence[str] | None = None,
        on_invalid_message: str | None = None,
        name: str | None = None,
        max_connections_per_ip: int | None = None,
        max_connections_per_user: int | None = None,
        message_rate: str | Rate | None = None,
        message_rate_policy: str | None = None,
        max_subscriptions: int | None = None,
        max_size: int | None = None,
        **bound: Any,
    ) -> Callable[[H], H]:
        """Register the decorated handler for ``path``; returns it unchanged.

        Args:
            path: a pattern such as ``/items/{item_id:int}``.
            message: route by the first message's type instead of by path
                alone: a wire name (``"join"``), or a ``@wsroute.message``
                class (``Join``), which also validates the first message
                into an instance (``self.first_message``/``ws.first_message``).
            middleware: route-level middleware, run after the app's.
            slow_consumer: this route's hub policy (default: the app's).
            trailing_slash: ``"optional"`` or ``"strict"`` (default: the app's).
            subprotocols: the subprotocols this route negotiates, in order of
                preference (default: the app's; ``[]`` for none).
            on_invalid_message: ``"reply"`` or ``"close"`` for invalid typed
                ``@on`` messages (default: the app's).
            name: the name :meth:`url_path_for` finds the route by (default:
                the handler's qualified name); given names are unique.
            max_connections_per_ip: this route's cap per client IP (default: the app's).
            max_connections_per_user: this route's cap per ``ctx.user_id`` (default: the app's).
            message_rate: this route's rate per connection (default: the app's).
            message_rate_policy: ``"close"`` or ``"drop"`` (default: the app's).
            max_subscriptions: topics per connection on this route (default: the app's).
            max_size: the largest message this route accepts, in bytes;
                past it the connection is closed with 1009 (default: the
                server's ``max_size``, 1 MiB unless set).
            **bound: values for handler parameters, bound with ``functools.partial``.

        Raises:
            RouteError: ``path`` is not a str — typically ``@app.route``
                written without ``("/path")``, which would otherwise register
                nothing and replace the function with the decorator.
        """
        if not isinstance(path, str):
            raise RouteError(_bare_decorator(path))

        def register(handler: H) -> H:
            self.add_route(
                path,
                handler,
                message=message,
                middleware=middleware,
                slow_consumer=slow_consumer,
                trailing_slash=trailing_slash,
                subprotocols=subprotocols,
                on_invalid_message=on_invalid_message,
                name=name,
                max_connections_per_ip=max_connections_per_ip,
                max_connections_per_user=max_connections_per_user,
                message_rate=message_rate,
                message_rate_policy=message_rate_policy,
                max_subscriptions=max_subscriptions,
                max_size=max_size,
                **bound,
            )
            return handler

        return register

    def add_route(self, path: str, handler: Any, **options: Any) -> Route:
        """Register ``handler`` for ``path`` (what ``@app.route`` calls); returns the :class:`Route`.

        ``options`` are :meth:`route`'s keywords (``message``, ``name``,
        ``max_size``…), documented and typed there, and its ``**bound``
        values for handler parameters. One explicit list of route options
        keeps the two entry points from drifting apart. A misspelt option the
        handler has no parameter for is refused at registration with a
        suggestion (``RouteError``) when it is close to an option's name;
        otherwise it is a bound value, refused when the app starts
        (``DependencyError`` naming it).

        Raises:
            RouteError: malformed pattern, unknown converter, a conflict,
                message classes that cannot be told apart on the wire (two
                with one name, a field named like ``message_key``), a
                ``name`` another route already has, or a misspelt option.
            HandlerError: ``handler`` is not ``async def`` nor a Handler
                subclass, or two ``@on`` methods receive one type.
            ConfigurationError: the app is already serving (registration is closed).
        """
        bound = {key: value for key, value in options.items() if key not in _ROUTE_OPTIONS}
        _check_misspelt_options(path, handler, bound)
        option = {key: value for key, value in options.items() if key in _ROUTE_OPTIONS}.get
        message = option("message")
        on_invalid_message = option("on_invalid_message")
        slow_consumer = option("slow_consumer")
        subprotocols = option("subprotocols")
        name = option("name")
        self._assembly.check_open(f"route {path!r}")
        if not isinstance(path, str):
            raise RouteError(f"add_route(path={path!r}): expected the path pattern as a str, e.g. '/items/{{id:int}}'")
        where = f"route {path!r}"
        pattern = Pattern.parse(path, self.converters)
        check_handler(path, handler)
        _check_message(where, message)
        if on_invalid_message is None:
            on_invalid_message = self.messages.on_invalid_message
        else:
            check_on_invalid_message(on_invalid_message, where, RouteError)
        codec = message_codec(path, handler, message, self.message_key)
        if slow_consumer is not None:
            check_policy(slow_consumer, f"{where}: slow_consumer={slow_consumer!r}", RouteError)
        trailing_slash = _trailing_slash(where, option("trailing_slash"), self.trailing_slash)
        protocols = self.subprotocols if subprotocols is None else _subprotocols(where, subprotocols)
        limits = self._route_limits(where, **{key: option(key) for key in _ROUTE_LIMITS})
        middleware = tuple(option("middleware") or ())
        for item in middleware:
            check_middleware(item, where)
        self.route_names.check(name, path, self._origin)
        route = Route(
            pattern,
            handler,
            message,
            middleware,
            dict(bound),
            slow_consumer,
            trailing_slash=trailing_slash,
            subprotocols=protocols,
            on_invalid_message=on_invalid_message,
            codec=codec,
            name=name if name is not None else default_name(handler),
            origin=self._origin,
            limits=limits,
        )
        self._insert(route)
        return route

    def _route_limits(self, where: str, **overrides: Any) -> dict[str, Any]:
        """The limits a route sets itself (those not None), checked against the app's; RouteError naming it."""
        given = {key: value for key, value in overrides.items() if value is not None}
        try:
            checked = self.limits.for_route(given)
        except ConfigurationError as exc:
            raise RouteError(f"{where}: {exc}") from None
        return {name: getattr(checked, name) for name in given}

    def _insert(self, route: Route) -> None:
        """Add ``route`` to its path's group (a new group for a new path); RouteError naming both origins."""
        pattern = route.pattern
        try:
            group = self.router.get(pattern.source)
            if group is None:
                group = RouteGroup(pattern)
                group.add(route)
                self.router.add(pattern, group, strict_slash=route.trailing_slash == "strict")
            else:
                group.add(route)
        except RouteError as exc:
            raise RouteError(f"{exc} ({_origins(route, self.routes)})") from None
        self.route_names.add(route)
        self._assembly.stale()

    def asyncapi(
        self,
        servers: Sequence[str] | Mapping[str, str] | None = None,
        *,
        title: str = "wsroute application",
        version: str = "1.0.0",
        description: str | None = None,
    ) -> dict[str, Any]:
        """The app's AsyncAPI 3.0.0 document, as a JSON-compatible dict.

        One channel per path (parameters with their converters, the
        handler's docstring), the messages clients send (first message, ``@on``
        types, typed or not) as ``receive`` operations, a Handler's ``sends``
        as ``send`` operations, ``bearer_auth``/``query_token_auth`` as
        security schemes. Routes added by plugins appear once the app is
        configured (``await app.configure()``; ``wsroute asyncapi`` does it).

        Args:
            servers: URLs such as ``["ws://127.0.0.1:8765"]``, or ``{name: url}``.
            title, version, description: the document's ``info``.

        Raises:
            ConfigurationError: a server URL that is not ``ws://`` or ``wss://``.
        """
        endpoints = [endpoint_of(route, self.middleware_chain) for route in self.routes]
        try:
            return build_asyncapi(
                endpoints, key=self.message_key, title=title, version=version, description=description, servers=servers
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    def include_router(self, router: Router) -> None:
        """Register every route of ``router`` (and of the routers it includes).

        Paths get the routers' prefixes; each route's middleware is the outer
        routers', then the inner ones', then its own — all after the app's.
        Each route is checked exactly as ``@app.route`` checks it; a conflict
        names the router (or the app) each side came from.

        Raises:
            RouteError: a conflict or a bad route, naming both origins.
            ConfigurationError: ``router`` is not a :class:`wsroute.Router`,
                or the app is already serving.
        """
        if not isinstance(router, Router):
            raise ConfigurationError(f"app.include_router({router!r}): expected a wsroute.Router")
        self._assembly.check_open(f"router {router!r}")
        for included in router.included_routes():
            self._origin = included.origin
            try:
                self.add_route(included.path, included.handler, middleware=included.middleware, **included.options)
            finally:
                self._origin = "the app"

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name``, with ``params`` filled in.

        Converters run in reverse (``{n:int}`` takes ``3``, ``{id:uuid}`` a
        ``UUID``) and each segment is percent-encoded, so the result is what
        a client sends and routes back to the same route and values::

            @app.route("/rooms/{room}", name="room")
            async def room(ws, room): ...

            app.url_path_for("room", room="tea & cake")   # "/rooms/tea%20&%20cake"

        Raises:
            URLPathError: no route has that name (the message lists the
                nearest), the default name is shared by several routes, a
                parameter is missing or unknown, or a value the converter
                would not accept.
        """
        return self.route_names.path_for(name, params)

    def middleware(self, func: M) -> M:
        """Register app-level middleware (``(conn, request) -> Response | None``).

        Raises:
            ConfigurationError: ``func`` cannot be called as ``(conn, request)``,
                or the app is already serving.
        """
        self._add_middleware(func, "@app.middleware")
        return func

    def _add_middleware(self, func: Any, source: str) -> None:
        self._assembly.check_open(f"middleware {describe(func)}")
        check_middleware(func, source)
        self.middleware_chain.append(func)
        self._assembly.stale()

    def on_startup(self, func: M) -> M:
        """Run ``func(app)`` (sync or async) at start-up, after plugins' ``wsroute_startup``.

        Raises:
            ConfigurationError: ``func`` cannot be called with the app, or the
                app is already serving.
        """
        self._assembly.check_open(f"on_startup {describe(func)}")
        check_callback(func, "@app.on_startup")
        self.lifespan.startup.append(func)
        return func

    def on_shutdown(self, func: M) -> M:
        """Run ``func(app)`` (sync or async) at shutdown, last registered first.

        Raises:
            ConfigurationError: as :meth:`on_startup`.
        """
        self._assembly.check_open(f"on_shutdown {describe(func)}")
        check_callback(func, "@app.on_shutdown")
        self.lifespan.shutdown.append(func)
        return func

    def provide_per_connection(self, **factories: Callable[..., Any]) -> None:
        """Declare dependencies computed once per connection, after the middleware.

        Each factory (sync, async, generator or async generator) receives
        the connection (``conn``/``ws``) and other dependencies by parameter
        name; see :mod:`wsroute.perconnection` for the rules and why this is
        a method of its own.

        Raises:
            DependencyError: a factory that is not callable or takes
                positional-only parameters (the graph is checked at start-up).
            ConfigurationError: the app is already serving.
        """
        self._assembly.check_open(f"per-connection dependencies {', '.join(map(repr, factories))}")
        for key, func in factories.items():
            self.per_connection[key] = Factory.of(key, func)
        self._assembly.stale()

    def provide(self, **values: Any) -> None:
        """Make values injectable into handlers by parameter name.

        Raises:
            ConfigurationError: the app is already serving.
        """
        self._assembly.check_open(f"dependencies {', '.join(map(repr, values))}")
        self.provided.update(values)
        self._assembly.stale()

    def add_converter(self, converter: Converter) -> None:
        """Make ``{name:converter.name}`` available to patterns registered after.

        Raises:
            ConfigurationError: the app is already serving.
        """
        self._assembly.check_open(f"converter {getattr(converter, 'name', converter)!r}")
        if not isinstance(converter, Converter):
            raise TypeError(f"add_converter() takes a wsroute.Converter (got {converter!r})")
        self.converters[converter.name] = converter

    @property
    def routes(self) -> list[Route]:
        """Every registered route, in registration order."""
        return [route for _, group in self.router for route in group.routes()]

    def plugin_settings(self, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """The settings of plugin ``name``: ``defaults`` updated by ``App(settings=...)``.

        Raises:
            PluginError: a key that the plugin does not know (a typo).
        """
        self._settings_read.add(name)
        given = dict(self.settings.get(name, {}))
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise PluginError(
                f"settings for plugin {name!r}: unknown key {unknown[0]!r} (known: {', '.join(sorted(defaults))})"
            )
        return {**defaults, **given}

    # -- serving (assembled by wsroute.assembly) -----------------------------

    def serve(self, host: str | None = None, port: int | None = None, **options: Any) -> Serving:
        """Start serving; use as ``async with app.serve(host, port) as server``.

        ``server`` is websockets' ``Server``. Options are those of websockets'
        ``serve()`` and override the ones given to ``App()``.

        Raises:
            ConfigurationError: an unknown option or a wrong value, at once.
        """
        return self._assembly.serve(host, port, options)

    def run(self, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
        """Serve until SIGINT or SIGTERM, then close connections cleanly (blocking).

        Options are :func:`wsroute.server.run`'s (``drain_timeout``,
        ``keep_connections``, ``uds``, ``loop``, ``debug``) and websockets'
        ``serve()``'s.

        Raises:
            ConfigurationError: an unknown option or a wrong value, before anything starts.
            ServerError: the server could not listen.
        """
        self._assembly.run(host, port, options)

    @property
    def serving(self) -> bool:
        """Whether the app is started: from :meth:`startup` until :meth:`shutdown` ends.

        While it is, registration is closed: the handshake was built from the
        routes, middleware, dependencies and plugins as they were at start-up.
        """
        return self._assembly.serving

    async def startup(self) -> None:
        """Configure plugins, start the hub and the app's lifespan, bind dependencies; before listening.

        Order: the hub starts, plugins' ``wsroute_startup`` run, then the
        ``on_startup`` functions and the lifespan context (whose values
        become dependencies), then every handler is bound. A failure at any
        step runs the shutdown of the steps already done, in reverse, and
        raises. Registration closes here and opens again when
        :meth:`shutdown` ends.

        Raises:
            ConfigurationError: the app is already serving (one app, one server).
        """
        await self._assembly.start()

    async def shutdown(self) -> None:
        """Exit the lifespan, tell plugins, stop the hub; after the server closed. Registration opens again.

        The reverse of :meth:`startup`: the lifespan context exits and the
        ``on_shutdown`` functions run, then plugins' ``wsroute_shutdown``,
        then the hub stops. Each step runs even if one before it failed.
        """
        await self._assembly.stop()

    def count_traffic(self, duration_buckets: Sequence[float] | None = None) -> TrafficTable:
        """Count handshakes, closes, durations, messages and bytes per route from now on.

        Call it from a plugin's ``wsroute_configure`` (before the server
        listens): the app then serves with
        :class:`~wsroute.traffic.CountingConnection`, which adds one attribute
        addition per data frame and a few dict updates per connection (see
        :mod:`wsroute.traffic`). An app that never calls it counts nothing and
        pays nothing. Every caller gets the same
        :class:`~wsroute.traffic.TrafficTable` (``app.traffic``).

        Args:
            duration_buckets: increasing upper bounds, in seconds, of the
                connection-duration buckets; None (the default) keeps the
                table's (:data:`~wsroute.traffic.DEFAULT_DURATION_BUCKETS` for
                a new one).

        Returns:
            The app's table; ``snapshot()`` reads it.

        Raises:
            ConfigurationError: ``duration_buckets`` is not increasing
                positive seconds, or differs from the buckets an earlier
                caller chose (two plugins cannot share one histogram with
                different bounds).
        """
        if self.traffic is None:
            try:
                self.traffic = TrafficTable() if duration_buckets is None else TrafficTable(duration_buckets)
            except ValueError as exc:
                raise ConfigurationError(f"count_traffic(duration_buckets=...): {exc}") from None
            self.hub.count_traffic()
            self._assembly.stale()  # the session is built again, with the table
        elif duration_buckets is not None and tuple(map(float, duration_buckets)) != self.traffic.duration_buckets:
            raise ConfigurationError(
                f"count_traffic(duration_buckets={tuple(duration_buckets)!r}): the app already counts with "
                f"buckets {self.traffic.duration_buckets!r}; pass the same bounds, or None to share them"
            )
        return self.traffic

    def websockets_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What to pass to websockets' ``serve()`` besides host and port, ``handler`` included.

        ``options`` (checked as ``app.serve()``'s are) override the app's own
        ``App(**serve_options)``. For serving the app with websockets'
        ``serve()`` directly, which skips the app's start-up: prefer
        ``app.serve()``.

        Raises:
            ConfigurationError: an unknown option or a wrong value.
        """
        merged = self._assembly.serve_options.merged(options or {}, "app.websockets_options")
        return self._assembly.websockets_options(merged.options)

    def set_limits(self, **options: Any) -> None:
        """Change app-wide limits before the app starts (``wsroute run --max-connections`` calls this).

        Takes :class:`App`'s limit keywords; routes keep the limits they set themselves.

        Raises:
            ConfigurationError: an unknown name or a wrong value, or the app is serving.
        """
        self._assembly.check_open(f"limits {', '.join(map(repr, options))}")
        unknown = sorted(set(options) - set(attrs.fields_dict(Limits)) - {"max_size"})
        if unknown or "max_size" in options:
            name = (unknown or ["max_size"])[0]
            raise ConfigurationError(f"app.set_limits({name}=...): not an app-wide limit")
        current = {name: getattr(self.limits, name) for name in attrs.fields_dict(Limits) if name != "max_size"}
        self.limits = _app_limits(**{**current, **options})
        self._assembly.stale()

    def stats(self) -> Stats:
        """What the limits did since the app started: open connections and refusals.

        Returns:
            A :class:`~wsroute.guard.Stats` snapshot: ``open_connections``,
            ``max_connections`` and ``refusals``, a mapping
            ``{(route pattern, reason): count}`` (reasons: :data:`wsroute.guard.REASONS`).
            Before the app first starts, everything is zero.
        """
        return self._assembly.stats()

    async def configure(self) -> None:
        """Configure plugins and add what they register (routes, middleware, dependencies).

        Runs once; :meth:`startup` calls it. Call it yourself to inspect the
        complete app without serving (``wsroute routes`` does).
        """
        if self._plugins_configured:
            return
        self._plugins_configured = True
        self.plugins.check()
        await self.plugins.call_for_app("wsroute_configure", self)
        self._check_settings_were_read()
        for specs in await self.plugins.call_for_app("wsroute_register_routes", self):
            for spec in specs:
                self._add_route_spec(spec, "wsroute_register_routes")
        for middleware in await self.plugins.call_for_app("wsroute_register_middleware", self):
            for item in middleware:
                self._add_middleware(item, "wsroute_register_middleware")
        for values in await self.plugins.call_for_app("wsroute_register_dependencies", self):
            self.provide(**values)

    def _check_settings_were_read(self) -> None:
        """Settings under a name no plugin read are a typo or a missing plugin.

        Settings for a plugin that is switched off — blocked, or installed but
        not autoloaded — are ignored, whichever switch did it.
        """
        for name in sorted(set(self.settings) - self._settings_read):
            if self.plugins.is_switched_off(name):
                logger.info("settings for plugin %r ignored: the plugin is switched off", name)
                continue
            loaded = ", ".join(info.name for info in self.plugins.list()) or "none"
            raise PluginError(
                f"App(settings={{{name!r}: ...}}): no loaded plugin reads settings named {name!r} "
                f"(loaded plugins: {loaded}); check the name or install the plugin"
            )

    def _add_route_spec(self, spec: Sequence[Any], source: str) -> None:
        if not isinstance(spec, Sequence) or len(spec) not in (2, 3):
            raise ConfigurationError(f"{source}: {spec!r} is not (path, handler) or (path, handler, {{options}})")
        options = dict(spec[2]) if len(spec) == 3 else {}
        self.add_route(spec[0], spec[1], **options)

    def __repr__(self) -> str:
        return f"<wsroute.App routes={len(self.routes)}>"


def _check_misspelt_options(path: str, handler: Any, bound: Mapping[str, Any]) -> None:
    """RouteError for a bound value the handler cannot take whose name is close to a route option's."""
    try:
        parameters = inspect.signature(handler).parameters
    except (TypeError, ValueError):  # no signature to read: leave it to the binding at start-up
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for key in bound:
        if key in parameters or takes_any:
            continue
        close = difflib.get_close_matches(key, sorted(_ROUTE_OPTIONS), n=1, cutoff=0.75)
        if close:
            raise RouteError(
                f"route {path!r}: unknown option {key}=...; did you mean {close[0]}=? "
                f"(other keywords are bound to the handler's parameters, and it has no {key!r})"
            )


#: The limits a route may set itself: the keywords of :meth:`App.route` that go to ``Limits.for_route``.
_ROUTE_LIMITS = (
    "max_connections_per_ip", "max_connections_per_user", "message_rate", "message_rate_policy",
    "max_subscriptions", "max_size",
)

#: :meth:`App.route`'s keyword options, read from its signature (the one place they are listed):
#: what :meth:`App.add_route` tells apart from values bound to the handler.
_ROUTE_OPTIONS = frozenset(
    parameter.name
    for parameter in inspect.signature(App.route).parameters.values()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


def _origins(route: Route, routes: Iterable[Route]) -> str:
    """``route '/chat/{room}' from Router(prefix='/chat'); route '/chat/{name}' from the app``."""
    others = [r for r in routes if r.path == route.path or r.pattern.overlaps(route.pattern)]
    described = [f"route {r.label!r} from {r.origin}" for r in [route, *others]]
    return "; ".join(described)
def _check_message(where: str, message: Any) -> None:
    """``message=``: None, a non-empty wire name, or a ``@wsroute.message`` class."""
    if message is not None and not (
        (isinstance(message, str) and message) or (isinstance(message, type) and is_message_class(message))
    ):
        raise RouteError(f"{where}: message= must be a non-empty str or a @wsroute.message class (got {message!r})")


def _trailing_slash(where: str, value: str | None, default: str) -> str:
    """A route's ``trailing_slash=``, or the app's ``default`` for None."""
    if value is None:
        return default
    if value not in _TRAILING_SLASH:
        raise RouteError(
            f"{where}: trailing_slash={value!r}; expected one of {', '.join(map(repr, _TRAILING_SLASH))} "
            "(or None for the app's)"
        )
    return value


def _subprotocols(where: str, value: Sequence[str]) -> tuple[str, ...]:
    """A route's own ``subprotocols=`` list, checked; RouteError naming the route."""
    try:
        return check_subprotocols(value, where)
    except ValueError as exc:
        raise RouteError(str(exc)) from None


def _app_limits(**options: Any) -> Limits:
    """``App()``'s limit options as a :class:`Limits`, or ConfigurationError naming ``App(...)``."""
    try:
        return Limits(**options)
    except ConfigurationError as exc:
        head, _, tail = str(exc).partition(": ")
        raise ConfigurationError(f"App({head}): {tail}") from None


def _names(value: Any) -> tuple[str, ...]:
    """``App(redact=...)``: a list of names, or ConfigurationError."""
    if isinstance(value, str) or not all(isinstance(name, str) and name for name in value):
        raise ConfigurationError(
            f"App(redact={value!r}): expected a list of header or query-parameter names, e.g. ['X-Api-Key']"
        )
    return tuple(value)


def _bare_decorator(target: Any) -> str:
    name = getattr(target, "__name__", None) or repr(target)
    return (
        f"@app.route needs the path: write @app.route(\"/{name}\") above {describe(target)}, "
        "not a bare @app.route (which would register nothing)"
    )


#: App's own keywords, offered as suggestions for a misspelt one.
_APP_KEYWORDS = frozenset(
    name for name, p in inspect.signature(App.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY
)


