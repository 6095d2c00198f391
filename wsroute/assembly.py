"""Serving assembly: from an App's registrations to what websockets' ``serve()`` is given.

Registration (:mod:`wsroute.app`) only records and checks. When the app
starts, its :class:`Assembly` closes registration, starts the hub, the
plugins and the lifespan, and builds once the objects websockets calls for
every connection — the :class:`~wsroute.guard.Guard`, the
:class:`~wsroute.handshake.Handshake` and the :class:`~wsroute.session.Session`
— so nothing is looked up per request. ``app.serve()``, ``app.run()``,
``app.startup()``, ``app.shutdown()``, ``app.stats()`` and
``app.websockets_options()`` are thin methods over it.

A registration made while the app is stopped marks the built objects stale
(:meth:`Assembly.stale`); they are built again, from everything registered,
before the next serve.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from websockets.asyncio.server import serve as websockets_serve

from .chaining import chain_process_request, chain_process_response
from .compression import serve_options
from .connection import Connection
from .di import bind
from .errors import ConfigurationError
from .guard import Guard, Stats
from .handshake import Handshake
from .limits import Limits, default_max_connections
from .logs import redact_also
from .message_rate import rate_limited
from .middleware import Chain
from .opentimeout import OpenTimeout
from .options import SERVE_PARAMETERS, ServeOptions, check_names, plugin_serve_options
from .perconnection import check_graph, plan_for
from .routes import Route, RouteGroup
from .serving import Serving
from .session import Session
from .subprotocols import select_subprotocol
from .timerwheel import positive_seconds

if TYPE_CHECKING:
    from .app import App

__all__ = ["Assembly"]


@attrs.define(eq=False)
class Assembly:
    """One App's serving side: whether it serves, its start-up, and what websockets calls.

    Args:
        app: the App it assembles (read, never registered into).
        serve_options: the options given to ``App(**serve_options)``, validated.

    Attributes:
        serving: from :meth:`start` until :meth:`stop` ends; registration is
            closed meanwhile.
        handshake, session, guard: built by :meth:`prepare`; ``None`` until
            then and again after a registration (:meth:`stale`).
        lifespan_values: what the app's lifespan yielded, injected by name while serving.
    """

    app: App
    serve_options: ServeOptions
    serving: bool = attrs.field(default=False, init=False)
    handshake: Handshake | None = attrs.field(default=None, init=False)
    session: Session | None = attrs.field(default=None, init=False)
    guard: Guard | None = attrs.field(default=None, init=False)
    lifespan_values: dict[str, Any] = attrs.field(factory=dict, init=False)
    _running: contextlib.AsyncExitStack | None = attrs.field(default=None, init=False, repr=False)

    # -- registration closed while serving --------------------------------

    def check_open(self, what: str) -> None:
        """Refuse a registration while serving (Starlette's ``add_middleware`` rule).

        The live handshake was built at start-up; something added now would be
        matched by nothing, or half-matched and fail per request.

        Raises:
            ConfigurationError: the app is serving; the message names ``what``.
        """
        if self.serving:
            raise ConfigurationError(
                f"cannot add {what}: the app is serving, and registration closes when it starts; "
                "register it before app.serve()/app.run(), or return it from a plugin's "
                "wsroute_register_* hook"
            )

    def stale(self) -> None:
        """A registration changed what to serve: build everything again before serving."""
        self.handshake = None
        self.session = None

    def _close_registration(self) -> None:
        self.serving = True
        self.app.plugins.close_registration()

    def _open_registration(self) -> None:
        self.serving = False
        self.app.plugins.open_registration()

    # -- start-up and shutdown ---------------------------------------------

    async def start(self) -> None:
        """What :meth:`App.startup <wsroute.App.startup>` documents: configure, close registration, start.

        Raises:
            ConfigurationError: the app is already serving (one app, one server).
        """
        if self.serving:
            raise ConfigurationError(
                "app.serve(): this App is already serving; stop the running server first, or build a second App"
            )
        app = self.app
        await app.configure()
        app.plugins.check()
        redact_also(app.redact, self.secret_query_params())
        self._close_registration()
        try:
            async with contextlib.AsyncExitStack() as stack:
                await app.hub.start()  # never leave the broker connected behind a failed start
                stack.push_async_callback(app.hub.stop)
                stack.callback(app.keepalive.stop)  # last of all: connections draining are still pinged
                await app.plugins.call_for_app("wsroute_startup", app)
                stack.push_async_callback(app.plugins.call_for_app, "wsroute_shutdown", app)
                self.lifespan_values = await stack.enter_async_context(app.lifespan.run(app))
                self.prepare()
                self._running = stack.pop_all()
        except BaseException:
            self.lifespan_values = {}
            self._open_registration()
            raise

    async def stop(self) -> None:
        """What :meth:`App.shutdown <wsroute.App.shutdown>` documents: the start-up undone, in reverse."""
        running, self._running = self._running, None
        try:
            if running is not None:
                await running.aclose()
        finally:
            self.lifespan_values = {}
            self._open_registration()

    # -- what websockets is given ---------------------------------------------

    def serve(self, host: str | None, port: int | None, options: Mapping[str, Any]) -> Serving:
        """``app.serve()``: the App's serve options merged with ``options``, checked at once."""
        merged = self.serve_options.merged(options, "app.serve")
        return Serving(self.app, host, port, dict(merged.options))

    def run(self, host: str, port: int, options: Mapping[str, Any]) -> None:
        """``app.run()``: check every option before anything starts, then :func:`wsroute.server.run`."""
        from . import server  # the one import pointing up: server.py runs what this module assembles

        run_keywords = _run_keywords(server.run)
        check_names(options, SERVE_PARAMETERS | run_keywords, "app.run", values=options)
        _check_run_values(options, server.LOOPS)
        self.serve_options.merged({k: v for k, v in options.items() if k not in run_keywords}, "app.run")
        server.run(self.app, host=host, port=port, **options)

    def websockets_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """What to pass to websockets' ``serve()`` besides host and port (``handler`` included)."""
        if self.handshake is None or self.session is None or self.guard is None:
            self.prepare()
        assert self.handshake is not None and self.session is not None and self.guard is not None
        app = self.app
        chosen = plugin_serve_options(app.plugins.resolve("wsroute_serve_options").each_sync({"app": app}))
        kwargs = serve_options({**options, **chosen})  # wsroute's permessage-deflate default
        kwargs.setdefault("create_connection", Connection if app.traffic is None else app.traffic.connection_class())
        if self.guard.rates_messages:  # only then: recv() stays websockets' own otherwise
            kwargs["create_connection"] = rate_limited(kwargs["create_connection"])
        for wrap in app.connection_wrappers:  # plugins' subclasses (tracing), outermost last
            kwargs["create_connection"] = wrap(kwargs["create_connection"])
        _share_open_timeout(kwargs)
        routes = app.routes
        if "select_subprotocol" in kwargs:
            _check_own_select_subprotocol(routes)
        elif any(route.subprotocols for route in routes):
            # Only then: without lists websockets' default (select none) is the same, and cheaper.
            kwargs["select_subprotocol"] = select_subprotocol
        # A user's own hooks run first, then wsroute's (websockets' router does the same).
        handshake = self.handshake
        kwargs["process_request"] = chain_process_request(kwargs.get("process_request"), handshake.process_request)
        process_response = chain_process_response(kwargs.get("process_response"), handshake.process_response)
        if process_response is not None:
            kwargs["process_response"] = process_response
        else:
            kwargs.pop("process_response", None)
        return {"handler": self.session, **kwargs}

    def prepare(self) -> None:
        """Build the guard, the handshake and the session from the current registrations.

        Raises:
            DependencyError: a handler or factory parameter nothing provides.
            PluginError: a misspelt or wrongly declared hook.
        """
        app = self.app
        app.plugins.check()
        app_chain = Chain.of(app.middleware_chain)
        groups = [group for _, group in app.router]
        provided = {**app.provided, **self.lifespan_values}
        factories = app.per_connection
        check_graph(factories, provided, {n for group in groups for n in group.pattern.param_names})
        bindings = {route: bind(route, provided, factories) for group in groups for route in group.routes()}
        plans = {
            route: plan_for(route, binding.scoped, factories, provided)
            for route, binding in bindings.items()
            if binding.scoped
        }
        plugins = app.plugins
        self.guard = Guard.build(app.limits, groups, self.max_connections(app.limits))
        self.handshake = Handshake(
            app=app,
            router=app.router,
            chains={group: app_chain + Chain.of(_route_middleware(group)) for group in groups},
            task_names={group: f"wsroute {group.pattern.source}" for group in groups},
            request_hook=plugins.resolve("wsroute_process_request"),
            headers_hook=plugins.resolve("wsroute_extra_headers"),
            plans=plans,
            guard=self.guard,
        )
        self.session = Session(
            app=app,
            bindings=bindings,
            message_key=app.message_key,
            first_message_timeout=app.first_message_timeout,
            traffic=app.traffic,
            open_hook=plugins.resolve("wsroute_connection_open"),
            closed_hook=plugins.resolve("wsroute_connection_closed"),
            exception_hook=plugins.resolve("wsroute_handle_exception"),
            plans=plans,
        )

    # -- what the limits did -------------------------------------------------------

    def stats(self) -> Stats:
        """What :meth:`App.stats <wsroute.App.stats>` returns: zero before the first start."""
        if self.guard is None:
            return Stats(0, self.max_connections(self.app.limits), {})
        return self.guard.stats()

    @staticmethod
    def max_connections(limits: Limits) -> int:
        """The configured ``max_connections``, or the default from the current descriptor limit."""
        if limits.max_connections is not None:
            return limits.max_connections
        import resource

        return default_max_connections(resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    def secret_query_params(self) -> list[str]:
        """The query parameters of every ``query_token_auth`` middleware, app-wide or per route."""
        app = self.app
        chains = [app.middleware_chain, *(route.middleware for route in app.routes)]
        return [name for chain in chains for item in chain for name in getattr(item, "redacted_query_params", ())]


def _share_open_timeout(kwargs: dict[str, Any]) -> None:
    """Keep ``open_timeout`` in one :class:`~wsroute.opentimeout.OpenTimeout` wheel, not a timer per connection.

    The connection class gets a per-serve subclass that knows the wheel, and
    websockets gets ``open_timeout=None``. With TLS, websockets' default
    ``ssl_handshake_timeout`` (``open_timeout``) is kept. A timeout that is
    not a positive number (``0`` cuts at once) is left to websockets, as is a
    connection class that is not a wsroute :class:`Connection` (the serve
    options refuse one, but a plugin's ``connection_wrappers`` entry could
    still return one).
    """
    timeout = kwargs.get("open_timeout", _WEBSOCKETS_OPEN_TIMEOUT)
    base = kwargs["create_connection"]
    if not (positive_seconds(timeout) and isinstance(base, type) and issubclass(base, Connection)):
        return
    namespace = {"__slots__": (), "__module__": base.__module__, "__qualname__": base.__qualname__,
                 "open_timeouts": OpenTimeout(timeout)}
    kwargs["create_connection"] = type(base.__name__, (base,), namespace)
    if kwargs.get("ssl") is not None:
        kwargs.setdefault("ssl_handshake_timeout", timeout)
    kwargs["open_timeout"] = None


#: websockets' own default for ``open_timeout`` (seconds), read from its signature.
_WEBSOCKETS_OPEN_TIMEOUT = inspect.signature(websockets_serve).parameters["open_timeout"].default


def _route_middleware(group: RouteGroup) -> list[Callable[..., Any]]:
    return list(group.plain.middleware) if group.plain is not None else []


def _check_own_select_subprotocol(routes: Iterable[Route]) -> None:
    """A user's ``select_subprotocol=`` replaces per-route negotiation: refuse it next to route lists."""
    listed = [route.label for route in routes if route.subprotocols]
    if listed:
        raise ConfigurationError(
            f"select_subprotocol= replaces wsroute's per-route negotiation, but routes {', '.join(map(repr, listed))} "
            "declare subprotocols; drop select_subprotocol= or the subprotocols lists (your function can read "
            "conn.route / conn.group.subprotocols)"
        )


def _run_keywords(run: Callable[..., Any]) -> frozenset[str]:
    """The keyword-only options of :func:`wsroute.server.run` (``drain_timeout``, ``loop``…)."""
    return frozenset(name for name, p in inspect.signature(run).parameters.items() if p.kind is p.KEYWORD_ONLY)


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
