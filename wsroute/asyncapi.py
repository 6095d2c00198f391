"""The AsyncAPI 3.0.0 document of an app, built from its routes (pure, no I/O).

AsyncAPI (https://www.asyncapi.com/docs/reference/specification/v3.0.0) is to
message-driven APIs what OpenAPI is to HTTP. The document describes the
*application*: an operation with ``action: receive`` is a message the server
receives from clients (a first message, an ``@on`` type), ``action: send`` one
it sends (a Handler's ``sends``).

Mapping from wsroute:

========================  ==================================================
wsroute                   AsyncAPI 3.0
========================  ==================================================
a path (route group)      a channel; ``address`` is the pattern, path
                          parameters are channel ``parameters``
a message class           a message in ``components/messages``; its payload
                          schema comes from msgspec's JSON Schema, with the
                          type field added as a ``const``
an untyped ``@on`` type   a message whose payload only fixes the type field
a function handler        generic receive/send messages (any payload)
``bearer_auth``           ``securitySchemes``: ``{"type": "http", "scheme": "bearer"}``
``query_token_auth``      ``securitySchemes``: ``{"type": "httpApiKey", "in": "query"}``
a docstring               ``description``
========================  ==================================================

:func:`build` takes :class:`Endpoint` values, so it is tested without an app;
``App.asyncapi()`` describes its routes as endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
import msgspec

from .callbacks import describe
from .messages import message_name

__all__ = ["ASYNCAPI_VERSION", "Endpoint", "Security", "build"]

ASYNCAPI_VERSION = "3.0.0"

_SCHEMA_REF = "#/components/schemas/{name}"
_ANY_PAYLOAD: dict[str, Any] = {}
_NON_WORD = re.compile(r"[^A-Za-z0-9_.\-]+")


@attrs.frozen
class Security:
    """A security scheme that guards a route (from ``bearer_auth`` or ``query_token_auth``).

    Attributes:
        name: the key in ``components/securitySchemes``.
        scheme: the AsyncAPI Security Scheme Object.
    """

    name: str
    scheme: Mapping[str, Any]


@attrs.frozen
class Endpoint:
    """What the document needs to know of one route.

    Attributes:
        path: the route pattern, e.g. ``/rooms/{room}``.
        handler: the handler (its qualified name names the operations).
        params: ``(name, converter name)`` of each path parameter.
        description: the handler's docstring.
        first_message: the first-message type that selects this route: a
            message class, a wire name, or ``None``.
        receives: ``@on`` types: message classes or wire names (untyped).
        receives_any: the route takes messages no ``@on`` names (a function
            handler, or a Handler overriding ``on_message``).
        sends: message classes the handler sends.
        sends_any: the handler may send anything (a function handler).
        security: the schemes of the auth middleware that guard the route.
    """

    path: str
    handler: Any
    params: tuple[tuple[str, str], ...] = ()
    description: str | None = None
    first_message: type | str | None = None
    receives: tuple[type | str, ...] = ()
    receives_any: bool = False
    sends: tuple[type, ...] = ()
    sends_any: bool = False
    security: tuple[Security, ...] = ()


def build(
    endpoints: Iterable[Endpoint],
    *,
    key: str = "type",
    title: str = "wsroute application",
    version: str = "1.0.0",
    description: str | None = None,
    servers: Sequence[str] | Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document, as a JSON-compatible dict.

    Args:
        endpoints: one per route.
        key: the type field of JSON messages (``App(message_key=...)``).
        title, version, description: the ``info`` object.
        servers: server URLs (``["ws://127.0.0.1:8765"]``) or ``{name: url}``.

    Raises:
        ValueError: a server URL that is not ``ws://`` or ``wss://`` with a host.
    """
    builder = _Builder(key)
    for endpoint in endpoints:
        builder.add(endpoint)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {"asyncapi": ASYNCAPI_VERSION, "info": info}
    if servers:
        document["servers"] = _servers(servers)
    document["defaultContentType"] = "application/json"
    document["channels"] = builder.channels
    document["operations"] = builder.operations
    document["components"] = builder.components()
    return document


def _servers(servers: Sequence[str] | Mapping[str, str]) -> dict[str, Any]:
    named = servers.items() if isinstance(servers, Mapping) else _default_names(servers)
    result: dict[str, Any] = {}
    for name, url in named:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"server {url!r}: expected a URL such as ws://host:port or wss://host")
        server: dict[str, Any] = {"host": parts.netloc, "protocol": parts.scheme}
        if parts.path not in ("", "/"):
            server["pathname"] = parts.path
        result[name] = server
    return result


def _default_names(urls: Sequence[str]) -> list[tuple[str, str]]:
    if isinstance(urls, str):
        urls = [urls]
    return [("default" if i == 0 else f"server{i + 1}", url) for i, url in enumerate(urls)]


class _Builder:
    """Accumulates channels, operations and components, keeping ids unique."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.typed_messages: list[tuple[type, dict[str, Any]]] = []
        self.security: dict[str, Any] = {}
        self._channel_of_path: dict[str, str] = {}
        self._message_ids: dict[object, str] = {}

    def add(self, endpoint: Endpoint) -> None:
        channel_id = self._channel(endpoint)
        qualname = getattr(endpoint.handler, "__qualname__", None) or describe(endpoint.handler)
        operation_base = _identifier(qualname.replace("<locals>.", ""))
        security = [self._security(item) for item in endpoint.security]
        if endpoint.first_message is not None:
            self._operation(
                f"{operation_base}.receive.first",
                "receive",
                channel_id,
                [endpoint.first_message],
                security,
                "The first message: its type selects this route.",
            )
        for item in endpoint.receives:
            self._operation(
                f"{operation_base}.receive.{_type_name(item)}", "receive", channel_id, [item], security, None
            )
        if endpoint.receives_any:
            self._operation(f"{operation_base}.receive", "receive", channel_id, [None], security, None)
        for item in endpoint.sends:
            self._operation(f"{operation_base}.send.{_type_name(item)}", "send", channel_id, [item], [], None)
        if endpoint.sends_any:
            self._operation(f"{operation_base}.send", "send", channel_id, [None], [], None)

    def _channel(self, endpoint: Endpoint) -> str:
        existing = self._channel_of_path.get(endpoint.path)
        if existing is not None:
            return existing
        channel_id = self._unique(_identifier(endpoint.path.strip("/") or "root"), self.channels)
        channel: dict[str, Any] = {"address": endpoint.path, "messages": {}}
        if endpoint.params:
            channel["parameters"] = {
                name: {"description": f"path segment, converted by the {converter!r} converter"}
                for name, converter in endpoint.params
            }
        if endpoint.description:
            channel["description"] = endpoint.description
        self.channels[channel_id] = channel
        self._channel_of_path[endpoint.path] = channel_id
        return channel_id

    def _operation(
        self,
        operation_id: str,
        action: str,
        channel_id: str,
        items: list[type | str | None],
        security: list[dict[str, str]],
        summary: str | None,
    ) -> None:
        channel = self.channels[channel_id]
        refs = []
        for item in items:
            message_id = self._message(item)
            channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
            refs.append({"$ref": f"#/channels/{channel_id}/messages/{message_id}"})
        channel_ref = {"$ref": f"#/channels/{channel_id}"}
        operation: dict[str, Any] = {"action": action, "channel": channel_ref, "messages": refs}
        if summary:
            operation["summary"] = summary
        if security:
            operation["security"] = security
        self.operations[self._unique(operation_id, self.operations)] = operation

    def _message(self, item: type | str | None) -> str:
        message_id = self._message_ids.get(item)
        if message_id is not None:
            return message_id
        if item is None:
            message_id = self._unique("message", self.messages)
            self.messages[message_id] = {
                "name": "message",
                "summary": "Any text or binary message (untyped).",
                "payload": _ANY_PAYLOAD,
            }
        elif isinstance(item, str):
            message_id = self._unique(_identifier(item), self.messages)
            self.messages[message_id] = {
                "name": item,
                "summary": f"A JSON object whose {self.key!r} is {item!r} (untyped: other fields are free).",
                "payload": self._type_field(item),
            }
        else:
            name = message_name(item) or item.__name__
            message_id = self._unique(_identifier(name), self.messages)
            message: dict[str, Any] = {
                "name": name,
                "title": item.__name__,
                # allOf[0] becomes the class's schema reference in components().
                "payload": {"allOf": [{}, self._type_field(name)]},
            }
            self.typed_messages.append((item, message))
            if item.__doc__ and not item.__doc__.startswith(f"{item.__name__}("):  # attrs' generated doc
                message["summary"] = item.__doc__.strip().splitlines()[0]
            self.messages[message_id] = message
        self._message_ids[item] = message_id
        return message_id

    def _type_field(self, name: str) -> dict[str, Any]:
        return {"type": "object", "properties": {self.key: {"const": name}}, "required": [self.key]}

    def _security(self, security: Security) -> dict[str, str]:
        self.security[security.name] = dict(security.scheme)
        return {"$ref": f"#/components/securitySchemes/{security.name}"}

    def components(self) -> dict[str, Any]:
        components: dict[str, Any] = {"messages": self.messages}
        if self.typed_messages:
            types = [item for item, _ in self.typed_messages]
            refs, schemas = msgspec.json.schema_components(types, ref_template=_SCHEMA_REF)
            for (_, message), ref in zip(self.typed_messages, refs, strict=True):
                message["payload"]["allOf"][0] = ref
            components["schemas"] = schemas
        if self.security:
            components["securitySchemes"] = self.security
        return components

    @staticmethod
    def _unique(candidate: str, taken: Mapping[str, Any]) -> str:
        name, n = candidate, 2
        while name in taken:
            name, n = f"{candidate}_{n}", n + 1
        return name


def _type_name(item: type | str) -> str:
    return item if isinstance(item, str) else (message_name(item) or item.__name__)


def _identifier(text: str) -> str:
    """A component/channel key: AsyncAPI requires ``^[A-Za-z0-9\\.\\-_]+$``."""
    return _NON_WORD.sub("_", text).strip("_") or "root"
