"""app.asyncapi(): routes described as AsyncAPI 3.0.0, validated against the official schema."""

from __future__ import annotations

import importlib

import attrs
import pytest

import wsroute
from wsroute.endpoints import endpoint_of

from .asyncapitest import schema_errors


@wsroute.message("join")
@attrs.frozen
class Join:
    """Take a seat."""

    name: str
    seat: int | None = None


@wsroute.message("move")
@attrs.frozen
class Move:
    x: int
    y: int


@wsroute.message("moved")
@attrs.frozen
class Moved:
    by: str
    x: int
    y: int


def every_feature_app() -> wsroute.App:
    """An app using each thing the document describes."""
    app = wsroute.App(load_entrypoints=False, message_key="kind")
    app.middleware(wsroute.bearer_auth(lambda token: token))

    @app.route("/play", message=Join)
    class Game(wsroute.Handler):
        """One player in a game."""

        sends = (Moved,)

        @wsroute.on(Move)
        async def move(self, msg: Move): ...

        @wsroute.on("chat")
        async def chat(self, data): ...

    @app.route("/play", message="watch")
    class Watch(wsroute.Handler):
        async def on_message(self, message): ...

    @app.route("/items/{item_id:int}/{rest:path}", middleware=[wsroute.query_token_auth(lambda t: t, param="key")])
    async def item(ws, item_id, rest):
        """An item, as a function handler."""

    return app


def test_every_feature_app_is_valid_asyncapi_3() -> None:
    """The document of an app using every feature passes the official AsyncAPI 3.0.0 schema."""
    document = every_feature_app().asyncapi(["ws://127.0.0.1:8765", "wss://example.com/ws"])
    assert schema_errors(document) == []
    assert document["servers"] == {
        "default": {"host": "127.0.0.1:8765", "protocol": "ws"},
        "server2": {"host": "example.com", "protocol": "wss", "pathname": "/ws"},
    }


def test_channels_have_addresses_parameters_and_descriptions() -> None:
    """One channel per path; converters leave the address and appear in the parameters."""
    channels = every_feature_app().asyncapi()["channels"]
    assert set(channels) == {"play", "items_item_id_rest"}
    item = channels["items_item_id_rest"]
    assert item["address"] == "/items/{item_id}/{rest}"
    assert item["parameters"] == {
        "item_id": {"description": "path segment, converted by the 'int' converter"},
        "rest": {"description": "path segment, converted by the 'path' converter"},
    }
    assert item["description"] == "An item, as a function handler."
    assert channels["play"]["description"] == "One player in a game."


def test_operations_follow_what_each_handler_receives_and_sends() -> None:
    """First messages, typed and untyped @on, on_message overrides and function handlers become operations."""
    document = every_feature_app().asyncapi()
    operations = {name: (op["action"], [m["$ref"].rsplit("/", 1)[1] for m in op["messages"]])
                  for name, op in document["operations"].items()}
    prefix = "every_feature_app."
    assert operations == {
        f"{prefix}Game.receive.first": ("receive", ["join"]),
        f"{prefix}Game.receive.move": ("receive", ["move"]),
        f"{prefix}Game.receive.chat": ("receive", ["chat"]),
        f"{prefix}Game.send.moved": ("send", ["moved"]),
        f"{prefix}Watch.receive.first": ("receive", ["watch"]),
        f"{prefix}Watch.receive": ("receive", ["message"]),
        f"{prefix}item.receive": ("receive", ["message"]),
        f"{prefix}item.send": ("send", ["message"]),
    }


def test_messages_carry_schemas_and_the_apps_type_field() -> None:
    """Typed messages reference msgspec's schema plus the type field under message_key; untyped fix only the type."""
    components = every_feature_app().asyncapi()["components"]
    move = components["messages"]["move"]
    assert move["payload"]["allOf"] == [
        {"$ref": "#/components/schemas/Move"},
        {"type": "object", "properties": {"kind": {"const": "move"}}, "required": ["kind"]},
    ]
    assert components["schemas"]["Move"]["required"] == ["x", "y"]
    assert components["messages"]["join"]["summary"] == "Take a seat."
    assert components["messages"]["chat"]["payload"] == {
        "type": "object", "properties": {"kind": {"const": "chat"}}, "required": ["kind"]
    }


def test_auth_middleware_appears_as_security_schemes() -> None:
    """bearer_auth (app-level) guards every receive operation; query_token_auth only its route's."""
    document = every_feature_app().asyncapi()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "queryToken_key": {"type": "httpApiKey", "name": "key", "in": "query"},
    }
    security = {name: [s["$ref"].rsplit("/", 1)[1] for s in op.get("security", [])]
                for name, op in document["operations"].items() if op["action"] == "receive"}
    assert security["every_feature_app.item.receive"] == ["bearerAuth", "queryToken_key"]
    assert security["every_feature_app.Game.receive.move"] == ["bearerAuth"]


def test_handler_without_on_message_has_no_generic_receive() -> None:
    """A Handler that does not override on_message receives only its @on types."""
    app = every_feature_app()
    game = next(route for route in app.routes if route.message is Join)
    endpoint = endpoint_of(game, app.middleware_chain)
    assert (endpoint.receives_any, endpoint.sends_any, endpoint.receives) == (False, False, (Move, "chat"))


def test_bad_server_url_is_a_configuration_error() -> None:
    """A server that is not ws:// or wss:// names the expected form."""
    with pytest.raises(wsroute.ConfigurationError, match="expected a URL such as ws://host:port"):
        every_feature_app().asyncapi(["http://127.0.0.1:8765"])


@pytest.mark.parametrize("module", ["examples.quickstart", "examples.game", "examples.chat.app"])
def test_example_apps_are_valid_asyncapi_3(module: str) -> None:
    """Each example app's document passes the official AsyncAPI 3.0.0 schema."""
    app = importlib.import_module(module).app
    assert schema_errors(app.asyncapi(["ws://127.0.0.1:8765"])) == []


def test_cli_example_app_is_valid_asyncapi_3() -> None:
    """The CLI example (a factory) also gives a valid document."""
    from examples.cli_app import create_app

    assert schema_errors(create_app().asyncapi()) == []
