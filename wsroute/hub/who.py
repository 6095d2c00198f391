"""Naming a connection in the hub's log lines: route, client IP, user, id.

A line such as "closing slow consumer 3f2a…" is useless to an operator who
has to find the client; the hub names the connection the way a person looks
for it -- ``/rooms/{room} from 203.0.113.7 user alice (id 3f2a9c1e)`` -- and
logs through the connection's own logger (``conn.logger``), so a ``logger=``
given to websockets' ``serve()`` applies and the record carries the
``websocket`` attribute websockets adds (websockets' ``asyncio/server.py``
does the same).

The description is built lazily (:class:`Who` formats only if the record is
emitted), so a DEBUG line on the fan-out path costs nothing when DEBUG is off.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Who", "connection_fields", "describe"]


def connection_fields(conn: Any) -> dict[str, str | None]:
    """What names a connection, as separate fields (the JSON log format's keys).

    Works for wsroute's ``Connection`` (route, ``client_ip`` honouring trusted
    proxies, ``ctx.user_id``) and for a plain websockets connection (request
    path and peer address). Never raises: a log line must never fail.

    Returns:
        ``{"conn_id": first 8 hex digits of the id, "route": the route label (or
        the path pattern before a first message chose one, or the raw path of a
        plain websockets connection), "client_ip": ..., "user_id": ...}``; a
        value is None when unknown.
    """
    route = getattr(conn, "route", None)
    where = getattr(route, "label", None)
    if where is None:
        group = getattr(conn, "group", None)
        pattern = getattr(group, "pattern", None)
        where = getattr(pattern, "source", None)
    if where is None:
        request = getattr(conn, "request", None)
        where = request.path.partition("?")[0] if request is not None else None
    try:
        ip = getattr(conn, "client_ip", None)
        if ip is None:
            address = getattr(conn, "remote_address", None)
            ip = address[0] if address else None
    except Exception:  # the transport may be gone
        ip = None
    user = getattr(getattr(conn, "ctx", None), "user_id", None)
    conn_id = getattr(conn, "id", None)
    return {
        "conn_id": str(conn_id)[:8] if conn_id is not None else None,
        "route": where,
        "client_ip": ip,
        "user_id": str(user) if user is not None else None,
    }


def describe(conn: Any) -> str:
    """``<route> from <client ip> user <id> (id <8 hex digits>)``, with what is known.

    See :func:`connection_fields` for where each part comes from.
    """
    fields = connection_fields(conn)
    text = f"{fields['route'] or '?'} from {fields['client_ip'] or 'unknown address'}"
    if fields["user_id"] is not None:
        text += f" user {fields['user_id']}"
    if fields["conn_id"] is not None:
        text += f" (id {fields['conn_id']})"
    return text


class Who:
    """A connection's :func:`describe`, computed when a log record is formatted."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __str__(self) -> str:
        return describe(self.conn)
