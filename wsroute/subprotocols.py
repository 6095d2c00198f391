"""Subprotocols per route: checked at registration, negotiated for the matched route.

A client lists the subprotocols it speaks in ``Sec-WebSocket-Protocol``; the
server picks one and names it in its answer (RFC 6455 §1.9 and §4.2.2).
websockets negotiates against one server-wide list; wsroute gives each route
its own (``@app.route("/mqtt", subprotocols=["mqtt"])``, with
``App(subprotocols=[...])`` as the default) and plugs into websockets'
``select_subprotocol=`` extension point. Routing runs first, in
``process_request``, so the negotiation reads the matched route's list from
the connection.

The rules are websockets' own, applied to that list:

* the route has no list → no subprotocol, whatever the client offers;
* the client offers none → 400 ``missing subprotocol``;
* a shared one → the first of the *route's* list that the client offered;
* nothing shared → 400 ``invalid subprotocol; expected one of …``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from websockets.exceptions import NegotiationError
from websockets.typing import Subprotocol

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["check_subprotocols", "select_subprotocol"]

# RFC 6455 §4.1: each value is a token (RFC 9110 §5.6.2).
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


def check_subprotocols(value: Any, where: str) -> tuple[str, ...]:
    """Validate a list of subprotocols and return it as a tuple.

    Args:
        value: a list or tuple of tokens, e.g. ``["mqtt"]``; empty for none.
        where: what to name in the error, e.g. ``"route '/mqtt'"``.

    Raises:
        ValueError: not a list of distinct tokens; the message names
            ``where``, the bad value and the expected form. Callers turn it
            into their own configuration error.
    """
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: subprotocols={value!r}; expected a list of str such as ['mqtt'] (or [] for none)")
    for item in value:
        if not isinstance(item, str) or _TOKEN.fullmatch(item) is None:
            raise ValueError(
                f"{where}: subprotocol {item!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
            )
    duplicates = sorted({item for item in value if list(value).count(item) > 1})
    if duplicates:
        raise ValueError(f"{where}: subprotocol {duplicates[0]!r} is listed twice")
    return tuple(value)


def select_subprotocol(conn: Connection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """websockets' ``select_subprotocol`` hook, answering for the route matched in ``process_request``.

    Args:
        conn: the connection; ``conn.group`` is the matched route group.
        offered: what the client listed, in its order.

    Returns:
        The first subprotocol of the route's list that the client offered,
        or ``None`` when the route has no list.

    Raises:
        NegotiationError: the route has a list and the client offered none of
            it; websockets answers 400 with the message.
    """
    group = conn.group
    supported = group.subprotocols if group is not None else ()
    if not supported:
        return None
    if not offered:
        raise NegotiationError(f"missing subprotocol; this path expects one of {', '.join(supported)}")
    for subprotocol in supported:
        if subprotocol in offered:
            return Subprotocol(subprotocol)
    raise NegotiationError(f"invalid subprotocol; expected one of {', '.join(supported)}")
