"""Origin allow-lists compared as RFC 6454 says, against a real server."""

from __future__ import annotations

import asyncio
import logging

import pytest

import wsroute
from wsroute.origins import Origin
from wsroute.testing import serve_app

ALLOWED = ["https://app.example.com", "http://localhost:8000", "https://bücher.example", "http://[::1]:8080"]


def origin_app(**options) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)
    app.middleware(wsroute.allow_origins(ALLOWED, **options))

    @app.route("/x")
    async def x(ws):
        await ws.send(ws.request.headers.get("Origin", "-"))

    return app


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("https://APP.Example.com", "https://app.example.com"),
        ("HTTPS://app.example.com:443", "https://app.example.com"),
        ("wss://app.example.com:443/", "wss://app.example.com"),
        ("ws://app.example.com:80", "ws://app.example.com"),
        ("http://app.example.com:443", "http://app.example.com:443"),
        ("http://[0:0::1]:80", "http://[::1]"),
        ("https://Bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origin_normalises_case_default_ports_and_hosts(text: str, normalised: str) -> None:
    """Scheme and host lose their case, a default port is no port, IDNA and IPv6 take their canonical form."""
    assert str(Origin.parse(text)) == normalised


@pytest.mark.parametrize(
    "header",
    [
        "https://app.example.com",
        "https://APP.Example.com",
        "HTTPS://app.example.com:443",
        "https://app.example.com/",
        "http://LOCALHOST:8000",
        "https://xn--bcher-kva.example",
        "http://[::1]:8080",
    ],
)
async def test_listed_origin_is_admitted_in_any_equivalent_spelling(header: str) -> None:
    """An Origin naming a listed origin is admitted whatever its case or default port."""
    async with serve_app(origin_app()) as server, server.connect("/x", origin=header) as ws:
        assert await ws.recv() == header


@pytest.mark.parametrize(
    "header",
    [
        "https://evil.example",
        "null",
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://localhost",
        "http://localhost:8001",
        "https://app.example.com.evil.com",
        "https://evil-app.example.com",
        "https://app.example.com@evil.com",
        "https://app.example.com/path",
        "app.example.com",
        "*",
        "",
    ],
)
async def test_other_origins_stay_refused(header: str, caplog) -> None:
    """Foreign hosts, null, other schemes or ports, suffix tricks and malformed values get 403, logged as nothing."""
    caplog.set_level(logging.WARNING)
    async with serve_app(origin_app()) as server:
        answer = await server.handshake("/x", {"Origin": header})
        assert (answer.status, answer.text) == (403, "Origin not allowed.\n")
    assert caplog.records == []


async def test_missing_origin_is_refused_unless_allowed() -> None:
    """No Origin header gets 403, unless ``allow_missing=True``."""
    async with serve_app(origin_app()) as server:
        answer = await server.handshake("/x")
        assert (answer.status, answer.text) == (403, "Missing Origin header.\n")
    async with serve_app(origin_app(allow_missing=True)) as server, server.connect("/x") as ws:
        assert await ws.recv() == "-"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("app.example.com", "it has no scheme"),
        ("https://app.example.com/ws", "it has a path ('/ws')"),
        ("https://*.example.com", "wildcards are not supported; list each origin"),
        ("*", "wildcards are not supported"),
        ("null", "'null' is the opaque origin that pages of any site can send"),
        ("https://app.example.com:70000", "port '70000' is not a number from 0 to 65535"),
        ("https://app.example.com?x=1", "it has more than scheme, host and port ('?x=1')"),
        ("https://", "it is not scheme://host[:port]"),
    ],
)
def test_entry_that_can_never_match_raises_at_creation(entry: str, why: str) -> None:
    """allow_origins() raises ValueError naming the entry, the reason and the expected form."""
    with pytest.raises(ValueError) as caught:
        wsroute.allow_origins(["https://ok.example", entry])
    message = str(caught.value)
    assert message.startswith(f"allow_origins: entry {entry!r} can never match an Origin header: {why}")
    assert message.endswith("expected scheme://host[:port] such as 'https://app.example.com' or 'http://localhost:8000'")


def test_websockets_origins_option_is_refused() -> None:
    """``App(origins=[...])`` (websockets' exact, case-sensitive check) is refused in favour of allow_origins."""
    with pytest.raises(wsroute.ConfigurationError, match=r"origins= cannot be passed to wsroute: .*allow_origins"):
        wsroute.App(load_entrypoints=False, origins=["https://app.example.com"])
    app = wsroute.App(load_entrypoints=False)
    with pytest.raises(wsroute.ConfigurationError, match="origins= cannot be passed to wsroute"):
        app.serve("127.0.0.1", 0, origins=["https://app.example.com"])


@pytest.mark.parametrize(
    "header",
    [
        "https://\xaapp.example.com",  # U+00AA folds to 'a' in Python's IDNA codec; browsers send ASCII
        "https://b\xfccher.example",  # the listed host, but not in the xn-- form browsers send
        "https://app.example.com.",
        "https://user@app.example.com",
        "https://app.example.com:443@evil.com",
        "https://app.example.com:",
        "https://app.example.com https://evil.example",
        "https://app.example.com,https://evil.example",
        "https://app%2eexample.com",
        "http://[::1%25lo]:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "https://app.example.com:99999",
        "https://xn--strae-oqa.de",
    ],
)
async def test_look_alike_origins_are_refused(header: str, caplog) -> None:
    """Non-ASCII, trailing-dot, userinfo, lists, zone ids and mapped addresses are other origins: 403, no log."""
    caplog.set_level(logging.WARNING)
    async with serve_app(origin_app()) as server:
        answer = await server.handshake("/x", {"Origin": header})
        assert (answer.status, answer.text) == (403, "Origin not allowed.\n")
    assert caplog.records == []


async def test_equivalent_spellings_a_client_may_send_are_admitted() -> None:
    """A zero-padded default port, surrounding whitespace and a long IPv6 form name a listed origin."""
    async with serve_app(origin_app()) as server:
        for header in ("https://app.example.com:0443", "  https://app.example.com\t", "http://[0:0:0:0:0:0:0:1]:8080"):
            assert (await server.handshake("/x", {"Origin": header})).status == 101


async def test_only_one_origin_header_counts(caplog) -> None:
    """Two Origin headers get 403 even when both are listed; Sec-WebSocket-Origin (pre-RFC drafts) is not an Origin."""
    caplog.set_level(logging.WARNING)
    async with serve_app(origin_app()) as server:
        for extra, expected in (
            (["Origin: https://app.example.com"] * 2, b"Duplicate Origin header.\n"),
            (["Sec-WebSocket-Origin: https://app.example.com"], b"Missing Origin header.\n"),
        ):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            lines = [
                "GET /x HTTP/1.1",
                "Host: localhost",
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
                *extra,
            ]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            body = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert head.startswith(b"HTTP/1.1 403 ")
            assert body == expected
    assert caplog.records == []


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("https://stra\xdfe.de", "host 'straße.de' contains 'ß', which browsers and Python's IDNA codec encode"),
        ("https://\u03c3\u03bf\u03c6\u03bf\u03c2.gr", "contains 'ς', which browsers and Python's IDNA codec"),
        ("http://[fe80::1%25eth0]:8080", "'[fe80::1%25eth0]' has an IPv6 zone id, which no browser sends in an origin"),
    ],
)
def test_entry_that_would_admit_another_site_raises(entry: str, why: str) -> None:
    """An entry Python encodes unlike browsers (``straße.de`` → ``strasse.de``) or with a zone id raises ValueError."""
    with pytest.raises(ValueError, match="can never match an Origin header") as caught:
        wsroute.allow_origins([entry])
    assert why in str(caught.value)
