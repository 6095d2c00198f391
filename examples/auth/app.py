"""Token authentication in middleware, an Origin allow-list, and the user reaching the handler.

Run it (from the repository root, after ``scripts/setup``)::

    .venv/bin/wsroute run examples.auth.app:app --port 8765

Everything is decided in the handshake, before the upgrade:

1. ``allow_origins``: a browser page from another site gets 403 (cross-site
   WebSocket hijacking). Clients that send no ``Origin`` (not browsers) are
   let through: they authenticate with a token, which another site's page
   does not have.
2. ``token_auth``: ``Authorization: Bearer <token>`` or, for browsers, which
   cannot set headers, ``?token=<token>``. No token or an unknown one: 401.
3. ``/admin`` also needs an admin: 403 for the others.

The handler reads the user from ``ws.ctx.user``.
"""

from __future__ import annotations

import attrs

import wsroute


@attrs.frozen
class User:
    """Who a token belongs to; ``id`` is what the hub's ``send_to_user`` uses."""

    id: str
    admin: bool = False


#: token -> user. A real app asks its session store or verifies a signed token here.
TOKENS = {"t-ann": User("ann"), "t-root": User("root", admin=True)}
#: The pages allowed to open WebSockets to this server.
ORIGINS = ["http://localhost:8000", "https://app.example.com"]


def token_of(conn: wsroute.Connection, request: wsroute.Request) -> str | None:
    """The bearer token of the Authorization header, else the ``token`` query parameter."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    values = conn.query.get("token")
    return values[0] if values else None


def token_auth(conn: wsroute.Connection, request: wsroute.Request) -> wsroute.Response | None:
    """401 without a valid token; otherwise the user goes to ``conn.ctx``."""
    user = TOKENS.get(token_of(conn, request) or "")
    if user is None:
        response = conn.respond(401, "missing or invalid token\n")
        response.headers["WWW-Authenticate"] = 'Bearer realm="auth-example"'
        return response
    conn.ctx.user = user
    conn.ctx.user_id = user.id
    return None


def require_admin(conn: wsroute.Connection, request: wsroute.Request) -> wsroute.Response | None:
    """403 for users who are not admins (runs after token_auth)."""
    return None if conn.ctx.user.admin else conn.respond(403, "admins only\n")


app = wsroute.App()
app.middleware(wsroute.allow_origins(ORIGINS, allow_missing=True))
app.middleware(token_auth)


@app.route("/me")
async def me(ws: wsroute.Connection) -> None:
    """Greet the authenticated user, then echo."""
    user = ws.ctx.user
    await ws.send_json({"type": "hello", "user": user.id, "admin": user.admin})
    async for message in ws:
        await ws.send(message)


@app.route("/admin", middleware=[require_admin])
async def admin(ws: wsroute.Connection) -> None:
    """Only admins get here."""
    await ws.send_json({"type": "admin", "user": ws.ctx.user.id})
