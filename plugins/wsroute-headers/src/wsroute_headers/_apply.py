"""Applying the configured headers: the Server header once per start, the others per response."""

from __future__ import annotations

from typing import Any

from websockets.datastructures import Headers

import wsroute
from wsroute import hookimpl

from ._config import NAME, Config

__all__ = ["Apply", "ServerHeader"]


def _has_internals() -> bool:
    """Whether websockets' ``Headers`` keeps the ``_dict``/``_list`` pair this module writes to directly."""
    probe = Headers()
    probe["X-Probe"] = "1"
    return getattr(probe, "_dict", None) == {"x-probe": ["1"]} and getattr(probe, "_list", None) == [("X-Probe", "1")]


#: websockets' ``Headers`` (17.x) lower-cases every name in ``del`` and ``in``,
#: and checks every value with a regular expression in ``headers[name] = v``;
#: values validated at start-up are appended to its two structures directly.
#: Another ``Headers`` layout (a future websockets) takes the public methods.
_DIRECT = _has_internals()


class ServerHeader:
    """The ``server`` setting as websockets' ``server_header`` option.

    websockets then writes the Server header the app wants on every
    handshake response (or none, for ``server: False``) exactly as it writes
    its own, instead of the plugin deleting and re-adding it per response.
    """

    def __init__(self, server: str | None) -> None:
        self.server = server

    def __repr__(self) -> str:
        return f"<{NAME} Server: {self.server!r}>"

    @hookimpl
    def wsroute_serve_options(self) -> dict[str, Any]:
        """``{"server_header": value}``; None sends no Server header."""
        return {"server_header": self.server}


class Apply:
    """One app's configured headers; its hook runs on every handshake response.

    It mutates the response rather than returning headers, because wsroute
    *appends* returned headers and this plugin promises to *replace*. It runs
    last among the implementations (``trylast``); headers that other plugins
    return are appended by wsroute afterwards.
    """

    def __init__(self, config: Config) -> None:
        self.headers = config.headers
        # (name, lower-cased name, values, (name, value) pairs): all the per-response work precomputed.
        self._plan = tuple(
            (name, name.lower(), values, tuple((name, value) for value in values)) for name, values in config.headers
        )

    def __repr__(self) -> str:
        return f"<{NAME} {', '.join(name for name, _ in self.headers)}>"

    @hookimpl(trylast=True)
    def wsroute_extra_headers(self, response: wsroute.Response) -> None:
        """Set the configured headers on ``response``, replacing any of the same name."""
        headers = response.headers
        if _DIRECT and type(headers) is Headers:
            index = headers._dict
            for name, lower, values, pairs in self._plan:
                if lower in index:  # rare: a middleware's rejection or another plugin set it
                    del headers[name]
                index[lower] = list(values)
                headers._list.extend(pairs)  # read again: ``del`` rebinds it
            return
        for name, _, values, _ in self._plan:
            if name in headers:
                del headers[name]
            for value in values:
                headers[name] = value


def server_of(config: Config) -> ServerHeader | None:
    """The Server header's plugin object, or None when websockets' own header is kept."""
    server = config.server
    return ServerHeader(server) if server is None or isinstance(server, str) else None
