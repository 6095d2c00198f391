"""Percent-decoding of the request target: the path's segments and the query string.

A request target reaches the server as ASCII (websockets closes the
connection without an answer when the request line is not ASCII), with
reserved and non-ASCII characters percent-encoded as UTF-8 (RFC 3986 §2.1
and §2.5). wsroute decodes it the way routing needs:

* the path is split on ``/`` first and each segment is decoded afterwards, so
  an encoded slash (``%2F``) stays inside its segment and never creates a new
  one (``/rooms/a%2Fb`` has the two segments ``rooms`` and ``a/b``);
* each segment is decoded as UTF-8, strictly: bytes that are not UTF-8 are a
  client error, never silently replaced;
* ``+`` is a plus sign in a path and a space in the query string (the query
  is ``application/x-www-form-urlencoded``, the path is not).

A ``%`` that is not followed by two hexadecimal digits, or bytes that are not
UTF-8 once decoded, raise :class:`BadTarget`; the handshake answers 400 with
its message before any upgrade. So do, in the path, raw or encoded:

* a dot segment (``.`` or ``..``, also ``%2e%2e`` and ``..%2F..`` inside one
  segment): browsers and client libraries resolve them before sending
  (RFC 3986 §5.2.4, and the WHATWG URL parser for ``%2e``), so one that
  arrives was written by hand, and a ``{rest:path}`` parameter must never
  receive ``../../etc/passwd``;
* a control character (U+0000 to U+001F, U+007F), which no URL contains
  decoded and which would reach logs and file names through parameters;
* a ``#``: a request target has no fragment (RFC 9112 §3.2).

Decoded segments are put in Unicode normalisation form C (NFC), as route
patterns are, so ``/caf%C3%A9`` (é composed) and ``/cafe%CC%81`` (e and a
combining accent) name the same route and give parameters the same text.
The query string keeps every character it decodes to: it carries form data,
where a newline is content. Everything here is pure (no I/O).
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse

__all__ = ["BadTarget", "decode_path", "decode_segments", "encode_segment", "parse_query"]

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# In the raw path (which starts with "/"): a control character, a fragment, a dot segment.
_BAD_RAW = re.compile(r"[\x00-\x1f\x7f#]|/\.\.?(?=/|$)")
# In one decoded segment, where "%2F" may have put slashes.
_BAD_DECODED = re.compile(r"[\x00-\x1f\x7f]|(?:^|/)\.\.?(?:/|$)")


class BadTarget(ValueError):
    """The request target cannot be decoded; ``str(exc)`` is the 400 answer's text."""


def decode_segments(path: str) -> list[str]:
    """Split ``path`` (starting with ``/``, without query) on ``/``, then decode each segment.

    Args:
        path: the raw path, e.g. ``/rooms/hello%20world``.

    Returns:
        The decoded segments, each in NFC: ``["rooms", "hello world"]``;
        ``/a%2Fb`` gives ``["a/b"]`` and ``/chat/`` gives ``["chat", ""]``.

    Raises:
        BadTarget: a malformed escape, a segment whose bytes are not UTF-8, a
            dot segment, a control character or a ``#`` (see the module text).
    """
    if not path.isprintable() or "/." in path or "#" in path:  # str methods first: the usual path costs no regex
        bad = _BAD_RAW.search(path)
        if bad is not None:
            raise BadTarget(f"the path contains {_what(bad[0])}")
    if "%" not in path:
        return path[1:].split("/")
    _check_escapes(path, "path")
    parts = path[1:].split("/")
    for index, part in enumerate(parts):
        if "%" in part:
            parts[index] = _decode_segment(part)
    return parts


def _decode_segment(part: str) -> str:
    try:
        text = urllib.parse.unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError:
        raise BadTarget(f"path segment {part!r} is not UTF-8 once percent-decoded") from None
    bad = _BAD_DECODED.search(text)
    if bad is not None:
        raise BadTarget(f"path segment {part!r} contains {_what(bad[0])} once percent-decoded")
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def _what(found: str) -> str:
    """Name what ``_BAD_RAW`` or ``_BAD_DECODED`` found, for the 400 text."""
    if "." in found:
        return "a dot segment ('.' or '..')"
    if found == "#":
        return "a '#' (a request target has no fragment)"
    return f"the control character {found!r}"


def decode_path(path: str) -> str:
    """The decoded form of ``path`` for display: segments decoded, joined with ``/``.

    ``%2F`` becomes ``/`` here, so two different raw paths can give the same
    text; route parameters (``ws.params``) keep segments apart. A path that
    cannot be decoded strictly (only possible before routing refused it) is
    decoded with U+FFFD replacement characters instead of raising.
    """
    if "%" not in path:
        return path
    try:
        return "/" + "/".join(decode_segments(path))
    except BadTarget:
        return urllib.parse.unquote(path, errors="replace")


#: Characters RFC 3986 allows unescaped in a path segment (``pchar``) besides the unreserved ones.
_SEGMENT_SAFE = "!$&'()*+,;=:@"


def encode_segment(text: str) -> str:
    """Percent-encode one decoded path segment, the inverse of :func:`decode_segments` for it.

    Non-ASCII characters become their UTF-8 escapes and ``/`` becomes
    ``%2F``, so the segment stays one segment: ``encode_segment("a b/c")``
    is ``"a%20b%2Fc"``. ``+`` is kept (a plus in a path).
    """
    return urllib.parse.quote(text, safe=_SEGMENT_SAFE)


def parse_query(query: str) -> dict[str, list[str]]:
    """Parse a query string strictly: ``"a=1&a=2&b="`` gives ``{"a": ["1", "2"], "b": [""]}``.

    ``+`` is a space, blank values are kept, names and values are decoded as
    UTF-8.

    Raises:
        BadTarget: a malformed escape, bytes that are not UTF-8 once decoded,
            or a raw ``#`` (a request target has no fragment; ``%23`` is a ``#``).
    """
    if "#" in query:
        raise BadTarget(f"the query string contains {_what('#')}")
    if "%" not in query:
        return urllib.parse.parse_qs(query, keep_blank_values=True)
    _check_escapes(query, "query string")
    try:
        return urllib.parse.parse_qs(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadTarget("the query string is not UTF-8 once percent-decoded") from None


def _check_escapes(text: str, where: str) -> None:
    bad = _BAD_ESCAPE.search(text)
    if bad is not None:
        escape = text[bad.start() : bad.start() + 3]
        raise BadTarget(f"malformed percent-escape {escape!r} in the {where}; '%' must be followed by two hex digits")
