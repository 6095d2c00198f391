"""The AsyncAPI 3.0.0 document built from endpoints, checked against the official schema."""

from __future__ import annotations

import attrs
import pytest

import wsroute
from wsroute.asyncapi import Endpoint, Security, build

from .asyncapitest import schema_errors


@wsroute.message("move")
@attrs.frozen
class Move:
    """A move on the board."""

    x: int
    y: int


@wsroute.message("join")
@attrs.frozen
class Join:
    name: str


class Game:
    """One game per connection."""


async def echo(ws: object) -> None:
    """Echo every message."""


BEARER = Security("bearer", {"type": "http", "scheme": "bearer"})


def sample() -> dict[str, object]:
    return build(
        [
            Endpoint(
                "/play",
                Game,
                description="One game per connection.",
                first_message=Join,
                receives=(Move, "chat"),
                sends=(Move,),
                security=(BEARER,),
            ),
            Endpoint("/rooms/{room}", echo, params=(("room", "str"),), receives_any=True, sends_any=True),
        ],
        servers=["ws://127.0.0.1:8765"],
    )


def test_document_is_valid_asyncapi_3() -> None:
    """The built document passes the official AsyncAPI 3.0.0 JSON Schema."""
    assert schema_errors(sample()) == []


def test_invalid_documents_are_caught_by_the_schema() -> None:
    """The schema check is real: a channel address that is not a string fails it."""
    document = sample()
    document["channels"] = {"broken": {"address": 5}}
    assert schema_errors(document) != []


def test_one_channel_per_path_with_parameters_and_description() -> None:
    """Each path is a channel whose address is the pattern and whose parameters are path parameters."""
    channels = sample()["channels"]
    assert channels["play"]["address"] == "/play"  # type: ignore[index]
    assert channels["play"]["description"] == "One game per connection."  # type: ignore[index]
    assert channels["rooms_room"]["parameters"] == {  # type: ignore[index]
        "room": {"description": "path segment, converted by the 'str' converter"}
    }


def test_typed_messages_carry_their_schema_and_type_field() -> None:
    """A message class's payload is its msgspec schema plus the type field as a constant."""
    components = sample()["components"]
    move = components["messages"]["move"]  # type: ignore[index]
    assert move["name"] == "move"
    assert move["summary"] == "A move on the board."
    assert move["payload"]["allOf"] == [
        {"$ref": "#/components/schemas/Move"},
        {"type": "object", "properties": {"type": {"const": "move"}}, "required": ["type"]},
    ]
    assert components["schemas"]["Move"]["properties"] == {"x": {"type": "integer"}, "y": {"type": "integer"}}  # type: ignore[index]


def test_operations_receive_what_clients_send_and_send_what_handlers_send() -> None:
    """First message and @on types are receive operations; sends are send operations."""
    operations = sample()["operations"]
    assert {name: op["action"] for name, op in operations.items()} == {  # type: ignore[attr-defined]
        "Game.receive.first": "receive",
        "Game.receive.move": "receive",
        "Game.receive.chat": "receive",
        "Game.send.move": "send",
        "echo.receive": "receive",
        "echo.send": "send",
    }
    assert operations["Game.receive.first"]["messages"] == [{"$ref": "#/channels/play/messages/join"}]  # type: ignore[index]


def test_security_schemes_guard_their_operations() -> None:
    """Auth middleware appears as a security scheme referenced by the route's receive operations."""
    document = sample()
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}  # type: ignore[index]
    assert document["operations"]["Game.receive.move"]["security"] == [  # type: ignore[index]
        {"$ref": "#/components/securitySchemes/bearer"}
    ]
    assert "security" not in document["operations"]["echo.receive"]  # type: ignore[index]


def test_untyped_messages_only_fix_the_type_field() -> None:
    """An untyped @on name is an object with the type constant; any other field is free."""
    chat = sample()["components"]["messages"]["chat"]  # type: ignore[index]
    assert chat["payload"] == {"type": "object", "properties": {"type": {"const": "chat"}}, "required": ["type"]}


def test_servers_from_urls() -> None:
    """Server URLs become AsyncAPI server objects; a non-WebSocket URL is refused."""
    assert sample()["servers"] == {"default": {"host": "127.0.0.1:8765", "protocol": "ws"}}
    document = build([], servers={"prod": "wss://example.com/ws"})
    assert document["servers"] == {"prod": {"host": "example.com", "protocol": "wss", "pathname": "/ws"}}
    with pytest.raises(ValueError, match="expected a URL such as ws://host:port"):
        build([], servers=["http://example.com"])
