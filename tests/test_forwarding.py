"""Client IP behind proxies: only trusted hops are believed, read from the right."""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

import wsroute
from wsroute.forwarding import LOCAL_PROXIES, TrustedProxies, client_ip_of
from wsroute.testing import serve_app


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


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("X-Forwarded-For", " 203.0.113.9 ,  10.1.2.3 "),), "203.0.113.9"),
        ((("X-Forwarded-For", ", ,203.0.113.9,,"),), "203.0.113.9"),
        ((("X-Forwarded-For", "[::ffff:203.0.113.9]:80"),), "203.0.113.9"),
        ((("X-Forwarded-For", "::FFFF:203.0.113.9"),), "203.0.113.9"),
        ((("Forwarded", 'for="[::ffff:203.0.113.9]"'),), "203.0.113.9"),
        ((("X-Forwarded-For", "fe80::1%eth0"),), "127.0.0.1"),
        ((("X-Forwarded-For", "[fe80::1%25eth0]:80"),), "127.0.0.1"),
        ((("X-Forwarded-For", "6.6.6.6, ::1%lo"),), "127.0.0.1"),
        ((("X-Forwarded-For", "203.0.113.9:99999"),), "127.0.0.1"),
        ((("X-Forwarded-For", "203.0.113.9:\xb2"),), "127.0.0.1"),  # '²'.isdigit() is True
        ((("X-Forwarded-For", "203.0.113.9:"),), "127.0.0.1"),
        ((("X-Forwarded-For", "6.6.6.6, unknown"),), "127.0.0.1"),
        ((("Forwarded", 'for="_gazonk"'),), "127.0.0.1"),
        ((("Forwarded", "for=_hidden, for=203.0.113.9"),), "203.0.113.9"),
        ((("Forwarded", 'for="\\203.0.113.9"'),), "127.0.0.1"),
        ((("Forwarded", "by=203.0.113.9"),), "127.0.0.1"),
        ((("Forwarded", 'for=""'),), "127.0.0.1"),
        ((("Forwarded", "for = 203.0.113.9 ; proto=wss"),), "203.0.113.9"),
        ((("X-Forwarded-For", ",".join(["6.6.6.6"] + ["10.0.0.1"] * 300 + ["203.0.113.9"])),), "203.0.113.9"),
        ((("X-Forwarded-For", ",".join(["203.0.113.9"] + ["10.0.0.1"] * 300)),), "203.0.113.9"),
    ],
)
def test_odd_entries_count_only_as_plain_ip_addresses(headers, expected) -> None:
    """Spaces and empty entries are skipped, mapped addresses become IPv4; zone ids, bad ports, _hidden aren't IPs."""
    assert client_ip_of(PROXY, request(*headers), TRUSTED) == expected


def test_zone_id_text_never_becomes_the_client_ip() -> None:
    """Even trusting everyone (the left-most entry wins), ``fe80::1%<text>`` gives the peer, not the text."""
    everyone = TrustedProxies.parse("*")
    forged = request(("X-Forwarded-For", "fe80::1%' OR 1=1 --, 10.1.2.3"))
    assert client_ip_of(PROXY, forged, everyone) == "127.0.0.1"


def test_mapped_peer_is_given_as_ipv4() -> None:
    """A dual-stack socket's ``::ffff:198.51.100.1`` peer is ``198.51.100.1``, trusted or not."""
    assert client_ip_of(("::ffff:198.51.100.1", 1, 0, 0), request(), TRUSTED) == "198.51.100.1"
    assert client_ip_of(("::ffff:198.51.100.1", 1, 0, 0), request(), None) == "198.51.100.1"
    assert client_ip_of(("::1", 1, 0, 0), request(), None) == "::1"


async def test_client_ip_on_a_real_server_ignores_zone_ids_and_unmaps() -> None:
    """Through a real handshake from 127.0.0.1, ``ws.client_ip`` is an IPv4 address or the peer, never header text."""
    app = wsroute.App(load_entrypoints=False, forwarded_allow_ips="127.0.0.1")

    @app.route("/ip")
    async def ip(ws):
        await ws.send(str(ws.client_ip))

    async with serve_app(app) as server:
        for header, expected in (
            ("[::ffff:203.0.113.7]:51234", "203.0.113.7"),
            ("fe80::1%eth0", "127.0.0.1"),
            ("203.0.113.7:65536", "127.0.0.1"),
        ):
            async with server.connect("/ip", additional_headers={"X-Forwarded-For": header}) as ws:
                assert await ws.recv() == expected


def test_ipv4_mapped_allow_list_entries_trust_their_ipv4_peers() -> None:
    """``::ffff:10.0.0.1`` and ``::ffff:10.0.0.0/104`` in the allow-list trust 10.0.0.1, however the peer is written."""
    mapped = TrustedProxies.parse("::ffff:10.0.0.1, ::ffff:10.1.0.0/112")
    assert "10.0.0.1" in mapped and "::ffff:10.0.0.1" in mapped and "10.1.0.9" in mapped
    assert "10.0.0.2" not in mapped and "10.2.0.1" not in mapped
    forwarded = request(("X-Forwarded-For", "203.0.113.7"))
    assert client_ip_of(("::ffff:10.0.0.1", 1, 0, 0), forwarded, mapped) == "203.0.113.7"
