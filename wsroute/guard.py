"""Enforcing the limits on live handshakes and connections, and counting every refusal.

:class:`Guard` is built once when the app starts, from the app's
:class:`~wsroute.limits.Limits` and each route's, into one :class:`Plan` per
path; the handshake then asks it two questions:

1. :meth:`Guard.check`, before the middleware: is the process full
   (``max_connections`` → 503 + ``Retry-After``), is this client IP over its
   ``handshake_rate`` (429 + ``Retry-After``) or its
   ``max_connections_per_ip`` (429)? Refusing here spares the middleware's
   work (a token check, a database call) for a client that is refused anyway.
2. :meth:`Guard.admit`, once the middleware accepted: is the user
   (``conn.ctx.user_id``, set by middleware) over ``max_connections_per_user``
   (429)? If not, the connection is counted and its per-connection limits
   (message rate, subscriptions, message size) are put on it.

Counts are released in :meth:`wsroute.Connection.connection_lost`, which
asyncio calls exactly once per connection however it ends. Per handshake the
cost is a few dict lookups and, only when a per-IP limit is configured, the
client address.

Every refusal is counted in :attr:`Guard.refusals` under
``(route pattern, reason)``; :meth:`wsroute.App.stats` reads it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import attrs
from websockets.frames import CloseCode
from websockets.http11 import Response

from .limits import ConnectionCounts, KeyedBuckets, Limits, Rate, TokenBucket

if TYPE_CHECKING:
    from .connection import Connection
    from .routes import RouteGroup

__all__ = ["REASONS", "Guard", "Plan", "Stats"]

#: Why something was refused, as :meth:`wsroute.App.stats` counts it.
REASONS = (
    "max_connections",  # 503 before the upgrade
    "max_connections_per_ip",  # 429 before the upgrade
    "max_connections_per_user",  # 429 before the upgrade
    "handshake_rate",  # 429 before the upgrade
    "message_rate",  # closed with 1008 (policy "close")
    "message_rate_drop",  # one message dropped (policy "drop")
    "max_subscriptions",  # subscribe() raised SubscriptionLimit
    "max_size",  # closed with 1009
)


@attrs.frozen
class Plan:
    """The limits of one path, resolved at start-up.

    Attributes:
        name: the route pattern, as counters and logs name it.
        per_ip, per_user: connection caps, or ``None``.
        rate: the message rate per connection, or ``None``.
        close: the message-rate policy is ``"close"`` (else ``"drop"``).
        max_subscriptions: topics per connection.
        max_size: the largest message in bytes, or ``None`` for the server's.
        needs_ip: a limit is kept per client IP, so the address is read.
    """

    name: str
    per_ip: int | None
    per_user: int | None
    rate: Rate | None
    close: bool
    max_subscriptions: int
    max_size: int | None
    needs_ip: bool

    @classmethod
    def of(cls, name: str, limits: Limits, app: Limits) -> Plan:
        """The plan of a path whose routes have ``limits`` (``app``: the app-wide ones)."""
        return cls(
            name=name,
            per_ip=limits.max_connections_per_ip,
            per_user=limits.max_connections_per_user,
            rate=limits.message_rate,
            close=limits.message_rate_policy == "close",
            max_subscriptions=limits.max_subscriptions,
            max_size=limits.max_size,
            needs_ip=limits.max_connections_per_ip is not None or app.handshake_rate is not None,
        )


@attrs.frozen
class Stats:
    """A snapshot of what the limits did, for dashboards and the metrics plugin.

    Attributes:
        open_connections: connections admitted and not yet closed, in this process.
        max_connections: the process's cap (the configured one or the default
            derived from the descriptor limit).
        refusals: ``{(route pattern, reason): count}`` since start-up; reasons
            are those of :data:`REASONS`. Handshakes refused before any route
            matched are not here (they are 404s, not limits).
    """

    open_connections: int
    max_connections: int
    refusals: Mapping[tuple[str, str], int]

    def total(self, reason: str | None = None) -> int:
        """Refusals summed over routes, for one reason or all of them."""
        return sum(n for (_, why), n in self.refusals.items() if reason is None or why == reason)


#: Seconds a client is told to wait when the server is full (``Retry-After``).
FULL_RETRY_AFTER = 1


class Guard:
    """The live state of the limits: counts per IP and user, handshake buckets, refusals.

    Args:
        limits: the app-wide limits.
        plans: each path's :class:`Plan`.
        max_connections: the resolved per-process cap.
    """

    def __init__(self, limits: Limits, plans: Mapping[RouteGroup, Plan], max_connections: int) -> None:
        self.limits = limits
        self.plans = dict(plans)
        self.max_connections = max_connections
        self.open = 0
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.per_ip = ConnectionCounts()
        self.per_user = ConnectionCounts()
        rate = limits.handshake_rate
        self.handshakes = KeyedBuckets(rate) if rate is not None else None

    @classmethod
    def build(cls, limits: Limits, groups: Iterable[RouteGroup], max_connections: int) -> Guard:
        """A guard for ``groups``, each planned from its routes' limits."""
        plans = {}
        for group in groups:
            route = group.plain if group.plain is not None else next(iter(group.by_message.values()))
            plans[group] = Plan.of(group.pattern.source, limits.for_route(dict(route.limits)), limits)
        return cls(limits, plans, max_connections)

    @property
    def rates_messages(self) -> bool:
        """Whether some path limits its message rate (then connections are rate-limited ones)."""
        return any(plan.rate is not None for plan in self.plans.values())

    def refused(self, name: str, reason: str) -> None:
        """Count one refusal."""
        self.refusals[(name, reason)] += 1

    def check(self, conn: Connection, group: RouteGroup) -> Response | None:
        """Refuse before the middleware: process full, handshake rate, connections per IP."""
        plan = self.plans[group]
        # One handler task per TCP connection, handshakes included: each holds a descriptor.
        if len(conn.server.handler_tasks) > self.max_connections:
            self.refused(plan.name, "max_connections")
            return _refuse(conn, HTTPStatus.SERVICE_UNAVAILABLE, "server full, try again later", FULL_RETRY_AFTER)
        if not plan.needs_ip:
            return None
        ip = conn._ip = conn.client_ip
        if self.handshakes is not None:
            wait = self.handshakes.take(ip, time.monotonic())
            if wait:
                self.refused(plan.name, "handshake_rate")
                return _refuse(conn, HTTPStatus.TOO_MANY_REQUESTS, "too many handshakes", math.ceil(wait))
        if plan.per_ip is not None and self.per_ip.get(ip) >= plan.per_ip:
            self.refused(plan.name, "max_connections_per_ip")
            return _refuse(conn, HTTPStatus.TOO_MANY_REQUESTS, "too many connections from this address")
        return None

    def admit(self, conn: Connection, group: RouteGroup) -> Response | None:
        """After the middleware: refuse a user over their cap, else count the connection and arm its limits."""
        plan = self.plans[group]
        user = None
        if plan.per_user is not None:
            user = getattr(conn.ctx, "user_id", None)
            if user is not None and self.per_user.get(user) >= plan.per_user:
                self.refused(plan.name, "max_connections_per_user")
                return _refuse(conn, HTTPStatus.TOO_MANY_REQUESTS, "too many connections for this user")
        ip = None
        if plan.per_ip is not None:
            ip = conn._ip
            if self.per_ip.get(ip) >= plan.per_ip:  # async middleware let several through at once
                self.refused(plan.name, "max_connections_per_ip")
                return _refuse(conn, HTTPStatus.TOO_MANY_REQUESTS, "too many connections from this address")
            self.per_ip.add(ip)
        if user is not None:
            self.per_user.add(user)
        self.open += 1
        conn._held = (self, plan, ip, user)
        conn.max_subscriptions = plan.max_subscriptions
        if plan.max_size is not None:
            conn.protocol.max_message_size = plan.max_size
        if plan.rate is not None:
            conn._bucket = TokenBucket(plan.rate, time.monotonic())  # type: ignore[attr-defined]
        return None

    def release(self, conn: Connection, held: tuple[Guard, Plan, Any, Any]) -> None:
        """Forget a closed connection (from ``connection_lost``); count a 1009 close."""
        _, plan, ip, user = held
        self.open -= 1
        if ip is not None:
            self.per_ip.remove(ip)
        if user is not None:
            self.per_user.remove(user)
        sent = conn.protocol.close_sent
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
            self.refused(plan.name, "max_size")

    def stats(self) -> Stats:
        """A snapshot of the counts (a copy: later refusals do not change it)."""
        return Stats(self.open, self.max_connections, dict(self.refusals))


def _refuse(conn: Connection, status: HTTPStatus, text: str, retry_after: int | None = None) -> Response:
    response = conn.respond(status, f"{status.phrase}: {text}.\n")
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, retry_after))
    return response
