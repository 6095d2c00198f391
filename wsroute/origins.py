"""Web origins compared as RFC 6454 says: scheme, host and port, normalised.

An origin is the triple (scheme, host, port) of the page that opened the
WebSocket; browsers send it serialised as ``scheme://host[:port]`` in the
``Origin`` header (RFC 6454 §6.2 and §7). Two serialisations name the same
origin when:

* the schemes are equal ignoring case (``HTTPS`` is ``https``, RFC 3986 §3.1);
* the hosts are equal ignoring case (RFC 3986 §3.2.2); a non-ASCII host in
  an allow-list entry is compared in its IDNA (``xn--``) form, which is what
  browsers send, and an IPv6 literal in its canonical form;
* the ports are equal, a missing port being the scheme's default (http and
  ws 80, https and wss 443; RFC 6454 §4, RFC 6455 §3).

There is no wildcard and no suffix matching: ``https://app.example.com`` never
admits ``https://app.example.com.evil.com`` or ``https://evil-app.example.com``.
The opaque origin ``null`` (sandboxed frames, ``file:`` pages, redirects) is
sent by pages of any site, so it names no one and is never allowed.

A received ``Origin`` header must be ASCII (:meth:`Origin.from_header`):
browsers serialise the host in its ``xn--`` form (RFC 6454 §6.2), and
Python's IDNA codec would otherwise fold look-alikes such as ``ªpp`` (U+00AA)
onto ``app``. Allow-list entries may be written in Unicode, except with the
four characters that Python's codec (IDNA 2003) and browsers (UTS #46,
non-transitional) encode differently — ``ß``, ``ς``, U+200C, U+200D —
where ``straße.de`` would silently become another site, ``strasse.de``;
those must be written in the ``xn--`` form the browser shows.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

__all__ = ["DEFAULT_PORTS", "Origin"]

#: The default port of each scheme that names one; a port equal to it is no port.
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_SHAPE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[^\]/]*\]|[^:/?#\[\]@\s]+)(?::(?P<port>[0-9]*))?(?P<rest>.*)",
    re.DOTALL,
)


@attrs.frozen
class Origin:
    """A normalised origin; equal values are the same origin.

    Attributes:
        scheme: lower case, e.g. ``"https"``.
        host: lower case, IDNA-encoded; an IPv6 literal keeps its brackets.
        port: the explicit port, or ``None`` for the scheme's default.

    Example::

        Origin.parse("https://APP.Example.com:443") == Origin.parse("https://app.example.com")  # True
    """

    scheme: str
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> Origin:
        """Parse a serialised origin (one trailing ``/`` is tolerated).

        Raises:
            ValueError: ``text`` is not ``scheme://host[:port]``; the message
                says what is wrong with it (no scheme, a path, a wildcard…).
        """
        if text == "null":
            raise ValueError("'null' is the opaque origin that pages of any site can send, so it names no one")
        if "*" in text:
            raise ValueError("wildcards are not supported; list each origin")
        found = _SHAPE.fullmatch(text)
        if found is None:
            if "://" not in text:
                raise ValueError("it has no scheme")
            raise ValueError("it is not scheme://host[:port]")
        rest = found["rest"]
        if rest not in ("", "/"):
            what = "a path" if rest.startswith("/") else "more than scheme, host and port"
            raise ValueError(f"it has {what} ({rest!r}); an origin ends after the port")
        scheme = found["scheme"].lower()
        return cls(scheme, _host(found["host"]), _port(found["port"], scheme))

    @classmethod
    def from_header(cls, text: str) -> Origin:
        """Parse an ``Origin`` header's value: :meth:`parse`, for ASCII text only.

        Raises:
            ValueError: ``text`` is not ASCII, or :meth:`parse` refuses it.
        """
        if not text.isascii():
            raise ValueError("an Origin header is ASCII; browsers send a non-ASCII host in its xn-- form")
        return cls.parse(text)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}" if self.port is None else f"{self.scheme}://{self.host}:{self.port}"


# Encoded differently by Python's IDNA 2003 codec and by browsers' UTS #46 (its "deviation" characters).
_DEVIATIONS = re.compile("[\u00df\u03c2\u200c\u200d]")


def _host(text: str) -> str:
    if text.startswith("["):
        if "%" in text:  # browsers refuse zone ids in URLs, so no Origin carries one
            raise ValueError(f"{text!r} has an IPv6 zone id, which no browser sends in an origin")
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv6 address") from None
    if text.isascii():
        return text.lower()
    deviation = _DEVIATIONS.search(text)
    if deviation is not None:
        raise ValueError(
            f"host {text!r} contains {deviation[0]!r}, which browsers and Python's IDNA codec encode "
            "differently; write the host in the xn-- form the browser sends (new URL(...).origin shows it)"
        )
    try:
        return text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"host {text!r} is not a valid internationalised domain name") from None


def _port(text: str | None, scheme: str) -> int | None:
    if text is None:
        return None
    if not text or len(text) > 5 or int(text) > 65535:
        raise ValueError(f"port {text!r} is not a number from 0 to 65535")
    port = int(text)
    return None if DEFAULT_PORTS.get(scheme) == port else port
