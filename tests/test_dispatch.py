"""Message decoding and first-message choice, without sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsroute.dispatch import (
    MAX_JSON_DEPTH,
    Rejection,
    UndecodableMessage,
    _deeper_than,
    choose_by_first_message,
    decode_json,
    decode_typed,
)
from wsroute.jsonutil import encode_json


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


def test_long_unknown_type_is_cut_to_fit() -> None:
    """A huge unknown type still yields a valid close reason."""
    with pytest.raises(Rejection) as info:
        choose_by_first_message('{"type": "' + "x" * 500 + '"}', "type", {"a": 1})
    assert len(info.value.reason.encode()) <= 123


# -- every decoder failure is one documented outcome --------------------------

#: Bounded so the suite stays fast; no example database written to the repo.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHOICES = {"join": "J", "watch": "W"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
typed_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(["join", "watch", "dance", ""]) | st.integers() | st.none()},
    optional={"data": json_values},
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> str:
    """Arrays/objects nested 1..3000 levels, sometimes inside a typed object, sometimes unclosed."""
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"k":', "}"), ('[{"t":', "}]")]))
    inner = opener * depth + draw(st.sampled_from(["", "1", "NaN", '"x"'])) + closer * depth
    wrapper = draw(st.sampled_from(["{}", '{{"type":"join","x":{}}}', '{{"x":{},"type":"watch"}}', " \n{}"]))
    text = wrapper.format(inner)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


special_values = st.sampled_from(["NaN", "Infinity", "-Infinity", "1" * 5000, "-" + "9" * 4301, "1e999", "\ufeff{}"])
client_text = st.one_of(
    st.text(),
    json_values.map(encode_json),
    typed_objects.map(json.dumps),
    deeply_nested(),
    special_values.map(lambda v: '{"type":"join","v":' + v + "}"),
    special_values,
)
client_messages = client_text | st.binary() | client_text.map(str.encode)


@PROPERTY
@given(client_text)
def test_decode_json_returns_a_value_or_refuses(text: str) -> None:
    """decode_json gives a JSON value nested at most MAX_JSON_DEPTH levels, or UndecodableMessage."""
    try:
        value = decode_json(text)
    except UndecodableMessage as exc:
        assert exc.problem.startswith(("is ", "has "))
        return
    assert json.loads(encode_json(value)) == value
    assert not _deeper_than(value, MAX_JSON_DEPTH)


@PROPERTY
@given(client_messages)
def test_decode_typed_returns_a_typed_object_or_none(message: str | bytes) -> None:
    """decode_typed never raises: (type, object) with that str type, or None for the untyped path."""
    typed = decode_typed(message, "type")
    if typed is not None:
        kind, data = typed
        assert type(kind) is str
        assert type(data) is dict
        assert data["type"] == kind


@PROPERTY
@given(client_messages)
def test_first_message_chooses_or_rejects_with_a_sendable_reason(message: str | bytes) -> None:
    """choose_by_first_message picks a route or raises Rejection 1003/1008 with a reason that fits a close frame."""
    try:
        target, data = choose_by_first_message(message, "type", CHOICES)
    except Rejection as rejection:
        assert rejection.code == (1003 if isinstance(message, bytes) else 1008)
        assert 0 < len(rejection.reason.encode()) <= 123
        return
    assert target == CHOICES[data["type"]]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 982 + "]" * 982, "is nested deeper than 256 levels"),
        ('{"type": "join", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "is nested deeper than 256 levels"),
        ("[" * 257 + "]" * 257, "is nested deeper than 256 levels"),
        ('{"type": "join", "n": NaN}', "has NaN, which is not JSON"),
        ("[-Infinity]", "has -Infinity, which is not JSON"),
        ('{"n": ' + "1" * 5000 + "}", "has a number too long to decode"),
        ('{"n": 1e999}', "has a number out of range"),
        (b'{"n": "\xff"}', "is not valid JSON"),
        ("{oops", "is not valid JSON"),
    ],
)
def test_decode_json_names_the_problem(text: str | bytes, problem: str) -> None:
    """Each kind of undecodable text is refused with a phrase saying which kind it is."""
    with pytest.raises(UndecodableMessage) as info:
        decode_json(text)
    assert info.value.problem == problem


def test_decode_json_accepts_the_deepest_allowed_nesting() -> None:
    """Exactly MAX_JSON_DEPTH levels decode; a wide message with many brackets is not mistaken for a deep one."""
    deepest = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert _deeper_than(decode_json(deepest), MAX_JSON_DEPTH - 1)
    wide = json.dumps([{"i": i, "v": [i]} for i in range(1000)])
    assert len(decode_json(wide)) == 1000


def test_pathological_json_later_on_is_untyped() -> None:
    """Too deep, NaN and huge numbers are not typed messages: they take the on_message path."""
    deep = '{"type": "a", "x": ' + "[" * 982 + "]" * 982 + "}"
    for text in (deep, '{"type": "a", "n": NaN}', '{"type": "a", "n": 1' + "0" * 5000 + "}"):
        assert decode_typed(text, "type") is None
