"""A user's own ``process_request`` / ``process_response``, chained before wsroute's.

websockets' extension points are plain callables; wsroute needs both for
itself (routing and middleware in ``process_request``, plugin headers in
``process_response``). Rather than reserve them, wsroute chains a user's
hook first and its own second, as websockets' own router does
(``websockets/asyncio/router.py``)::

    def maintenance(connection, request):
        if MAINTENANCE:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "back soon\n")
        return None                      # go on: wsroute routes the request

    app = wsroute.App(process_request=maintenance)

* ``process_request(connection, request)``: a ``Response`` answers the
  request (no route is matched, no middleware runs); ``None`` continues with
  wsroute's routing. It runs before routing, so ``connection.route`` is
  ``None`` there.
* ``process_response(connection, request, response)``: runs first; a
  ``Response`` it returns replaces websockets' response, then wsroute's plugin
  headers are added to whichever response is sent.

Either may be a plain function or a coroutine function (or return an
awaitable). When the user's hook and wsroute's are both synchronous the chain
is a plain function, so a handshake costs no extra coroutine; with no user
hook, wsroute's own is passed to websockets unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.http11 import Request, Response

from .callbacks import is_async_callable

__all__ = ["chain_process_request", "chain_process_response"]

ProcessRequest = Callable[[Any, Request], "Awaitable[Response | None] | Response | None"]
ProcessResponse = Callable[[Any, Request, Response], "Awaitable[Response | None] | Response | None"]


def chain_process_request(user: ProcessRequest | None, ours: ProcessRequest) -> ProcessRequest:
    """``user`` then ``ours``: the first ``Response`` answers; ``None`` goes on."""
    if user is None:
        return ours

    async def finish(pending: Awaitable[Response | None], conn: Any, request: Request) -> Response | None:
        response = await pending
        if response is not None:
            return response
        routed = ours(conn, request)
        return await routed if inspect.isawaitable(routed) else routed

    def process_request(conn: Any, request: Request) -> Awaitable[Response | None] | Response | None:
        _remember_task(conn)
        response = user(conn, request)
        if response is None:
            return ours(conn, request)
        if inspect.isawaitable(response):
            return finish(response, conn, request)
        return response

    async def process_request_async(conn: Any, request: Request) -> Response | None:
        _remember_task(conn)
        return await finish(user(conn, request), conn, request)  # type: ignore[arg-type]

    return process_request_async if is_async_callable(user) else process_request


def chain_process_response(user: ProcessResponse | None, ours: ProcessResponse | None) -> ProcessResponse | None:
    """``user`` then ``ours``: ``ours`` sees (and may change) the response ``user`` chose."""
    if user is None:
        return ours
    if ours is None:
        return user
    after = ours

    async def finish(
        pending: Awaitable[Response | None], conn: Any, request: Request, response: Response
    ) -> Response | None:
        replaced = await pending
        final = after(conn, request, response if replaced is None else replaced)
        if inspect.isawaitable(final):
            final = await final
        return final if final is not None else replaced

    def process_response(
        conn: Any, request: Request, response: Response
    ) -> Awaitable[Response | None] | Response | None:
        replaced = user(conn, request, response)
        if replaced is not None and inspect.isawaitable(replaced):
            return finish(replaced, conn, request, response)
        final = after(conn, request, response if replaced is None else replaced)
        if inspect.isawaitable(final):
            return _keep(final, replaced)
        return final if final is not None else replaced

    async def process_response_async(conn: Any, request: Request, response: Response) -> Response | None:
        return await finish(user(conn, request, response), conn, request, response)  # type: ignore[arg-type]

    return process_response_async if is_async_callable(user) else process_response


async def _keep(pending: Awaitable[Response | None], replaced: Response | None) -> Response | None:
    final = await pending
    return final if final is not None else replaced


def _remember_task(conn: Any) -> None:
    """Keep the handshake's task on a wsroute connection before a user's hook can hang (``open_timeout`` cancels it)."""
    if hasattr(conn, "_handler_task"):
        conn._handler_task = asyncio.current_task()
