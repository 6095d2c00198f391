"""Ending a connection by raising: :class:`Deny` before the upgrade, :class:`Close` after it.

Starlette's ``HTTPException`` and Channels' ``DenyConnection`` /
``StopConsumer`` let code deep in a call stack decide a connection's fate
without threading a return value up. wsroute has the two cases a WebSocket
has::

    @app.middleware
    async def only_members(conn, request):
        if not await is_member(request.headers.get("X-User")):
            raise wsroute.Deny(403, "members only")          # HTTP 403, no upgrade

    @app.route("/game")
    async def game(ws):
        move = await ws.recv_json()
        if not valid(move):
            raise wsroute.Close(4001, "illegal move")        # close frame 4001

* ``Deny`` raised by middleware or a per-connection dependency answers that
  HTTP status (with ``reason`` as a plain-text body and any ``headers``)
  instead of ``101 Switching Protocols``; the handler never runs.
* ``Close`` raised anywhere in a handler — a function handler, a Handler's
  ``on_connect`` / ``@on`` method / ``on_message``, a task from
  ``Handler.spawn`` — closes the connection with that code and reason (cut
  to the 123 bytes a close frame carries). It is logged at INFO, not as a
  failure, and the ``wsroute_handle_exception`` hook is not consulted.
* :class:`BadMessage` is the ``Close`` that ``recv_json()`` raises for a
  message that is not JSON: uncaught, it closes with 1008 (1003 for a binary
  frame) and a reason saying what was wrong; caught, the handler may answer
  instead.

Both check their arguments when raised, so a wrong status or close code is
a ``ValueError`` at the ``raise`` line, not a protocol error later.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from websockets.frames import EXTERNAL_CLOSE_CODES, CloseCode

from .reasons import fit_close_reason

__all__ = ["BadMessage", "Close", "Deny"]


class Deny(Exception):
    """Refuse the handshake with an HTTP status; raise it in middleware or a per-connection dependency.

    Args:
        status: an HTTP status from 300 to 599 other than 101 (``403``,
            ``HTTPStatus.UNAUTHORIZED``…).
        reason: the plain-text body (a newline is added); default: the
            status's phrase, e.g. ``"Forbidden"``.
        headers: extra response headers, e.g. ``{"WWW-Authenticate": "Bearer"}``.

    Raises:
        ValueError: ``status`` is not an int in 300..599.
    """

    def __init__(self, status: int, reason: str = "", headers: Mapping[str, str] | None = None) -> None:
        if (type(status) is not int and not isinstance(status, HTTPStatus)) or not 300 <= status <= 599:
            raise ValueError(f"Deny(status={status!r}): expected an HTTP status from 300 to 599, such as 403")
        self.status = int(status)
        self.reason = reason or _phrase(self.status)
        self.headers = dict(headers or {})
        super().__init__(self.status, self.reason)


class Close(Exception):
    """Close the connection with ``code`` and ``reason``; raise it anywhere in a handler.

    Args:
        code: 1000 (normal), another code a peer may send (1001, 1003, 1007,
            1008, 1009, 1011…), or an application code from 3000 to 4999.
        reason: the close reason, cut at a character boundary to 123 bytes
            of UTF-8 (:func:`wsroute.reasons.fit_close_reason`).

    Raises:
        ValueError: a code that may not be sent in a close frame (1005, 1006,
            1015, 2000…).
    """

    def __init__(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        if (type(code) is not int and not isinstance(code, CloseCode)) or not (
            code in EXTERNAL_CLOSE_CODES or 3000 <= code <= 4999
        ):
            raise ValueError(
                f"Close(code={code!r}): expected 1000, another code a close frame may carry "
                "(1001, 1003, 1007, 1008, 1011…) or an application code from 3000 to 4999"
            )
        self.code = int(code)
        self.reason = fit_close_reason(reason) if reason else ""
        super().__init__(self.code, self.reason)


class BadMessage(Close):
    """A message that is not what ``recv_json()`` expects; a :class:`Close` with 1008 or 1003.

    Attributes:
        problem: what was wrong, e.g. ``"message is not valid JSON"``.
    """

    def __init__(self, problem: str, code: int = CloseCode.POLICY_VIOLATION) -> None:
        super().__init__(code, problem)
        self.problem = problem


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Denied"
