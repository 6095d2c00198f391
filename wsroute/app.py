"""The App: where routes, middleware, dependencies, plugins and the hub meet.

Registration (``@app.route``, ``@app.middleware``, ``app.provide``) only
records and validates. When the app starts serving, :meth:`App.startup`
configures the plugins, binds every handler's dependencies once and builds
the :class:`~wsroute.handshake.Handshake` and :class:`~wsroute.session.Session`
that websockets calls for each connection, so nothing is looked up per
request.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .asyncapi import build as build_asyncapi
from .callbacks import describe
from .chaining import chain_process_request, chain_process_response
from .compression import serve_options
from .connection import Connection
from .di import bind
from .endpoints import endpoint_of
from .errors import ConfigurationError, PluginError, RouteError
from .guard import Guard, Stats
from .handshake import Handshake
from .hub import Hub
from .lifespan import Lifespan, LifespanFactory, check_callback
from .limits import Limits, Rate, default_max_connections
from .logs import redact_also
from .message_rate import rate_limited
from .messages import is_message_class
from .middleware import Chain, check_middleware
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
from .perconnection import Factory, check_graph, plan_for
from .plugins import HookFailed, Plugins
from .routenames import RouteNames, default_name
from .routers import Router
from .routes import Route, RouteGroup, check_handler, message_codec
from .routing import DEFAULT_CONVERTERS, Converter, PathRouter, Pattern
from .serving import Serving
from .session import Session
from .subprotocols import check_subprotocols, select_subprotocol
from .traffic import CountingConnection, TrafficTable

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
            ``create_server()`` (``backlog``, ``reuse_port``…). A
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
        self._serving = False
        self.lifespan = Lifespan(factory=lifespan)
        self._lifespan_values: dict[str, Any] = {}
        self._running: contextlib.AsyncExitStack | None = None
        self.per_connection: dict[str, Factory] = {}
        self.route_names = RouteNames()
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
        self._serve = ServeOptions(serve_options, where="App")
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
        self._handshake: Handshake | None = None
        self._session: Session | None = None
        self._guard: Guard | None = None
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

    def add_route(
        self,
        path: str,
        handler: Any,
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
    ) -> Route:
        """Register ``handler`` for ``path`` (what ``@app.route`` calls).

        Raises:
            RouteError: malformed pattern, unknown converter, a conflict,
                message classes that cannot be told apart on the wire (two
                with one name, a field named like ``message_key``), or a
                ``name`` another route already has.
            HandlerError: ``handler`` is not ``async def`` nor a Handler
                subclass, or two ``@on`` methods receive one type.
            ConfigurationError: the app is already serving (registration is closed).
        """
        return self._add_route(
            path,
            handler,
            message=message,
            middleware=middleware,
            slow_consumer=slow_consumer,
            trailing_slash=trailing_slash,
            subprotocols=subprotocols,
            on_invalid_message=on_invalid_message,
            name=name,
            origin="the app",
            bound=bound,
            limit_options={
                "max_connections_per_ip": max_connections_per_ip,
                "max_connections_per_user": max_connections_per_user,
                "message_rate": message_rate,
                "message_rate_policy": message_rate_policy,
                "max_subscriptions": max_subscriptions,
                "max_size": max_size,
            },
        )

    def _add_route(
        self,
        path: str,
        handler: Any,
        *,
        message: str | type | None,
        middleware: Iterable[Callable[..., Any]],
        slow_consumer: str | None,
        trailing_slash: str | None,
        subprotocols: Sequence[str] | None,
        on_invalid_message: str | None,
        name: str | None,
        origin: str,
        bound: Mapping[str, Any],
        limit_options: Mapping[str, Any] | None = None,
    ) -> Route:
        self._check_open(f"route {path!r}")
        if not isinstance(path, str):
            raise RouteError(f"add_route(path={path!r}): expected the path pattern as a str, e.g. '/items/{{id:int}}'")
        pattern = Pattern.parse(path, self.converters)
        check_handler(path, handler)
        if message is not None and not (
            (isinstance(message, str) and message) or (isinstance(message, type) and is_message_class(message))
        ):
            raise RouteError(
                f"route {path!r}: message= must be a non-empty str or a @wsroute.message class (got {message!r})"
            )
        if on_invalid_message is None:
            on_invalid_message = self.messages.on_invalid_message
        else:
            check_on_invalid_message(on_invalid_message, f"route {path!r}", RouteError)
        codec = message_codec(path, handler, message, self.message_key)
        if slow_consumer is not None:
            check_policy(slow_consumer, f"route {path!r}: slow_consumer={slow_consumer!r}", RouteError)
        if trailing_slash is None:
            trailing_slash = self.trailing_slash
        elif trailing_slash not in _TRAILING_SLASH:
            raise RouteError(
                f"route {path!r}: trailing_slash={trailing_slash!r}; expected one of "
                f"{', '.join(map(repr, _TRAILING_SLASH))} (or None for the app's)"
            )
        protocols = self.subprotocols
        if subprotocols is not None:
            try:
                protocols = check_subprotocols(subprotocols, f"route {path!r}")
            except ValueError as exc:
                raise RouteError(str(exc)) from None
        overrides = dict(limit_options or {})
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            checked = self.limits.for_route(given)
        except ConfigurationError as exc:
            raise RouteError(f"route {path!r}: {exc}") from None
        limits = {name: getattr(checked, name) for name in given}
        middleware = tuple(middleware)
        for item in middleware:
            check_middleware(item, f"route {path!r}")
        self.route_names.check(name, path, origin)
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
            origin=origin,
            limits=limits,
        )
        try:
            group = self.router.get(pattern.source)
            if group is None:
                group = RouteGroup(pattern)
                group.add(route)
                self.router.add(pattern, group, strict_slash=trailing_slash == "strict")
            else:
                group.add(route)
        except RouteError as exc:
            raise RouteError(f"{exc} ({_origins(route, self.routes)})") from None
        self.route_names.add(route)
        self._handshake = None
        return route

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
        self._check_open(f"router {router!r}")
        for included in router.included_routes():
            options = dict(included.options)
            self._add_route(
                included.path,
                included.handler,
                message=options.pop("message", None),
                middleware=included.middleware,
                slow_consumer=options.pop("slow_consumer", None),
                trailing_slash=options.pop("trailing_slash", None),
                subprotocols=options.pop("subprotocols", None),
                on_invalid_message=options.pop("on_invalid_message", None),
                name=options.pop("name", None),
                origin=included.origin,
                bound=options,
            )

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
        self._check_open(f"middleware {describe(func)}")
        check_middleware(func, source)
        self.middleware_chain.append(func)
        self._handshake = None

    def on_startup(self, func: M) -> M:
        """Run ``func(app)`` (sync or async) at start-up, after plugins' ``wsroute_startup``.

        Raises:
            ConfigurationError: ``func`` cannot be called with the app, or the
                app is already serving.
        """
        self._check_open(f"on_startup {describe(func)}")
        check_callback(func, "@app.on_startup")
        self.lifespan.startup.append(func)
        return func

    def on_shutdown(self, func: M) -> M:
        """Run ``func(app)`` (sync or async) at shutdown, last registered first.

        Raises:
            ConfigurationError: as :meth:`on_startup`.
        """
        self._check_open(f"on_shutdown {describe(func)}")
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
        self._check_open(f"per-connection dependencies {', '.join(map(repr, factories))}")
        for key, func in factories.items():
            self.per_connection[key] = Factory.of(key, func)
        self._handshake = None

    def provide(self, **values: Any) -> None:
        """Make values injectable into handlers by parameter name.

        Raises:
            ConfigurationError: the app is already serving.
        """
        self._check_open(f"dependencies {', '.join(map(repr, values))}")
        self.provided.update(values)
        self._handshake = None

    def add_converter(self, converter: Converter) -> None:
        """Make ``{name:converter.name}`` available to patterns registered after.

        Raises:
            ConfigurationError: the app is already serving.
        """
        self._check_open(f"converter {getattr(converter, 'name', converter)!r}")
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

    # -- serving -----------------------------------------------------------

    def serve(self, host: str | None = None, port: int | None = None, **options: Any) -> Serving:
        """Start serving; use as ``async with app.serve(host, port) as server``.

        ``server`` is websockets' ``Server``. Options are those of websockets'
        ``serve()`` and override the ones given to ``App()``.

        Raises:
            ConfigurationError: an unknown option or a wrong value, at once.
        """
        merged = self._serve.merged(options, "app.serve")
        return Serving(self, host, port, dict(merged.options))

    def run(self, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
        """Serve until SIGINT or SIGTERM, then close connections cleanly (blocking).

        Options are :func:`wsroute.server.run`'s (``drain_timeout``,
        ``keep_connections``, ``uds``, ``loop``, ``debug``) and websockets'
        ``serve()``'s.

        Raises:
            ConfigurationError: an unknown option or a wrong value, before anything starts.
            ServerError: the server could not listen.
        """
        from . import server

        run_keywords = _run_keywords()
        check_names(options, SERVE_PARAMETERS | run_keywords, "app.run", values=options)
        _check_run_values(options, server.LOOPS)
        self._serve.merged({k: v for k, v in options.items() if k not in run_keywords}, "app.run")
        server.run(self, host=host, port=port, **options)

    @property
    def serving(self) -> bool:
        """Whether the app is started: from :meth:`startup` until :meth:`shutdown` ends.

        While it is, registration is closed: the handshake was built from the
        routes, middleware, dependencies and plugins as they were at start-up.
        """
        return self._serving

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
        if self._serving:
            raise ConfigurationError(
                "app.serve(): this App is already serving; stop the running server first, or build a second App"
            )
        await self.configure()
        self.plugins.check()
        redact_also(self.redact, self._secret_query_params())
        self._close_registration()
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self.hub.start()  # never leave the broker connected behind a failed start
                stack.push_async_callback(self.hub.stop)
                await self._call_lifecycle("wsroute_startup")
                stack.push_async_callback(self._call_lifecycle, "wsroute_shutdown")
                self._lifespan_values = await stack.enter_async_context(self.lifespan.run(self))
                self._prepare()
                self._running = stack.pop_all()
        except BaseException:
            self._lifespan_values = {}
            self._open_registration()
            raise

    async def shutdown(self) -> None:
        """Exit the lifespan, tell plugins, stop the hub; after the server closed. Registration opens again.

        The reverse of :meth:`startup`: the lifespan context exits and the
        ``on_shutdown`` functions run, then plugins' ``wsroute_shutdown``,
        then the hub stops. Each step runs even if one before it failed.
        """
        running, self._running = self._running, None
        try:
            if running is not None:
                await running.aclose()
        finally:
            self._lifespan_values = {}
            self._open_registration()

    def _close_registration(self) -> None:
        self._serving = True
        self.plugins.close_registration()

    def _open_registration(self) -> None:
        self._serving = False
        self.plugins.open_registration()

    def _check_open(self, what: str) -> None:
        """Refuse a registration while serving (Starlette's ``add_middleware`` rule).

        The live handshake was built at start-up; something added now would be
        matched by nothing, or half-matched and fail per request.
        """
        if self._serving:
            raise ConfigurationError(
                f"cannot add {what}: the app is serving, and registration closes when it starts; "
                "register it before app.serve()/app.run(), or return it from a plugin's "
                "wsroute_register_* hook"
            )

    def count_traffic(self) -> TrafficTable:
        """Count messages and bytes per route from now on; returns the counters.

        Call it from a plugin's ``wsroute_configure`` (before the server
        listens): the app then serves with
        :class:`~wsroute.traffic.CountingConnection`, which adds one attribute
        addition per data frame (see :mod:`wsroute.traffic`). An app that never
        calls it counts nothing and pays nothing. Idempotent: every caller gets
        the same :class:`~wsroute.traffic.TrafficTable` (``app.traffic``).
        """
        if self.traffic is None:
            self.traffic = TrafficTable()
            self.hub.count_traffic()
            self._session = None  # rebuilt with the table by websockets_options()
        return self.traffic

    def websockets_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """What to pass to websockets' ``serve()`` besides host and port."""
        if self._handshake is None or self._session is None:
            self._prepare()
        assert self._handshake is not None and self._session is not None
        kwargs = serve_options(options)  # wsroute's permessage-deflate default
        kwargs.setdefault("create_connection", Connection if self.traffic is None else CountingConnection)
        assert self._guard is not None
        if self._guard.rates_messages:  # only then: recv() stays websockets' own otherwise
            kwargs["create_connection"] = rate_limited(kwargs["create_connection"])
        for wrap in self.connection_wrappers:
            kwargs["create_connection"] = wrap(kwargs["create_connection"])
        if "select_subprotocol" in kwargs:
            _check_own_select_subprotocol(self.routes)
        elif any(route.subprotocols for route in self.routes):
            # Only then: without lists websockets' default (select none) is the same, and cheaper.
            kwargs["select_subprotocol"] = select_subprotocol
        # A user's own hooks run first, then wsroute's (websockets' router does the same).
        handshake = self._handshake
        kwargs["process_request"] = chain_process_request(kwargs.get("process_request"), handshake.process_request)
        process_response = chain_process_response(kwargs.get("process_response"), handshake.process_response)
        if process_response is not None:
            kwargs["process_response"] = process_response
        else:
            kwargs.pop("process_response", None)
        return {"handler": self._session, **kwargs}

    def _prepare(self) -> None:
        """Build the handshake and session objects from the current registrations."""
        self.plugins.check()
        app_chain = Chain.of(self.middleware_chain)
        groups = [group for _, group in self.router]
        provided = {**self.provided, **self._lifespan_values}
        factories = self.per_connection
        check_graph(factories, provided, {n for group in groups for n in group.pattern.param_names})
        bindings = {route: bind(route, provided, factories) for group in groups for route in group.routes()}
        plans = {
            route: plan_for(route, binding.scoped, factories, provided)
            for route, binding in bindings.items()
            if binding.scoped
        }
        plugins = self.plugins
        self._guard = Guard.build(self.limits, groups, self._max_connections())
        self._handshake = Handshake(
            app=self,
            router=self.router,
            chains={group: app_chain + Chain.of(_route_middleware(group)) for group in groups},
            task_names={group: f"wsroute {group.pattern.source}" for group in groups},
            request_hook=plugins.resolve("wsroute_process_request"),
            headers_hook=plugins.resolve("wsroute_extra_headers"),
            plans=plans,
            guard=self._guard,
        )
        self._session = Session(
            app=self,
            bindings=bindings,
            message_key=self.message_key,
            first_message_timeout=self.first_message_timeout,
            traffic=self.traffic,
            open_hook=plugins.resolve("wsroute_connection_open"),
            closed_hook=plugins.resolve("wsroute_connection_closed"),
            exception_hook=plugins.resolve("wsroute_handle_exception"),
            plans=plans,
        )

    def _secret_query_params(self) -> list[str]:
        """The query parameters of every ``query_token_auth`` middleware, app-wide or per route."""
        chains = [self.middleware_chain, *(route.middleware for route in self.routes)]
        return [name for chain in chains for item in chain for name in getattr(item, "redacted_query_params", ())]

    def _max_connections(self) -> int:
        """The configured ``max_connections``, or the default from the current descriptor limit."""
        if self.limits.max_connections is not None:
            return self.limits.max_connections
        import resource

        return default_max_connections(resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    def set_limits(self, **options: Any) -> None:
        """Change app-wide limits before the app starts (``wsroute run --max-connections`` calls this).

        Takes :class:`App`'s limit keywords; routes keep the limits they set themselves.

        Raises:
            ConfigurationError: an unknown name or a wrong value, or the app is serving.
        """
        self._check_open(f"limits {', '.join(map(repr, options))}")
        unknown = sorted(set(options) - set(attrs.fields_dict(Limits)) - {"max_size"})
        if unknown or "max_size" in options:
            name = (unknown or ["max_size"])[0]
            raise ConfigurationError(f"app.set_limits({name}=...): not an app-wide limit")
        current = {name: getattr(self.limits, name) for name in attrs.fields_dict(Limits) if name != "max_size"}
        self.limits = _app_limits(**{**current, **options})
        self._handshake = None

    def stats(self) -> Stats:
        """What the limits did since the app started: open connections and refusals.

        Returns:
            A :class:`~wsroute.guard.Stats` snapshot: ``open_connections``,
            ``max_connections`` and ``refusals``, a mapping
            ``{(route pattern, reason): count}`` (reasons: :data:`wsroute.guard.REASONS`).
            Before the app first starts, everything is zero.
        """
        if self._guard is None:
            return Stats(0, self._max_connections(), {})
        return self._guard.stats()

    async def configure(self) -> None:
        """Configure plugins and add what they register (routes, middleware, dependencies).

        Runs once; :meth:`startup` calls it. Call it yourself to inspect the
        complete app without serving (``wsroute routes`` does).
        """
        if self._plugins_configured:
            return
        self._plugins_configured = True
        self.plugins.check()
        await self._call_lifecycle("wsroute_configure")
        self._check_settings_were_read()
        for specs in await self._call_registration("wsroute_register_routes"):
            for spec in specs:
                self._add_route_spec(spec, "wsroute_register_routes")
        for middleware in await self._call_registration("wsroute_register_middleware"):
            for item in middleware:
                self._add_middleware(item, "wsroute_register_middleware")
        for values in await self._call_registration("wsroute_register_dependencies"):
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

    async def _call_registration(self, hook_name: str) -> list[Any]:
        try:
            return await self.plugins.call(hook_name, app=self)
        except HookFailed as failure:
            raise PluginError(f"{failure}: {failure.__cause__!r}") from failure.__cause__

    async def _call_lifecycle(self, hook_name: str) -> None:
        await self._call_registration(hook_name)

    def _add_route_spec(self, spec: Sequence[Any], source: str) -> None:
        if not isinstance(spec, Sequence) or len(spec) not in (2, 3):
            raise ConfigurationError(f"{source}: {spec!r} is not (path, handler) or (path, handler, {{options}})")
        options = dict(spec[2]) if len(spec) == 3 else {}
        self.add_route(spec[0], spec[1], **options)

    def __repr__(self) -> str:
        return f"<wsroute.App routes={len(self.routes)}>"


def _origins(route: Route, routes: Iterable[Route]) -> str:
    """``route '/chat/{room}' from Router(prefix='/chat'); route '/chat/{name}' from the app``."""
    others = [r for r in routes if r.path == route.path or r.pattern.overlaps(route.pattern)]
    described = [f"route {r.label!r} from {r.origin}" for r in [route, *others]]
    return "; ".join(described)
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


def _route_middleware(group: RouteGroup) -> list[Callable[..., Any]]:
    return list(group.plain.middleware) if group.plain is not None else []


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


def _check_own_select_subprotocol(routes: Iterable[Route]) -> None:
    """A user's ``select_subprotocol=`` replaces per-route negotiation: refuse it next to route lists."""
    listed = [route.label for route in routes if route.subprotocols]
    if listed:
        raise ConfigurationError(
            f"select_subprotocol= replaces wsroute's per-route negotiation, but routes {', '.join(map(repr, listed))} "
            "declare subprotocols; drop select_subprotocol= or the subprotocols lists (your function can read "
            "conn.route / conn.group.subprotocols)"
        )


def _run_keywords() -> frozenset[str]:
    from .server import run

    return frozenset(
        name for name, p in inspect.signature(run).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    )


def _check_run_values(options: Mapping[str, Any], loops: Sequence[str]) -> None:
    """``app.run()``'s own options: the drain timeout, the loop, the switches."""
    timeout = options.get("drain_timeout", 0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise ConfigurationError(f"app.run(drain_timeout={timeout!r}): expected a number of seconds >= 0")
    loop = options.get("loop", "auto")
    if loop not in loops:
        raise ConfigurationError(f"app.run(loop={loop!r}): expected one of {', '.join(loops)}")
    for name in ("keep_connections", "debug"):
        if not isinstance(options.get(name, False), bool):
            raise ConfigurationError(f"app.run({name}={options[name]!r}): expected True or False")
    uds = options.get("uds")
    if uds is not None and not isinstance(uds, str):
        raise ConfigurationError(f"app.run(uds={uds!r}): expected a socket path (str) or None")
