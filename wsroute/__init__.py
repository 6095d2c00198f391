"""wsroute: routing, middleware, plugins and messaging for websockets servers.

The public API is exactly what ``__all__`` lists; a test guards it.
"""

from __future__ import annotations

from websockets.http11 import Request, Response

from .app import App
from .connection import Connection
from .dispatch import Rejection
from .errors import (
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    DependencyError,
    HandlerError,
    LoadError,
    PluginError,
    RouteError,
    ServerError,
    SubscriptionLimit,
    URLPathError,
    WsrouteError,
)
from .handlers import Handler, on
from .hookspecs import hookimpl
from .hub.history import Position, Recovery
from .lag import LagMonitor
from .limits import Rate
from .messages import InvalidMessage, MessageDecoder, message
from .middleware import allow_origins, bearer_auth, query_token_auth
from .outcomes import BadMessage, Close, Deny
from .routers import Router
from .routes import Route
from .routing import Converter

__version__ = "0.1.0"

__all__ = [
    "App",
    "BadMessage",
    "BrokerError",
    "BrokerUnavailable",
    "Close",
    "ConfigurationError",
    "Connection",
    "Converter",
    "DependencyError",
    "Deny",
    "Handler",
    "HandlerError",
    "InvalidMessage",
    "LagMonitor",
    "LoadError",
    "MessageDecoder",
    "PluginError",
    "Position",
    "Recovery",
    "Rate",
    "Rejection",
    "Request",
    "Response",
    "Route",
    "RouteError",
    "Router",
    "ServerError",
    "URLPathError",
    "SubscriptionLimit",
    "WsrouteError",
    "__version__",
    "allow_origins",
    "bearer_auth",
    "hookimpl",
    "message",
    "on",
    "query_token_auth",
]
