"""Limits: connection caps and token buckets. Every decision is a pure function of counts and time.

What wsroute refuses, and how a client sees it (the answer always comes
before the upgrade, so no WebSocket is opened and no handler runs):

===============================  ==========================  ============================
limit                            scope                       past it
===============================  ==========================  ============================
``max_connections``              open connections, process   503 + ``Retry-After``
``max_connections_per_ip``       per ``ws.client_ip``        429
``max_connections_per_user``     per ``conn.ctx.user_id``    429
``handshake_rate``               per client IP, token bucket 429 + ``Retry-After``
``message_rate``                 per connection              close 1008 / drop
``max_subscriptions``            topics per connection       ``SubscriptionLimit`` raised
===============================  ==========================  ============================

The anchors are Centrifugo's ``connection_limit``, ``connection_rate_limit``,
``user_connection_limit`` and ``channel_limit``, and the OWASP WebSocket
cheat sheet ("rate limit messages and connections per client").

This module never touches a socket or a clock: callers pass ``now``
(``time.monotonic()``), so the rules are tested without sleeping.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import attrs

from .errors import ConfigurationError

__all__ = [
    "ConnectionCounts",
    "KeyedBuckets",
    "Limits",
    "Rate",
    "TokenBucket",
    "default_max_connections",
]

_RATE_RE = re.compile(
    r"^\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<n>\d+(?:\.\d+)?)?\s*(?P<unit>ms|s|sec|second|m|min|minute|h|hour)\s*$"
)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_UNIT_SECONDS |= {"h": 3600.0, "hour": 3600.0}
MESSAGE_RATE_POLICIES = ("close", "drop")


@attrs.frozen
class Rate:
    """``count`` events per ``per`` seconds, with bursts of up to ``burst`` events.

    A token bucket of ``burst`` tokens refilled at ``count / per`` tokens per
    second: a client may send ``burst`` events at once, then ``count`` every
    ``per`` seconds.

    Args:
        count: events allowed per period (> 0).
        per: the period in seconds (> 0), default 1.
        burst: bucket size (>= 1); default ``count``.

    Raises:
        ConfigurationError: a non-positive count or period, or a burst below 1.

    Example::

        Rate.parse("50/s")                 # Rate(50, per=1.0, burst=50)
        Rate.parse("100/10s")              # 100 per 10 seconds
        wsroute.Rate(50, per=1.0, burst=100)
    """

    count: float
    per: float = 1.0
    burst: float | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.count, (int, float)) or isinstance(self.count, bool) or self.count <= 0:
            raise ConfigurationError(f"Rate: count must be a number > 0 (got {self.count!r})")
        if not isinstance(self.per, (int, float)) or isinstance(self.per, bool) or self.per <= 0:
            raise ConfigurationError(f"Rate: per must be a number of seconds > 0 (got {self.per!r})")
        if self.burst is None:
            object.__setattr__(self, "burst", max(1.0, float(self.count)))
        elif not isinstance(self.burst, (int, float)) or isinstance(self.burst, bool) or self.burst < 1:
            raise ConfigurationError(f"Rate: burst must be a number >= 1 (got {self.burst!r})")

    @property
    def per_second(self) -> float:
        """Tokens added per second."""
        return self.count / self.per

    @property
    def capacity(self) -> float:
        """The bucket size (``burst``)."""
        assert self.burst is not None  # set in __attrs_post_init__
        return float(self.burst)

    @classmethod
    def parse(cls, value: Any, where: str = "rate") -> Rate | None:
        """A :class:`Rate` from ``"50/s"``, ``"20/m"``, ``"100/10s"``, a Rate, or ``None`` (no limit).

        Raises:
            ConfigurationError: anything else, quoting the value and the expected form.
        """
        if value is None or isinstance(value, Rate):
            return value
        found = _RATE_RE.match(value) if isinstance(value, str) else None
        if found is None:
            raise ConfigurationError(
                f"{where}={value!r}: expected a rate such as '50/s', '20/m', '100/10s' "
                "or wsroute.Rate(50, per=1.0, burst=100)"
            )
        period = float(found["n"] or 1) * _UNIT_SECONDS[found["unit"]]
        return cls(float(found["count"]), per=period)

    def __str__(self) -> str:
        return f"{self.count:g}/{self.per:g}s (burst {self.capacity:g})"


class TokenBucket:
    """A token bucket: ``take(now)`` spends one token if there is one.

    Starts full. ``now`` is a monotonic time in seconds.
    """

    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate.per_second
        self.capacity = rate.capacity
        self.tokens = self.capacity
        self.last = now

    def _refill(self, now: float) -> None:
        elapsed = now - self.last
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.last = now

    def take(self, now: float) -> bool:
        """Spend one token; ``False`` when the bucket is empty (the event is over the rate)."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self, now: float) -> float:
        """Seconds until one token is available again (0 when one is)."""
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate)

    def is_full(self, now: float) -> bool:
        """Whether the bucket has refilled completely (its state can be forgotten)."""
        self._refill(now)
        return self.tokens >= self.capacity


class KeyedBuckets:
    """One token bucket per key (a client IP), with memory bounded by pruning full buckets.

    A full bucket behaves exactly like a new one, so forgetting it changes no
    decision; pruning runs when the table doubles past ``prune_at`` entries,
    so a flood from many addresses costs memory only while they are active.
    """

    __slots__ = ("_buckets", "_next_prune", "prune_at", "rate")

    def __init__(self, rate: Rate, prune_at: int = 10_000) -> None:
        self.rate = rate
        self.prune_at = prune_at
        self._next_prune = prune_at
        self._buckets: dict[Any, TokenBucket] = {}

    def take(self, key: Any, now: float) -> float:
        """Spend a token of ``key``'s bucket: 0.0 when allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._next_prune:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, now)
        if bucket.take(now):
            return 0.0
        return bucket.retry_after(now) or 1e-3

    def _prune(self, now: float) -> None:
        self._buckets = {key: b for key, b in self._buckets.items() if not b.is_full(now)}
        self._next_prune = max(self.prune_at, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionCounts:
    """Open connections per key (client IP, user id); keys at zero are removed."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: Counter[Any] = Counter()

    def get(self, key: Any) -> int:
        return self._counts.get(key, 0)

    def add(self, key: Any) -> None:
        self._counts[key] += 1

    def remove(self, key: Any) -> None:
        count = self._counts[key] - 1
        if count > 0:
            self._counts[key] = count
        else:
            del self._counts[key]

    def __len__(self) -> int:
        return len(self._counts)


def default_max_connections(nofile_soft: int, reserve: int | None = None) -> int:
    """The default ``max_connections``: the descriptor limit minus a reserve.

    Each connection holds one file descriptor; the reserve leaves room for the
    listening sockets, log files, a broker's connections and what the app
    opens itself, so the server answers 503 before ``accept()`` starts
    failing with EMFILE. Reserve: ``max(64, nofile_soft // 10)``.

    Args:
        nofile_soft: the soft ``RLIMIT_NOFILE`` (after raising it to the hard limit).
        reserve: descriptors kept free (default as above).
    """
    if reserve is None:
        reserve = max(64, nofile_soft // 10)
    return max(1, nofile_soft - reserve)


def _positive_int_or_none(name: str) -> Any:
    def check(_: Any, __: Any, value: Any) -> None:
        if value is not None and (type(value) is not int or value < 1):
            raise ConfigurationError(f"{name}={value!r}: expected a whole number >= 1, or None for no limit")

    return check


def _handshake_rate(value: Any) -> Rate | None:
    return Rate.parse(value, "handshake_rate")


def _message_rate(value: Any) -> Rate | None:
    return Rate.parse(value, "message_rate")


def _policy(_: Any, __: Any, value: Any) -> None:
    if value not in MESSAGE_RATE_POLICIES:
        raise ConfigurationError(
            f"message_rate_policy={value!r}: expected one of {', '.join(map(repr, MESSAGE_RATE_POLICIES))}"
        )


#: Topics one connection may subscribe to unless configured otherwise.
DEFAULT_MAX_SUBSCRIPTIONS = 1000


@attrs.frozen
class Limits:
    """Limits of an app or a route, validated when built.

    Attributes:
        max_connections: open connections per process; ``None`` means the
            default derived from the descriptor limit at start-up.
        max_connections_per_ip: per ``ws.client_ip``; ``None``: off.
        max_connections_per_user: per ``conn.ctx.user_id``; ``None``: off.
        handshake_rate: per client IP; ``None``: off.
        message_rate: per connection; ``None``: off.
        message_rate_policy: ``"close"`` (1008) or ``"drop"``.
        max_subscriptions: topics per connection.
        max_size: largest incoming message in bytes (1009 past it); ``None``
            keeps websockets' own setting (1 MiB by default).

    Raises:
        ConfigurationError: naming the option, the value and what is expected.
    """

    max_connections: int | None = attrs.field(default=None, validator=_positive_int_or_none("max_connections"))
    max_connections_per_ip: int | None = attrs.field(
        default=None, validator=_positive_int_or_none("max_connections_per_ip")
    )
    max_connections_per_user: int | None = attrs.field(
        default=None, validator=_positive_int_or_none("max_connections_per_user")
    )
    handshake_rate: Rate | None = attrs.field(default=None, converter=_handshake_rate)
    message_rate: Rate | None = attrs.field(default=None, converter=_message_rate)
    message_rate_policy: str = attrs.field(default="close", validator=_policy)
    max_subscriptions: int = attrs.field(
        default=DEFAULT_MAX_SUBSCRIPTIONS, validator=_positive_int_or_none("max_subscriptions")
    )
    max_size: int | None = attrs.field(default=None, validator=_positive_int_or_none("max_size"))

    #: The options a route may override.
    ROUTE_OPTIONS = (
        "max_connections_per_ip",
        "max_connections_per_user",
        "message_rate",
        "message_rate_policy",
        "max_subscriptions",
        "max_size",
    )

    def for_route(self, overrides: dict[str, Any]) -> Limits:
        """These limits with a route's overrides applied (validated the same way).

        Raises:
            ConfigurationError: an option a route cannot override.
        """
        if not overrides:
            return self
        unknown = sorted(set(overrides) - set(self.ROUTE_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"{unknown[0]} cannot be set per route (per route: {', '.join(self.ROUTE_OPTIONS)})"
            )
        return attrs.evolve(self, **overrides)
