"""Exceptions raised by wsroute.

Every error a user can cause says what was wrong, the value that was wrong and
what to do instead, so that a mistake fails at start-up with a readable
message rather than on the first connection::

    WsrouteError
     ├── ConfigurationError        a mistake in how the app is put together
     │    ├── RouteError           bad pattern, unknown converter, conflict
     │    ├── HandlerError         a handler that is not async / not a Handler
     │    ├── DependencyError      a handler parameter nothing can provide
     │    └── PluginError          a plugin failed to load or configure
     ├── URLPathError              app.url_path_for(): unknown name, missing parameter
     ├── LoadError                 "module:attr" could not be imported
     ├── ServerError               the server could not listen (port in use…)
     ├── SubscriptionLimit         a connection subscribed to max_subscriptions topics
     └── BrokerError               the message broker failed
          └── BrokerUnavailable    the broker cannot be reached right now
"""

from __future__ import annotations

__all__ = [
    "WsrouteError",
    "ConfigurationError",
    "RouteError",
    "HandlerError",
    "DependencyError",
    "PluginError",
    "URLPathError",
    "LoadError",
    "ServerError",
    "SubscriptionLimit",
    "BrokerError",
    "BrokerUnavailable",
]


class WsrouteError(Exception):
    """Base class of every exception wsroute raises on purpose."""


class ConfigurationError(WsrouteError):
    """The application is put together wrongly; raised before serving."""


class RouteError(ConfigurationError):
    """A route pattern is malformed, uses an unknown converter, or conflicts."""


class HandlerError(ConfigurationError):
    """A handler is neither an ``async def`` function nor a ``Handler`` class."""


class DependencyError(ConfigurationError):
    """A handler asks for a parameter that no path, provider or default gives."""


class PluginError(ConfigurationError):
    """A plugin failed to import, register or configure itself."""


class URLPathError(WsrouteError, LookupError):
    """``app.url_path_for()`` cannot build a path: no route has the name, or the parameters do not fit."""


class LoadError(WsrouteError):
    """An import string such as ``"app:app"`` does not name an App."""


class ServerError(WsrouteError):
    """The server could not start listening (address in use, no permission…)."""


class SubscriptionLimit(WsrouteError):
    """``subscribe()`` would take a connection past its ``max_subscriptions`` topics.

    Raised by ``hub.subscribe()`` and ``Handler.subscribe()``; the connection
    stays open and keeps its other subscriptions. Unsubscribe from a topic
    first, or raise the limit (``App(max_subscriptions=...)`` or
    ``@app.route(path, max_subscriptions=...)``).
    """


class BrokerError(WsrouteError):
    """The message broker failed to deliver or to publish a message."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached now; the operation may succeed later."""
