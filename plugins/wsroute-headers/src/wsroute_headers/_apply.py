"""Applying the configured headers to each handshake response."""

from __future__ import annotations

import wsroute
from wsroute import hookimpl

from ._config import KEEP, NAME, Config

__all__ = ["Apply"]


class Apply:
    """One app's configured headers; its hook runs on every handshake response.

    It mutates the response rather than returning headers, because wsroute
    *appends* returned headers and this plugin promises to *replace*. It runs
    last among the implementations (``trylast``); headers that other plugins
    return are appended by wsroute afterwards.
    """

    def __init__(self, config: Config) -> None:
        self.headers = config.headers
        self.server = config.server

    def __repr__(self) -> str:
        return f"<{NAME} {', '.join(name for name, _ in self.headers) or 'Server'}>"

    @hookimpl(trylast=True)
    def wsroute_extra_headers(self, response: wsroute.Response) -> None:
        """Set the configured headers and the Server header on ``response``."""
        headers = response.headers
        for name, values in self.headers:
            if name in headers:
                del headers[name]
            for value in values:
                headers[name] = value
        server = self.server
        if server is not KEEP:
            if "Server" in headers:
                del headers["Server"]
            if isinstance(server, str):
                headers["Server"] = server
