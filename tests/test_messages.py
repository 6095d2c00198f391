"""Typed messages without sockets: naming, encoding, decoding and validation."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsroute
from wsroute.jsonutil import encode_json
from wsroute.messages import MessageCodec, error_reply, message_name


@wsroute.message("move")
@attrs.frozen
class Move:
    x: int
    y: int


@wsroute.message("join")
@attrs.frozen
class Join:
    name: str


@wsroute.message("moved")
@attrs.frozen
class Moved:
    by: str
    x: int
    y: int


def test_message_names_the_class_on_the_wire() -> None:
    """@wsroute.message records the wire name and returns the class unchanged."""
    assert message_name(Move) == "move"
    assert Move(1, 2) == Move(x=1, y=2)


def test_message_refuses_a_class_that_is_not_attrs() -> None:
    """Only attrs classes can be messages; the error says where to put @attrs.frozen."""

    class Plain:
        x: int

    with pytest.raises(TypeError, match=r"is not an attrs class; put @attrs.frozen \(or @attrs.define\) below"):
        wsroute.message("plain")(Plain)


def test_message_decorators_in_the_wrong_order_are_refused() -> None:
    """@attrs.frozen above @wsroute.message means message() sees a plain class: refused."""
    with pytest.raises(TypeError, match="is not an attrs class"):

        @attrs.frozen
        @wsroute.message("late")
        class Late:
            x: int


def test_message_refuses_a_second_name() -> None:
    """A class has one name on the wire."""
    with pytest.raises(TypeError, match="is already the message 'move'"):
        wsroute.message("step")(Move)


def test_message_name_is_not_inherited() -> None:
    """A subclass of a message class is not the same message unless decorated itself."""

    @attrs.frozen
    class Jump(Move):
        z: int = 0

    assert message_name(Jump) is None


@pytest.mark.parametrize("name", ["", None, 3])
def test_message_needs_a_non_empty_name(name: object) -> None:
    """The wire name must be a non-empty str."""
    with pytest.raises(TypeError, match="needs a non-empty str name"):
        wsroute.message(name)  # type: ignore[arg-type]


def test_encode_json_puts_the_type_field_first() -> None:
    """A message instance is sent as an object with its type field, then its fields."""
    assert encode_json(Moved(by="ann", x=1, y=2)) == '{"type":"moved","by":"ann","x":1,"y":2}'
    assert encode_json(Moved(by="ann", x=1, y=2), "kind") == '{"kind":"moved","by":"ann","x":1,"y":2}'


def test_encode_json_of_a_message_without_fields() -> None:
    """A message class with no fields is just its type field."""

    @wsroute.message("ping")
    @attrs.frozen
    class Ping:
        pass

    assert encode_json(Ping()) == '{"type":"ping"}'


def test_encode_json_refuses_a_field_named_like_the_type_field() -> None:
    """A field called "type" would collide with the type field on the wire."""

    @wsroute.message("clash")
    @attrs.frozen
    class Clash:
        type: str

    with pytest.raises(TypeError, match="has a field named 'type', which is the type field"):
        encode_json(Clash("x"))


def test_encode_json_of_plain_values_is_compact_json() -> None:
    """Dicts and lists are compact JSON, as json.dumps with tight separators gives."""
    value = {"a": [1, 2.5, None, True], "b": "é"}
    assert encode_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_codec_decodes_and_validates_in_one_step() -> None:
    """The codec reads the type, then builds the class from the same text."""
    codec = MessageCodec.build([Move, Join])
    raw = '{"type": "move", "x": 3, "y": 4}'
    assert codec.kind(raw) == "move"
    assert codec.decode("move", raw) == Move(3, 4)


def test_codec_reports_the_field_path_of_a_bad_payload() -> None:
    """A payload that does not fit says which field and why."""
    codec = MessageCodec.build([Move])
    with pytest.raises(wsroute.InvalidMessage) as caught:
        codec.decode("move", '{"type": "move", "x": "three", "y": 4}')
    assert caught.value.message_type == "move"
    assert caught.value.detail == "Expected `int`, got `str` - at `$.x`"


def test_codec_reports_a_missing_field() -> None:
    """A missing required field is named."""
    codec = MessageCodec.build([Move])
    with pytest.raises(wsroute.InvalidMessage, match="missing required field `y`"):
        codec.decode("move", '{"type": "move", "x": 1}')


def test_codec_refuses_two_classes_with_one_name() -> None:
    """Two classes named alike on one route fail when the codec is built."""

    @wsroute.message("move")
    @attrs.frozen
    class OtherMove:
        dx: int

    with pytest.raises(TypeError, match="are both the message 'move'"):
        MessageCodec.build([Move, OtherMove], where="route '/play'")


def test_codec_turns_deep_nesting_into_an_invalid_message() -> None:
    """982 nested arrays in a field are the client's payload, not a server failure.

    The type cannot be read past a nesting the decoder refuses, so the message
    takes the untyped path (``kind`` is None); decoding it as a class anyway is
    an InvalidMessage, never a RecursionError.
    """
    codec = MessageCodec.build([Join])
    raw = '{"type": "join", "name": ' + "[" * 982 + "]" * 982 + "}"
    assert codec.kind(raw) is None
    with pytest.raises(wsroute.InvalidMessage):
        codec.decode("join", raw)


@pytest.mark.parametrize(
    "raw",
    ["", "[]", "null", '"move"', '{"type": 3}', '{"x": 1}', "{", "[" * 5000, b"\xff\xfe", "NaN"],
)
def test_codec_kind_is_none_for_anything_but_a_typed_object(raw: str | bytes) -> None:
    """Non-objects, objects without a str type and malformed text have no kind."""
    assert MessageCodec.build([Move]).kind(raw) is None


def test_codec_kind_keeps_the_depth_limit_of_untyped_messages() -> None:
    """A typed object nesting 257..900 levels in an unknown field has no kind, like decode_json refuses it."""
    codec = MessageCodec.build([Move])
    deep = '{"type": "move", "x": 1, "y": 2, "extra": ' + "[" * 300 + "]" * 300 + "}"
    shallow = '{"type": "move", "x": 1, "y": 2, "extra": ' + "[" * 255 + "]" * 255 + "}"
    assert codec.kind(deep) is None
    assert codec.kind(shallow) == "move"
    assert codec.decode("move", shallow) == Move(1, 2)


def test_error_reply_names_the_type_and_the_detail() -> None:
    """The reply to an invalid typed message is a JSON object of type "error" under the app's key."""
    exc = wsroute.InvalidMessage("move", "Expected `int`, got `str` - at `$.x`")
    assert json.loads(error_reply(exc, "op")) == {"op": "error", "for": "move", "detail": exc.detail}


def test_message_decoder_for_function_handlers() -> None:
    """MessageDecoder gives the instance, or InvalidMessage saying what was expected."""
    decoder = wsroute.MessageDecoder(Move, Join)
    assert decoder.decode('{"type":"join","name":"ann"}') == Join("ann")
    with pytest.raises(wsroute.InvalidMessage, match="unknown message type 'fly' \\(expected: join, move\\)"):
        decoder.decode('{"type":"fly"}')
    with pytest.raises(wsroute.InvalidMessage, match="expected a JSON object with a string 'type' field"):
        decoder.decode("[1, 2]")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary(), json_values.map(json.dumps), st.integers(1, 3000).map(lambda n: "[" * n)))
def test_message_decoder_returns_a_value_or_invalid_message(raw: str | bytes) -> None:
    """For any input, decoding gives a message instance or InvalidMessage, nothing else."""
    decoder = wsroute.MessageDecoder(Move, Join)
    try:
        result = decoder.decode(raw)
    except wsroute.InvalidMessage:
        return
    assert isinstance(result, (Move, Join))


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(["move", "join", "other"]))
def test_typed_objects_decode_or_fail_cleanly(payload: object, kind: str) -> None:
    """Any JSON object with a type field decodes to its class or fails with the field's detail."""
    decoder = wsroute.MessageDecoder(Move, Join)
    raw = json.dumps({"type": kind, "x": payload, "y": 1, "name": payload})
    try:
        result = decoder.decode(raw)
    except wsroute.InvalidMessage as exc:
        assert exc.message_type == kind
        assert exc.detail
        return
    assert result in (Move(payload, 1), Join(payload))  # type: ignore[arg-type]
