"""The opening handshake: plugins, route match and middleware, before the upgrade.

:class:`Handshake` is built once when the app starts serving, with everything
the per-request path needs already looked up; its methods are websockets'
``process_request`` and ``process_response``. A request that matches no route
gets 404 here (naming the strict route it missed by a trailing slash, if
any), one whose path or query cannot be percent-decoded gets 400, and a
rejected one gets its middleware's response: in each case no handler runs and
no WebSocket is opened.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import attrs
from websockets.http11 import Request, Response

from .errors import PluginError
from .guard import Guard
from .middleware import Chain
from .outcomes import Deny
from .perconnection import Plan
from .plugins import HookFailed, Resolved
from .routes import Route, RouteGroup
from .routing import PathRouter
from .urls import BadTarget, parse_query

if TYPE_CHECKING:
    from .app import App
    from .connection import Connection

__all__ = ["Handshake"]

logger = logging.getLogger("wsroute")

_FAILED = "Failed to open a WebSocket connection.\nSee server log for more information.\n"


@attrs.frozen
class Handshake:
    """``process_request`` / ``process_response`` for one prepared app.

    Attributes:
        app: the app (stored on each connection as ``conn.app``).
        router: path → :class:`RouteGroup`.
        chains: the middleware chain of each group (app-level + route-level).
        task_names: each group's connection task name.
        request_hook: the ``wsroute_process_request`` implementations.
        request_paths: the paths they answer, when their plugins all declare
            them (``wsroute_paths``); None when any may answer any path.
        headers_hook: the ``wsroute_extra_headers`` implementations.
        plans: per-connection dependencies of each route that has some
            (:mod:`wsroute.perconnection`), run after the middleware.
        guard: the limits (:mod:`wsroute.guard`): checked before the
            middleware, and again (per user) once it accepted.
    """

    app: App
    router: PathRouter[RouteGroup]
    chains: Mapping[RouteGroup, Chain]
    task_names: Mapping[RouteGroup, str]
    request_hook: Resolved
    headers_hook: Resolved
    guard: Guard
    plans: Mapping[Route, Plan] = attrs.field(factory=dict)
    request_paths: frozenset[str] | None = attrs.field(init=False)

    @request_paths.default
    def _declared_paths(self) -> frozenset[str] | None:
        """The only decoded paths ``wsroute_process_request`` answers, or None to ask it about every request.

        Known when every implementation's plugin declares its paths
        (``wsroute_paths``) and none is a wrapper: then a request for any
        other path skips the hook call.
        """
        paths: set[str] = set()
        for impl in self.request_hook.impls:
            declared = getattr(impl.plugin, "wsroute_paths", None)
            if declared is None or impl.hookwrapper or impl.wrapper:
                return None
            paths.update(_checked_paths(declared, impl.plugin_name))
        return frozenset(paths)

    @property
    def process_response(self) -> Callable[[Connection, Request, Response], Any] | None:
        """What to give websockets as ``process_response``: none without header
        plugins, a plain function when they are all synchronous (no coroutine
        per handshake), else a coroutine function."""
        if not self.headers_hook:
            return None
        return self._add_headers_sync if self.headers_hook.all_sync else self._add_headers

    def process_request(self, conn: Connection, request: Request) -> Response | Awaitable[Response | None] | None:
        """Answer plain HTTP, refuse unknown paths, or run the middleware.

        Synchronous unless a plugin answers asynchronously or middleware must
        run, so a request without middleware costs no coroutine.
        """
        conn.app = self.app
        conn._handler_task = asyncio.current_task()  # what open_timeout cancels (wsroute.opentimeout)
        if self.request_hook.impls:  # a tuple's truth, not a method call: this runs per request
            paths, path = self.request_paths, request.path
            # Inlined for the common case (a plain path no plugin declared): no call at all.
            if paths is None or path in paths or (("?" in path or "%" in path) and _declared(conn, path, paths)):
                answer = self._plugin_answer(conn, request)
                if answer is not None:
                    return answer
        return self._route(conn, request)

    def _route(self, conn: Connection, request: Request) -> Response | Awaitable[Response | None] | None:
        path = request.path
        try:
            if "?" in path:
                path, _, query = path.partition("?")
                if "%" in query or "#" in query:  # decode now: a bad query is a 400, not a handler failing later
                    conn._query = parse_query(query)
            found = self.router.match(path)
        except BadTarget as exc:
            return conn.respond(HTTPStatus.BAD_REQUEST, f"Bad Request: {exc}.\n")
        if found is None:
            return _not_found(conn, self.router, path)
        group, params = found
        conn.group = group
        conn.route = group.plain
        conn.params = params
        task = conn._handler_task
        if task is not None:
            task.set_name(self.task_names[group])
        guard = self.guard
        refused = guard.check(conn, group)
        if refused is not None:
            return refused
        chain = self.chains[group]
        if self.plans and group.plain is not None:
            plan = self.plans.get(group.plain)
            if plan is not None:
                return self._admit(chain, plan, conn, request)
        if not chain.steps:
            return guard.admit(conn, group)
        if not chain.is_sync:
            return self._guarded(chain.run(conn, request), conn, group)
        try:
            answer = chain.run_sync(conn, request)
        except Deny as deny:
            return _denied(conn, deny)
        except Exception:
            return _middleware_failed(conn)
        if answer is None:
            return guard.admit(conn, group)
        if inspect.isawaitable(answer):
            return self._guarded(answer, conn, group)
        return answer

    async def _guarded(
        self, pending: Awaitable[Response | None], conn: Connection, group: RouteGroup
    ) -> Response | None:
        """Await middleware, then admit; an exception fails closed with 500, logged once."""
        try:
            answer = await pending
        except Deny as deny:
            return _denied(conn, deny)
        except Exception:
            return _middleware_failed(conn)
        return answer if answer is not None else self.guard.admit(conn, group)

    async def _admit(self, chain: Chain, plan: Plan, conn: Connection, request: Request) -> Response | None:
        """Run the middleware, then the route's per-connection dependencies.

        Their values and cleanups wait on the connection (``conn.scoped``)
        for the session; a ``Deny`` from either answers its status. The
        limits then admit the connection (the user's cap needs the
        middleware's ``ctx.user_id``).
        """
        try:
            if chain.steps:
                answer = await chain.run(conn, request)
                if answer is not None:
                    return answer
            conn.hold_scoped(await plan.resolve(conn))
        except Deny as deny:
            return _denied(conn, deny)
        except Exception:
            return _middleware_failed(conn, "a per-connection dependency or middleware")
        assert conn.group is not None  # set by _route before the plan runs
        return self.guard.admit(conn, conn.group)

    def _plugin_answer(self, conn: Connection, request: Request) -> Response | Awaitable[Response | None] | None:
        try:
            answer = self.request_hook.first({"app": self.app, "conn": conn, "request": request})
        except HookFailed as failure:
            return _plugin_failed(conn, failure)
        if answer is not None and inspect.isawaitable(answer):
            return self._await_plugin_answer(answer, conn, request)
        return answer

    async def _await_plugin_answer(
        self, answer: Awaitable[Response | None], conn: Connection, request: Request
    ) -> Response | None:
        """A plugin answers asynchronously (e.g. readiness checks); None continues to routing."""
        try:
            response = await answer
        except HookFailed as failure:
            return _plugin_failed(conn, failure)
        if response is not None:
            return response
        routed = self._route(conn, request)
        return await routed if inspect.isawaitable(routed) else routed

    async def _add_headers(self, conn: Connection, request: Request, response: Response) -> Response | None:
        """Add the headers plugins ask for (some plugin is async)."""
        kwargs = {"app": self.app, "conn": conn, "request": request, "response": response}
        try:
            additions = await self.headers_hook.each(kwargs)
        except HookFailed as failure:
            return _plugin_failed(conn, failure)
        return _apply_headers(conn, response, additions)

    def _add_headers_sync(self, conn: Connection, request: Request, response: Response) -> Response | None:
        """Add the headers plugins ask for (every plugin is synchronous)."""
        kwargs = {"app": self.app, "conn": conn, "request": request, "response": response}
        try:
            additions = self.headers_hook.each_sync(kwargs)
        except HookFailed as failure:
            return _plugin_failed(conn, failure)
        return _apply_headers(conn, response, additions) if additions else None


def _declared(conn: Connection, path: str, paths: frozenset[str]) -> bool:
    """Whether ``path`` (raw, maybe with a query) is one of the declared decoded ``paths``."""
    if "?" in path:
        path = path.partition("?")[0]
    if "%" in path:  # plugins compare the decoded path, as routes are matched
        path = conn.decoded_path
    return path in paths


def _checked_paths(declared: Any, plugin: str) -> frozenset[str]:
    """A plugin's ``wsroute_paths``: a collection of decoded paths, each starting with ``/``.

    A lone string is refused rather than read as its characters (which would
    silently keep the plugin from ever seeing its own path).

    Raises:
        PluginError: naming the plugin, the value and the expected form.
    """
    expected = "a set of decoded paths such as frozenset({'/healthz'})"
    if isinstance(declared, (str, bytes)) or not isinstance(declared, Iterable):
        raise PluginError(f"plugin {plugin!r}: wsroute_paths={declared!r} must be {expected}")
    paths = frozenset(declared)
    wrong = sorted(repr(path) for path in paths if not (isinstance(path, str) and path.startswith("/")))
    if wrong:
        raise PluginError(f"plugin {plugin!r}: wsroute_paths has {', '.join(wrong)}; it must be {expected}")
    return paths


def _not_found(conn: Connection, router: PathRouter[RouteGroup], path: str) -> Response:
    """404; when a strict route misses only by a trailing slash, the text names it."""
    near = router.near_miss(path)
    if near is None:
        return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
    slash = "without" if path.endswith("/") else "with"
    return conn.respond(
        HTTPStatus.NOT_FOUND,
        f"Not Found: route {near!r} matches this path {slash} its trailing slash, "
        "and that route is strict about trailing slashes (trailing_slash='strict').\n",
    )


def _plugin_failed(conn: Connection, failure: HookFailed) -> Response:
    """Answer 500 for this request only, logged once with the plugin's name."""
    logger.error("%s; answered 500", failure, exc_info=failure.__cause__)
    return conn.respond(HTTPStatus.INTERNAL_SERVER_ERROR, _FAILED)


def _middleware_failed(conn: Connection, what: str = "middleware") -> Response:
    """Fail closed: 500, logged once (call from an ``except`` block)."""
    logger.exception("%s failed for %s; answered 500", what, conn.path)
    return conn.respond(HTTPStatus.INTERNAL_SERVER_ERROR, _FAILED)


def _denied(conn: Connection, deny: Deny) -> Response:
    """The answer to ``raise wsroute.Deny(status, reason, headers)``; logged at INFO, not as a failure.

    Headers that are not valid HTTP are a bug in the server's code: 500, logged once.
    """
    try:
        headers = _checked_pairs(deny.headers)
    except ValueError as exc:
        logger.error("wsroute.Deny(%d) for %s has a bad header: %s; answered 500", deny.status, conn.path, exc)
        return conn.respond(HTTPStatus.INTERNAL_SERVER_ERROR, _FAILED)
    logger.info("denied %s with %d: %s", conn.path, deny.status, deny.reason)
    response = conn.respond(deny.status, deny.reason + "\n")
    for name, value in headers:
        response.headers[name] = value
    return response


def _apply_headers(conn: Connection, response: Response, additions: list[tuple[str, Any]]) -> Response | None:
    """Check every plugin's headers, then add them all; a bad one answers 500.

    A header that is not valid HTTP (a CR/LF would let a plugin inject
    headers) is never sent: the request gets 500, logged once with the
    plugin's name.
    """
    checked: list[tuple[str, str]] = []
    for plugin_name, headers in additions:
        try:
            checked.extend(_checked_pairs(headers))
        except ValueError as exc:
            logger.error("plugin %r returned a bad extra header: %s; answered 500", plugin_name, exc)
            return conn.respond(HTTPStatus.INTERNAL_SERVER_ERROR, _FAILED)
    for name, value in checked:
        response.headers[name] = value
    return None


_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def _checked_pairs(headers: Any) -> list[tuple[str, str]]:
    """``headers`` (a mapping or pairs) as a list, each name and value valid HTTP."""
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"{pair!r} is not a (name, value) pair")
        name, value = pair
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise ValueError(f"header name {name!r} is not an HTTP token")
        if not isinstance(value, str) or _VALUE.fullmatch(value) is None:
            raise ValueError(f"header {name}: value {value!r} is not a valid HTTP header value")
    return pairs
