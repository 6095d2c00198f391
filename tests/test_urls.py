"""Percent-decoding of request paths and query strings, without sockets."""

from __future__ import annotations

import pytest

from wsroute.urls import BadTarget, decode_path, decode_segments, parse_query


def test_segments_split_then_decoded() -> None:
    """The path is split on ``/`` first, so ``%2F`` stays inside a segment; ``+`` is literal."""
    assert decode_segments("/a%2Fb/c%20d/e+f/") == ["a/b", "c d", "e+f", ""]


def test_decode_path_is_for_display() -> None:
    """``decode_path`` joins decoded segments; an undecodable path gets U+FFFD instead of raising."""
    assert decode_path("/rooms/hello%20world") == "/rooms/hello world"
    assert decode_path("/plain") == "/plain"
    assert decode_path("/x/%FF") == "/x/\ufffd"


def test_query_decoding_is_strict_utf8_with_plus_as_space() -> None:
    """``parse_query`` keeps blank values, reads ``+`` as a space and refuses bytes that are not UTF-8."""
    assert parse_query("a=1&a=2&b=&c=caf%C3%A9+x") == {"a": ["1", "2"], "b": [""], "c": ["café x"]}
    with pytest.raises(BadTarget, match="the query string is not UTF-8 once percent-decoded"):
        parse_query("a=%C3")
    with pytest.raises(BadTarget, match="malformed percent-escape '%2' in the query string"):
        parse_query("a=%2")


def test_segments_refuse_dot_segments_controls_and_fragments() -> None:
    """Dot segments raw, encoded or behind ``%2F``, control characters and ``#`` raise; dotted names do not."""
    for path in ("/a/..", "/./a", "/a/%2E", "/a/%2e%2E/b", "/a/x%2F..", "/a/..%2Fx", "/a/%00", "/a/b\x1b", "/a#b"):
        with pytest.raises(BadTarget):
            decode_segments(path)
    assert decode_segments("/a/.../.b/b./%2E%2E%2E/%23") == ["a", "...", ".b", "b.", "...", "#"]


def test_segments_are_composed_to_nfc() -> None:
    """A decomposed accent is composed; ``decode_path`` shows the composed form too."""
    assert decode_segments("/cafe%CC%81/A%CC%8A") == ["caf\u00e9", "\u00c5"]
    assert decode_path("/cafe%CC%81") == "/caf\u00e9"
