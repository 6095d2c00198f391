"""Limits without sockets: rates, token buckets, per-key counts and option validation."""

from __future__ import annotations

import pytest

import wsroute
from wsroute.limits import ConnectionCounts, KeyedBuckets, Limits, Rate, TokenBucket, default_max_connections


@pytest.mark.parametrize(
    ("text", "count", "per"),
    [("50/s", 50, 1.0), ("20/m", 20, 60.0), ("100/10s", 100, 10.0), ("5 / min", 5, 60.0), ("2/h", 2, 3600.0)],
)
def test_rate_parse(text: str, count: float, per: float) -> None:
    """Rates are written count/period; the burst defaults to the count."""
    rate = Rate.parse(text)
    assert rate == Rate(count, per=per, burst=count)


@pytest.mark.parametrize("text", ["fast", "50", "50/fortnight", "-1/s", "0/s", "/s", 50])
def test_rate_parse_refuses_other_forms(text: object) -> None:
    """Anything that is not count/period fails at configuration with the expected form."""
    with pytest.raises(wsroute.ConfigurationError, match=r"expected a rate such as '50/s'|count must be"):
        Rate.parse(text, "message_rate")


def test_rate_with_burst() -> None:
    """Rate(50, per=1.0, burst=100) allows 100 at once, then 50 a second."""
    bucket = TokenBucket(Rate(50, per=1.0, burst=100), now=0.0)
    assert sum(bucket.take(0.0) for _ in range(150)) == 100
    assert sum(bucket.take(1.0) for _ in range(100)) == 50


def test_token_bucket_retry_after() -> None:
    """An empty bucket says how long until the next token."""
    bucket = TokenBucket(Rate(2, per=1.0), now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.retry_after(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5)


def test_keyed_buckets_are_per_key_and_bounded() -> None:
    """One key's flood does not spend another key's tokens; idle full buckets are forgotten."""
    buckets = KeyedBuckets(Rate(1, per=1.0), prune_at=100)
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) == pytest.approx(1.0)
    assert buckets.take("b", 0.0) == 0.0
    for i in range(1000):
        buckets.take(f"k{i}", 10.0 + i)  # each refills before the next prune
    assert len(buckets) <= 200


def test_connection_counts_forget_zero() -> None:
    """Counts go up and down per key and keys at zero take no memory."""
    counts = ConnectionCounts()
    counts.add("1.2.3.4")
    counts.add("1.2.3.4")
    counts.remove("1.2.3.4")
    assert counts.get("1.2.3.4") == 1
    counts.remove("1.2.3.4")
    assert counts.get("1.2.3.4") == 0
    assert len(counts) == 0


def test_default_max_connections_keeps_a_reserve() -> None:
    """The default leaves max(64, 10 %) descriptors free."""
    assert default_max_connections(1024) == 1024 - 102
    assert default_max_connections(256) == 256 - 64
    assert default_max_connections(65536) == 65536 - 6553
    assert default_max_connections(10) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_connections": 0}, "max_connections=0: expected a whole number >= 1"),
        ({"max_connections_per_ip": "10"}, "max_connections_per_ip='10': expected a whole number"),
        ({"handshake_rate": "lots"}, "handshake_rate='lots': expected a rate"),
        ({"message_rate_policy": "ignore"}, "message_rate_policy='ignore': expected one of 'close', 'drop'"),
        ({"max_subscriptions": -1}, "max_subscriptions=-1"),
    ],
)
def test_limits_validate_when_built(options: dict[str, object], message: str) -> None:
    """Every limit is checked when the Limits value is built, naming option and value."""
    with pytest.raises(wsroute.ConfigurationError, match=message):
        Limits(**options)  # type: ignore[arg-type]


def test_route_overrides() -> None:
    """A route overrides the options that make sense per route, and only those."""
    limits = Limits(max_connections=100, message_rate="10/s")
    route = limits.for_route({"message_rate": "1/s", "max_connections_per_ip": 2})
    assert route.message_rate == Rate(1, per=1.0)
    assert route.max_connections_per_ip == 2
    assert route.max_connections == 100
    with pytest.raises(wsroute.ConfigurationError, match="max_connections cannot be set per route"):
        limits.for_route({"max_connections": 5})
