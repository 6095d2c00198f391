"""Client IP behind proxies: only trusted hops are believed, read from the right."""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from wsroute.forwarding import LOCAL_PROXIES, TrustedProxies, client_ip_of


def request(*headers: tuple[str, str]) -> Request:
    return Request("/", Headers(list(headers)))


PROXY = ("127.0.0.1", 50000)
TRUSTED = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("X-Forwarded-For", "203.0.113.9"),), "203.0.113.9"),
        ((("X-Forwarded-For", "6.6.6.6, 203.0.113.9"),), "203.0.113.9"),
        ((("X-Forwarded-For", "203.0.113.9, 10.1.2.3"),), "203.0.113.9"),
        ((("X-Forwarded-For", "<script>"),), "127.0.0.1"),
        ((("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")), "203.0.113.9"),
        ((("Forwarded", 'for="[2001:db8::1]:4711";proto=https'),), "2001:db8::1"),
        ((("Forwarded", "for=198.51.100.7:1234, for=10.0.0.2"),), "198.51.100.7"),
        ((("X-Forwarded-For", "203.0.113.7:51234"),), "203.0.113.7"),
        ((("X-Forwarded-For", "[2001:db8::1]:443"),), "2001:db8::1"),
        ((("X-Forwarded-For", "[2001:db8::1]"),), "2001:db8::1"),
        ((("X-Forwarded-For", "2001:db8::1"),), "2001:db8::1"),
        ((("X-Forwarded-For", "6.6.6.6:1, 203.0.113.7:51234, 10.1.2.3:8080"),), "203.0.113.7"),
        ((("X-Forwarded-For", "203.0.113.7:http"),), "127.0.0.1"),
        ((("X-Forwarded-For", "[2001:db8::1]:x"),), "127.0.0.1"),
        ((("X-Forwarded-For", "203.0.113.7:51234:1"),), "127.0.0.1"),
        ((("Forwarded", 'for="[2001:db8::1]:443"'),), "2001:db8::1"),
        ((("Forwarded", "For=203.0.113.7:1234;proto=wss"),), "203.0.113.7"),
        ((("Forwarded", "for=unknown"),), "127.0.0.1"),
        ((), "127.0.0.1"),
    ],
)
def test_trusted_proxy_headers_are_read_from_the_right(headers, expected) -> None:
    """The first untrusted address from the right is the client; junk falls back to the peer."""
    assert client_ip_of(PROXY, request(*headers), TRUSTED) == expected


def test_untrusted_peer_headers_are_ignored() -> None:
    """A peer that is not a trusted proxy cannot choose its address."""
    assert client_ip_of(("198.51.100.1", 1), request(("X-Forwarded-For", "1.2.3.4")), TRUSTED) == "198.51.100.1"


def test_everyone_trusted_takes_the_left_most() -> None:
    """With '*' every hop is trusted, so the left-most valid entry is the client."""
    everyone = TrustedProxies.parse("*")
    assert client_ip_of(PROXY, request(("X-Forwarded-For", "203.0.113.9, 10.1.2.3")), everyone) == "203.0.113.9"


def test_bad_trusted_entry_is_refused() -> None:
    """A malformed allow-list entry names itself and the expected form."""
    with pytest.raises(ValueError, match="'nope' is not an IP address or network"):
        TrustedProxies.parse("127.0.0.1, nope")


def test_ipv4_mapped_peer_matches_its_ipv4_network() -> None:
    """A dual-stack peer ::ffff:127.0.0.1 is the trusted 127.0.0.1."""
    assert "::ffff:127.0.0.1" in TRUSTED
    assert client_ip_of(("::ffff:127.0.0.1", 1, 0, 0), request(("X-Forwarded-For", "203.0.113.9")), TRUSTED) == (
        "203.0.113.9"
    )


def test_local_proxies_are_ipv4_and_ipv6_loopback() -> None:
    """The command line's default trusts a proxy on 127.0.0.1 and on ::1, and nothing else."""
    local = TrustedProxies.parse(LOCAL_PROXIES)
    assert "127.0.0.1" in local and "::1" in local
    assert "127.0.0.2" not in local and "::2" not in local and "10.0.0.1" not in local
    forwarded = request(("X-Forwarded-For", "203.0.113.7:51234"))
    assert client_ip_of(("::1", 40000, 0, 0), forwarded, local) == "203.0.113.7"
