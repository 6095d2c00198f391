"""The plugin contract: every hook a wsroute plugin may implement.

This module is the whole contract (as datasette's ``hookspecs.py`` is); each
docstring is the reference for its hook. A plugin is any module or object with
functions named after these hooks, decorated with :data:`hookimpl`::

    from wsroute import hookimpl

    @hookimpl
    def wsroute_extra_headers(app, conn, request, response):
        return {"X-Frame-Options": "DENY"}

Names follow datasette: ``register_*`` returns things to add, ``extra_*``
returns additions, lifecycle hooks are verbs. Implementations may be plain
functions or ``async def`` — except the *firstresult* hooks, which must be
synchronous: pluggy stops at the first non-``None`` result, and a coroutine
is not ``None``. Hooks that run during a handshake should be fast.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["hookimpl", "hookspec", "PROJECT_NAME"]

PROJECT_NAME = "wsroute"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def wsroute_configure(app: Any) -> Any:
    """Configure the plugin for ``app``; called once when the app starts.

    Read settings with ``app.plugin_settings(name, defaults)`` and validate
    them here: an exception stops start-up with a message naming the plugin.
    May be async.
    """


@hookspec
def wsroute_startup(app: Any) -> Any:
    """Called (and awaited) after configuration, before the server listens."""


@hookspec
def wsroute_shutdown(app: Any) -> Any:
    """Called (and awaited) after the server stopped and connections closed."""


@hookspec
def wsroute_register_routes(app: Any) -> Any:
    """Return routes to add: a list of ``(path, handler)`` or
    ``(path, handler, {route options})`` tuples. Conflicts fail at start-up."""


@hookspec
def wsroute_register_middleware(app: Any) -> Any:
    """Return a list of app-level middleware; they run after the middleware
    registered in code, in plugin registration order."""


@hookspec
def wsroute_register_dependencies(app: Any) -> Any:
    """Return ``{name: value}`` to inject into handlers by parameter name."""


@hookspec
def wsroute_register_health_checks(app: Any) -> Any:
    """Return ``{name: check}`` readiness checks; ``check()`` is a callable
    (sync or async) that raises, or returns ``False``, when not ready."""


@hookspec
def wsroute_register_commands(cli: Any) -> Any:
    """Add sub-commands to the ``wsroute`` click group ``cli``."""


@hookspec(firstresult=True)
def wsroute_process_request(app: Any, conn: Any, request: Any) -> Any:
    """Return a ``Response`` to answer the request as plain HTTP before
    routing (health checks), or ``None``. Synchronous; first result wins."""


@hookspec
def wsroute_extra_headers(app: Any, conn: Any, request: Any, response: Any) -> Any:
    """Return headers to add to every handshake response (101 and rejections)
    as a dict or a list of ``(name, value)`` pairs. May be async."""


@hookspec
def wsroute_connection_open(app: Any, conn: Any) -> Any:
    """Called when a connection is routed and open, before its handler runs."""


@hookspec
def wsroute_connection_closed(app: Any, conn: Any, code: int | None, reason: str) -> Any:
    """Called after a connection's handler finished and the connection closed."""


@hookspec(firstresult=True)
def wsroute_handle_exception(app: Any, conn: Any, route: Any, exc: BaseException) -> Any:
    """Return a close code for an exception raised by a handler, or ``None``
    to keep 1011. The exception is logged once either way. Synchronous."""
