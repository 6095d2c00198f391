"""Middleware: checks that run in ``process_request``, before the upgrade.

A middleware is ``(conn, request) -> Response | None``, sync or async — the
same shape as websockets' ``process_request``. ``None`` lets the request go
on; a ``Response`` (``conn.respond(401, "...")``) is sent instead of the
upgrade and no handler runs. Middleware sees the matched route
(``conn.route``) and its params (``conn.params``), and stores per-connection
data in ``conn.ctx``.

The helpers below return middleware and check their arguments at once, as
websockets' ``basic_auth()`` does::

    app.middleware(bearer_auth(verify_token))
    app.middleware(allow_origins(["https://example.com"]))
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import attrs
from websockets.http11 import Request, Response

from .asyncapi import Security
from .callbacks import describe, is_async_callable
from .errors import ConfigurationError
from .origins import Origin

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Middleware", "Chain", "allow_origins", "bearer_auth", "check_middleware", "query_token_auth"]

logger = logging.getLogger("wsroute.middleware")

Middleware = Callable[["Connection", Request], "Awaitable[Response | None] | Response | None"]
Verify = Callable[[str], Any]


@attrs.frozen
class Chain:
    """Middleware in the order they run, each tagged sync or async once."""

    steps: tuple[tuple[Callable[..., Any], bool], ...] = ()
    is_sync: bool = attrs.field(init=False, eq=False, repr=False)
    """Whether every middleware is synchronous (then :meth:`run_sync` applies); computed once."""

    @is_sync.default
    def _all_sync(self) -> bool:
        return not any(is_async for _, is_async in self.steps)

    @classmethod
    def of(cls, middleware: Iterable[Callable[..., Any]]) -> Chain:
        return cls(tuple((m, is_async_callable(m)) for m in middleware))

    def __add__(self, other: Chain) -> Chain:
        return Chain(self.steps + other.steps)

    def __bool__(self) -> bool:
        return bool(self.steps)

    async def run(self, conn: Connection, request: Request) -> Response | None:
        """Run each middleware until one answers.

        Raises:
            TypeError: a middleware returned something that is not a Response.
        """
        for middleware, is_async in self.steps:
            result = await middleware(conn, request) if is_async else middleware(conn, request)
            if not is_async and inspect.isawaitable(result):
                result = await result
            if result is not None:
                return _checked(middleware, result)
        return None

    def run_sync(self, conn: Connection, request: Request) -> Response | Awaitable[Response | None] | None:
        """:meth:`run` for a chain of synchronous middleware.

        Returning the answer directly, rather than a coroutine, spares a
        coroutine and an await per handshake for the usual all-sync chain.
        """
        for index, (middleware, _) in enumerate(self.steps):
            result = middleware(conn, request)
            if result is not None:
                if inspect.isawaitable(result):
                    # A plain function returning a coroutine: finish asynchronously.
                    return Chain(self.steps[index + 1 :])._after(middleware, result, conn, request)
                return _checked(middleware, result)
        return None

    async def _after(
        self, middleware: Callable[..., Any], pending: Awaitable[Any], conn: Connection, request: Request
    ) -> Response | None:
        result = await pending
        if result is not None:
            return _checked(middleware, result)
        return await self.run(conn, request)


def check_middleware(func: Any, where: str) -> None:
    """A middleware must be callable as ``(conn, request)``.

    Checked with ``inspect.signature(func).bind(conn, request)``, which
    accepts ``*args``, defaults, ``functools.partial`` objects and callable
    objects; a callable whose signature Python cannot read (some builtins)
    is accepted as is.

    Raises:
        ConfigurationError: not callable, or its parameters cannot take
            exactly two positional arguments.
    """
    if not callable(func):
        raise ConfigurationError(
            f"{where}: middleware {func!r} is not callable; expected (conn, request) -> Response | None"
        )
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None, None)
    except TypeError as exc:
        raise ConfigurationError(
            f"{where}: middleware {describe(func)}{signature} cannot be called as (conn, request): {exc}; "
            "define it as 'def name(conn, request)' (or async def) and bind other values with functools.partial"
        ) from None


def _checked(middleware: Callable[..., Any], result: Any) -> Response:
    if not isinstance(result, Response):
        raise TypeError(
            f"middleware {describe(middleware)} returned {result!r}; "
            "return None to continue or conn.respond(status, text) to reject"
        )
    return result


def bearer_auth(verify: Verify, *, realm: str = "wsroute") -> Middleware:
    """Authenticate with ``Authorization: Bearer <token>``.

    ``verify(token)`` (sync or async) returns the user, or ``None``/``False``
    to refuse. The user is stored as ``conn.ctx.user`` and its id as
    ``conn.ctx.user_id`` (the user itself when it is a ``str``/``int``, else
    its ``id`` attribute, as a ``str``) — the hub uses it for ``send_to_user``.
    Missing header: 401; refused token: 403.
    """
    check = _checked_verify(verify, "bearer_auth")

    async def bearer(conn: Connection, request: Request) -> Response | None:
        values = request.headers.get_all("Authorization")
        if len(values) > 1:
            return conn.respond(HTTPStatus.BAD_REQUEST, "Duplicate Authorization header.\n")
        scheme, _, token = (values[0] if values else "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            response = conn.respond(HTTPStatus.UNAUTHORIZED, "Missing bearer token.\n")
            response.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
            return response
        return await _admit(conn, check, token.strip())

    # What the AsyncAPI document shows on the operations this guards.
    bearer.__wsroute_security__ = Security("bearerAuth", {"type": "http", "scheme": "bearer"})  # type: ignore[attr-defined]
    return bearer


def query_token_auth(verify: Verify, *, param: str = "token") -> Middleware:
    """Authenticate with a token in the query string (``/ws?token=...``).

    Browsers cannot set headers on a WebSocket, so a short-lived token in the
    URL is the usual alternative. Missing token: 401; refused token: 403;
    the parameter given twice (``?token=a&token=b``): 400, as for two
    ``Authorization`` headers, since a proxy or log reading the other copy
    would disagree about who this is. The token is form-decoded (``+`` is a
    space), so clients encode it with ``encodeURIComponent``/``URLSearchParams``.
    The parameter's values are redacted from wsroute's logs once the app
    starts (see docs/security.md).
    """
    check = _checked_verify(verify, "query_token_auth")
    if not isinstance(param, str) or not param:
        raise TypeError(f"query_token_auth: 'param' must be a non-empty str (got {param!r})")

    async def query_token(conn: Connection, request: Request) -> Response | None:
        values = conn.query.get(param)
        if values is not None and len(values) > 1:
            return conn.respond(400, f"Duplicate {param!r} query parameter.\n")
        if not values or not values[0]:
            return conn.respond(HTTPStatus.UNAUTHORIZED, f"Missing {param!r} query parameter.\n")
        return await _admit(conn, check, values[0])

    # What the AsyncAPI document shows on the operations this guards.
    scheme = {"type": "httpApiKey", "name": param, "in": "query"}
    query_token.__wsroute_security__ = Security(  # type: ignore[attr-defined]
        "queryToken" if param == "token" else f"queryToken_{param}", scheme
    )
    query_token.redacted_query_params = (param,)  # type: ignore[attr-defined]  # read by App.startup
    return query_token


def allow_origins(origins: Sequence[str], *, allow_missing: bool = False) -> Middleware:
    """Refuse (403) handshakes whose ``Origin`` header is not in ``origins``.

    Browsers always send ``Origin``; non-browser clients usually do not, so a
    missing header is refused unless ``allow_missing=True``. This is the
    defence against cross-site WebSocket hijacking.

    Origins are compared as RFC 6454 says (:mod:`wsroute.origins`): scheme
    and host ignoring case, the scheme's default port equal to no port, so
    ``https://APP.Example.com:443`` is ``https://app.example.com``. There are
    no wildcards and no suffix matching; ``null``, other schemes, other
    ports and other hosts are refused.

    Raises:
        TypeError: ``origins`` is not a list of str.
        ValueError: an entry that can never match an ``Origin`` header (no
            scheme, a path, a wildcard, ``null``, a bad port), named with the
            expected form.
    """
    if isinstance(origins, str) or not all(isinstance(o, str) for o in origins):
        raise TypeError(f"allow_origins: 'origins' must be a list of str (got {origins!r})")
    allowed = frozenset(_allowed_origin(entry) for entry in origins)

    def origin_check(conn: Connection, request: Request) -> Response | None:
        values = request.headers.get_all("Origin")
        if len(values) > 1:
            return conn.respond(HTTPStatus.FORBIDDEN, "Duplicate Origin header.\n")
        if not values:
            return None if allow_missing else conn.respond(HTTPStatus.FORBIDDEN, "Missing Origin header.\n")
        try:
            origin = Origin.from_header(values[0])
        except ValueError:
            return conn.respond(HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
        if origin not in allowed:
            return conn.respond(HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
        return None

    return origin_check


def _allowed_origin(entry: str) -> Origin:
    try:
        return Origin.parse(entry)
    except ValueError as exc:
        raise ValueError(
            f"allow_origins: entry {entry!r} can never match an Origin header: {exc}; expected "
            "scheme://host[:port] such as 'https://app.example.com' or 'http://localhost:8000'"
        ) from None


def _checked_verify(verify: Verify, helper: str) -> tuple[Verify, bool]:
    if not callable(verify):
        raise TypeError(f"{helper}: 'verify' must be a callable taking the token (got {verify!r})")
    return verify, is_async_callable(verify)


async def _admit(conn: Connection, check: tuple[Verify, bool], token: str) -> Response | None:
    verify, is_async = check
    user = await verify(token) if is_async else verify(token)
    if inspect.isawaitable(user):
        # A plain function that returns a coroutine (a lambda around an async
        # lookup): a coroutine is truthy, so not awaiting it would admit anyone.
        user = await user
    if user is None or user is False:
        return conn.respond(HTTPStatus.FORBIDDEN, "Invalid token.\n")
    conn.ctx.user = user
    user_id = user if isinstance(user, (str, int)) else getattr(user, "id", None)
    conn.ctx.user_id = None if user_id is None else str(user_id)
    return None
