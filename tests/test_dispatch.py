"""Message decoding and first-message choice, without sockets."""

from __future__ import annotations

import pytest

from wsroute.dispatch import Rejection, choose_by_first_message, close_reason, decode_typed


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"type": "a", "x": 1}', ("a", {"type": "a", "x": 1})),
        (' \n{"type": "a"}', ("a", {"type": "a"})),
        ('{"type": 1}', None),
        ('{"kind": "a"}', None),
        ("[1]", None),
        ("{not json", None),
        ("", None),
        (b'{"type": "a"}', None),
    ],
)
def test_decode_typed(message, expected) -> None:
    """Only a JSON object with a str type is typed; anything else goes to on_message."""
    assert decode_typed(message, "type") == expected


def test_choose_by_first_message_returns_target_and_data() -> None:
    """A known type picks its target and returns the decoded message."""
    assert choose_by_first_message('{"op": "b", "n": 2}', "op", {"a": 1, "b": 2}) == (2, {"op": "b", "n": 2})


def test_unknown_type_lists_the_expected_ones() -> None:
    """The rejection for an unknown type names it and the known types, sorted."""
    with pytest.raises(Rejection) as info:
        choose_by_first_message('{"type": "zz"}', "type", {"b": 1, "a": 2})
    assert (info.value.code, info.value.reason) == (1008, "unknown message type 'zz' (expected: a, b)")


def test_close_reason_fits_a_close_frame() -> None:
    """Reasons are cut to 123 bytes of UTF-8 without breaking a character."""
    assert close_reason("short") == "short"
    cut = close_reason("é" * 200)
    assert len(cut.encode()) <= 123
    assert cut.endswith("...")


def test_long_unknown_type_is_cut_to_fit() -> None:
    """A huge unknown type still yields a valid close reason."""
    with pytest.raises(Rejection) as info:
        choose_by_first_message('{"type": "' + "x" * 500 + '"}', "type", {"a": 1})
    assert len(info.value.reason.encode()) <= 123
