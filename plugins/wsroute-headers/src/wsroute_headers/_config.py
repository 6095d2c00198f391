"""The plugin's settings, validated when the app starts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

import wsroute

__all__ = ["DEFAULTS", "KEEP", "MANAGED", "NAME", "Config", "check_name", "check_value"]

NAME = "wsroute-headers"

#: ``App(settings={"wsroute-headers": {...}})`` keys and their defaults.
#:
#: * ``headers``: ``{name: value}`` (or ``{name: [value, ...]}``) set on every
#:   handshake response, replacing headers of the same name.
#: * ``server``: None keeps websockets' ``Server`` header, a str replaces it,
#:   False removes it.
DEFAULTS: Mapping[str, Any] = {"headers": {}, "server": None}

#: Headers that the handshake manages; configuring them would break it.
MANAGED: Final = frozenset(
    {
        "connection",
        "upgrade",
        "content-length",
        "transfer-encoding",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-version",
    }
)

# RFC 9110 token and field-value (what websockets' parser accepts).
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


#: ``Config.server`` when websockets' own Server header is kept.
KEEP: Final = _Keep()


def _error(message: str) -> wsroute.PluginError:
    return wsroute.PluginError(f"settings for plugin {NAME!r}: {message}")


def check_name(name: Any, where: str = "header") -> str:
    """Return ``name`` if it is a valid HTTP header name.

    Raises:
        wsroute.PluginError: not a str, or not an HTTP token.
    """
    if not isinstance(name, str):
        raise _error(f"{where} name must be a str (got {name!r} that is a <{type(name).__name__}>)")
    if not _TOKEN.fullmatch(name):
        raise _error(
            f"{where} name {name!r} is not a valid HTTP header name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces, colons, CR or LF)"
        )
    return name


def check_value(name: str, value: Any) -> str:
    """Return ``value`` if it is a valid HTTP header value.

    Raises:
        wsroute.PluginError: not a str, or contains CR, LF or another
            control character, or a character outside Latin-1.
    """
    if not isinstance(value, str):
        raise _error(f"value of header {name!r} must be a str (got {value!r} that is a <{type(value).__name__}>)")
    if "\r" in value or "\n" in value:
        raise _error(f"value of header {name!r} contains CR or LF, which would split the response: {value!r}")
    if not _VALUE.fullmatch(value):
        raise _error(f"value of header {name!r} contains a control character or a character outside Latin-1: {value!r}")
    return value


@attrs.frozen
class Config:
    """Validated settings.

    Attributes:
        headers: ``((name, (value, ...)), ...)`` in configuration order.
        server: the Server header's value, None to remove it, or :data:`KEEP`.
    """

    headers: tuple[tuple[str, tuple[str, ...]], ...]
    server: str | _Keep | None

    @property
    def active(self) -> bool:
        """Whether there is anything to do on each response."""
        return bool(self.headers) or self.server is not KEEP

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Config:
        """Validate ``app.plugin_settings(NAME, DEFAULTS)``.

        Raises:
            wsroute.PluginError: the first invalid name or value, quoted.
        """
        given = settings["headers"]
        if not isinstance(given, Mapping):
            raise _error(f"'headers' must be a dict {{name: value}} (got {given!r})")
        headers: list[tuple[str, tuple[str, ...]]] = []
        seen: set[str] = set()
        for name, value in given.items():
            check_name(name)
            lower = name.lower()
            if lower == "server":
                raise _error("set the Server header with the 'server' setting, not in 'headers'")
            if lower in MANAGED:
                raise _error(f"header {name!r} is managed by the WebSocket handshake and cannot be configured")
            if lower in seen:
                raise _error(f"header {name!r} is configured twice (names are case-insensitive); use a list of values")
            seen.add(lower)
            if isinstance(value, Sequence) and not isinstance(value, str):
                if not value:
                    raise _error(f"header {name!r} has an empty list of values")
                values = tuple(check_value(name, item) for item in value)
            else:
                values = (check_value(name, value),)
            headers.append((name, values))
        server = settings["server"]
        if server is None:
            chosen: str | _Keep | None = KEEP
        elif server is False:
            chosen = None
        elif isinstance(server, str) and server:
            chosen = check_value("Server", server)
        else:
            raise _error(
                f"'server' must be None (keep websockets' Server header), a non-empty str (replace it) "
                f"or False (remove it) (got {server!r})"
            )
        return cls(tuple(headers), chosen)
