"""The plugin contract: every hook a wsroute plugin may implement.

This module is the whole contract (as datasette's ``hookspecs.py`` is); each
docstring is the reference for its hook, and ``docs/plugins.md`` has a
section for every one (a test checks it). A plugin is any module or object
with functions named after these hooks, decorated with :data:`hookimpl`::

    from wsroute import hookimpl

    @hookimpl
    def wsroute_extra_headers(app, conn, request, response):
        return {"X-Frame-Options": "DENY"}

An implementation may take any subset of its hook's arguments, by name.

Names follow datasette: ``register_*`` returns things to add, ``extra_*``
returns additions, lifecycle hooks are verbs.

Sync or async: wsroute calls every hook through pluggy's own hook call (so
pluggy's wrappers, ``@hookimpl(wrapper=True)`` or ``hookwrapper=True``, and
its call monitoring work) and then awaits any result that is awaitable, so
most hooks may be ``async def``. A wrapper sees the raw results: the
coroutine of an ``async def`` implementation, awaited after it returns.
The two *firstresult* hooks (``wsroute_process_request``,
``wsroute_handle_exception``) are the exception: they stop at the first result that is not ``None``, and an
``async def`` would always return a (coroutine) result, so they must be plain
``def`` — start-up fails otherwise. Hooks that run during a handshake are on
the hot path: do the work once in ``wsroute_configure`` or
``wsroute_startup``, not per request.

An exception in an implementation (or a wrapper) names the plugin (and its
entry point), read from the traceback; it stops start-up when raised from a
start-up hook, and answers 500 for that request only when raised from a
handshake hook.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["ENTRY_POINT_GROUP", "hookimpl", "hookspec", "PROJECT_NAME"]

PROJECT_NAME = "wsroute"
#: The entry-point group a plugin package declares itself in
#: (``[project.entry-points.wsroute]``); installed plugins are loaded from it.
ENTRY_POINT_GROUP = "wsroute"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- start-up and shutdown ----------------------------------------------------


@hookspec
def wsroute_configure(app: Any) -> Any:
    """Read and validate the plugin's settings; called once per app at start-up.

    Called first when the app starts serving, before any ``register_*`` hook
    and before the socket listens. Read settings with
    ``app.plugin_settings("my-plugin", DEFAULTS)`` (unknown keys raise) and
    validate them here: any exception stops start-up with a
    :class:`~wsroute.PluginError` naming the plugin and its entry point.
    Keep per-app state on an object registered with
    ``app.plugins.register(...)`` rather than in module globals: one plugin
    module serves every ``App`` of the process.

    Args:
        app: the :class:`~wsroute.App` being started.

    Returns:
        Nothing (ignored). May be async.
    """


@hookspec
def wsroute_startup(app: Any) -> Any:
    """Acquire resources; awaited before the server listens.

    Called on every start, after ``wsroute_configure``, the ``register_*``
    hooks and the hub's start. An exception stops start-up.

    Args:
        app: the :class:`~wsroute.App`.

    Returns:
        Nothing (ignored). May be async.
    """


@hookspec
def wsroute_shutdown(app: Any) -> Any:
    """Release resources; awaited after the server closed and the hub stopped.

    Args:
        app: the :class:`~wsroute.App`; ``app.shutting_down`` is True.

    Returns:
        Nothing (ignored). May be async.
    """


# -- registration (once, at start-up) -----------------------------------------


@hookspec
def wsroute_register_routes(app: Any) -> Any:
    """Return routes to add, once at start-up after ``wsroute_configure``.

    Args:
        app: the :class:`~wsroute.App`.

    Returns:
        A list of ``(path, handler)`` or ``(path, handler, {options})``
        tuples, as :meth:`App.add_route` takes them, or None. A conflict with
        another route fails start-up. May be async.
    """


@hookspec
def wsroute_register_middleware(app: Any) -> Any:
    """Return app-level middleware, once at start-up.

    Args:
        app: the :class:`~wsroute.App`.

    Returns:
        A list of middleware callables ``(conn, request) -> Response | None``
        (sync or async), or None. They run after the middleware registered in
        code, in plugin call order. May be async.
    """


@hookspec
def wsroute_register_dependencies(app: Any) -> Any:
    """Return values to inject into handlers by parameter name, once at start-up.

    Args:
        app: the :class:`~wsroute.App`.

    Returns:
        ``{name: value}``, bound with ``functools.partial`` as
        :meth:`App.provide` does, or None. May be async.
    """


@hookspec
def wsroute_register_health_checks(app: Any) -> Any:
    """Return named readiness checks; collected at start-up by the health plugin.

    A check is a callable without arguments: ``async def`` (run on the event
    loop) or plain ``def`` (run in a worker thread so it cannot block the
    server). It fails by raising or returning ``False``; it is cut at the
    health plugin's timeout. The built-in hub plugin registers ``"redis"``
    when the broker is Redis.

    Args:
        app: the :class:`~wsroute.App`.

    Returns:
        ``{name: check}``, or None. A name registered twice fails start-up.
        May be async.
    """


@hookspec
def wsroute_register_commands(cli: Any) -> Any:
    """Add sub-commands to the ``wsroute`` command line, when it starts.

    Args:
        cli: the ``wsroute`` ``click.Group``; call ``cli.add_command(...)``.

    Returns:
        Nothing (ignored). Must be synchronous (click is).
    """


# -- per handshake (hot path) -------------------------------------------------


@hookspec(firstresult=True)
def wsroute_process_request(app: Any, conn: Any, request: Any) -> Any:
    """Answer a request as plain HTTP before routing, or return None.

    Called for every handshake request, before route matching and
    middleware. **firstresult**: the first implementation returning
    something other than None answers. **Must be a plain ``def``**: decide
    synchronously whether the request is yours (e.g. compare
    ``request.path``) and return None quickly when it is not. To compute
    the answer asynchronously (readiness checks), return an awaitable that
    resolves to the ``Response``; wsroute awaits it (resolving to None
    continues with routing, skipping later plugins). Build responses with
    ``conn.respond(status, text)``. An exception answers 500 for this
    request only, logged once with the plugin name.

    A plugin that answers only some paths declares them as a
    ``wsroute_paths`` attribute of the plugin object: a set of decoded
    paths, each starting with ``/``, without the query
    (``frozenset({"/healthz"})``; a lone string or another form stops
    start-up with ``PluginError``); when every implementation's plugin
    does, wsroute calls the hook only for those paths.

    Args:
        app: the :class:`~wsroute.App`.
        conn: the :class:`~wsroute.Connection`, not yet routed.
        request: websockets' ``Request`` (``path`` includes the query
            string; ``method``, ``headers``).

    Returns:
        A websockets ``Response``, an awaitable of one, or None.
    """


@hookspec
def wsroute_extra_headers(app: Any, conn: Any, request: Any, response: Any) -> Any:
    """Return headers to add to every handshake response (101, 404, rejections, plain HTTP).

    Called for every handshake response, after websockets set its ``Server``
    header; wsroute appends the returned headers (websockets'
    ``headers[name] = value`` appends). To replace or remove a header,
    mutate ``response.headers`` directly (``del`` first, then set) and
    return None. An exception answers 500 for this request only, logged once
    with the plugin name. When no plugin implements it, websockets gets no
    ``process_response`` at all.

    ``response.status_code`` is not always the status sent: when the server
    stopped serving during the handshake, websockets replaces a 101 by ``503
    Server is shutting down`` after this hook. To observe the status sent,
    read it from the connection (``wsroute.otel`` wraps the protocol's
    ``send_response`` in a class from ``app.connection_wrappers``).

    Args:
        app: the :class:`~wsroute.App`.
        conn: the :class:`~wsroute.Connection`.
        request: websockets' ``Request``.
        response: the websockets ``Response`` about to be sent.

    Returns:
        A dict or a list of ``(name, value)`` pairs, or None. May be async.
    """



@hookspec
def wsroute_serve_options(app: Any) -> Any:
    """Return websockets ``serve()`` options the plugin sets; once per start, before listening.

    Called after ``wsroute_startup``, when wsroute builds the arguments of
    websockets' ``serve()``. The options returned override those given to
    ``App()`` and ``app.serve()``: a plugin whose setting *is* a serve option
    lets websockets do the work once per handshake instead of redoing it per
    response (the headers plugin's ``server`` setting becomes
    ``server_header``, so websockets writes the ``Server`` header it wants
    rather than the plugin replacing websockets' one on every response).
    Names and values are checked as ``App()``'s are; a wrong one, or two
    plugins setting one option to different values, stops start-up with a
    ``ConfigurationError`` naming the plugin. Must be a plain ``def``.

    Args:
        app: the :class:`~wsroute.App`.

    Returns:
        A dict ``{option name: value}``, or None.
    """

# -- per connection -----------------------------------------------------------


@hookspec
def wsroute_connection_open(app: Any, conn: Any) -> Any:
    """Observe a connection that is routed and open, before its handler runs.

    Args:
        app: the :class:`~wsroute.App`.
        conn: the :class:`~wsroute.Connection`; ``conn.route`` is its route.

    Returns:
        Nothing (ignored). May be async. An exception ends the connection
        as a handler failure would.
    """


@hookspec
def wsroute_connection_closed(app: Any, conn: Any, code: int | None, reason: str) -> Any:
    """Observe a connection after its handler finished and the connection closed.

    Args:
        app: the :class:`~wsroute.App`.
        conn: the :class:`~wsroute.Connection`.
        code: the close code (1006 when the connection was lost without a
            closing handshake).
        reason: the close reason (empty when none).

    Returns:
        Nothing (ignored). May be async. An exception is logged with the
        plugin name.
    """


@hookspec(firstresult=True)
def wsroute_handle_exception(app: Any, conn: Any, route: Any, exc: BaseException) -> Any:
    """Choose the close code for an exception raised by a handler.

    Tasks started with ``Handler.spawn()`` count as part of their handler.

    Called after the exception is logged (once, with the route).
    **firstresult**, **must be a plain ``def``**.

    Args:
        app: the :class:`~wsroute.App`.
        conn: the :class:`~wsroute.Connection`.
        route: the :class:`~wsroute.Route`, or None if the connection failed
            before one was chosen.
        exc: the exception.

    Returns:
        An ``int`` close code (e.g. 1013, or 4000-4999), or None to keep 1011.
    """
