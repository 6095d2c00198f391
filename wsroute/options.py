"""The App's options, validated when the App is built, held in frozen values.

Every option of ``App(...)``, ``app.serve(...)`` and ``app.run(...)`` is
checked before anything listens, and every mistake raises
:class:`~wsroute.ConfigurationError` naming the option, the value and what is
expected — never a ``ValueError`` from deep inside, nor a ``TypeError`` from
the event loop's ``create_server()`` at serve time::

    >>> wsroute.App(ping_intervall=5)
    ConfigurationError: App(ping_intervall=5): unknown option 'ping_intervall'; did you mean 'ping_interval'? ...

One frozen value per concern, each checked by attrs validators (DESIGN.md,
"Growing the layout"): :class:`MessageOptions` (first-message routing) and
:class:`ServeOptions` (what goes to websockets' ``serve()``). The hub's and
the proxies' options are checked by :func:`build_hub` and
:func:`trusted_proxies`, which turn their modules' own errors into
``ConfigurationError``.

Which keywords pass through to websockets is read from the signatures of
``websockets.asyncio.server.serve`` and of ``loop.create_server`` /
``loop.create_unix_server`` (websockets hands its unknown keywords to them),
so the list follows the installed websockets.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from websockets.asyncio.server import serve

from .connection import Connection
from .errors import ConfigurationError
from .forwarding import TrustedProxies
from .hub import Hub
from .hub.policy import POLICIES

__all__ = [
    "SERVE_PARAMETERS",
    "MessageOptions",
    "ServeOptions",
    "build_hub",
    "check_names",
    "ON_INVALID_MESSAGE",
    "check_on_invalid_message",
    "check_policy",
    "plugin_serve_options",
    "trusted_proxies",
]


def _parameters(func: Callable[..., Any], skip: Iterable[str]) -> frozenset[str]:
    params = inspect.signature(func).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return frozenset(named - set(skip))


#: Keywords ``App()``, ``app.serve()`` and ``app.run()`` pass to websockets'
#: ``serve()``: its own parameters, then ``loop.create_server()``'s and
#: ``loop.create_unix_server()``'s (``unix=True, path=...`` serve a Unix socket).
SERVE_PARAMETERS: frozenset[str] = (
    _parameters(serve, ("handler", "host", "port"))
    | _parameters(asyncio.AbstractEventLoop.create_server, ("self", "protocol_factory", "host", "port"))
    | _parameters(asyncio.AbstractEventLoop.create_unix_server, ("self", "protocol_factory"))
    | {"unix"}
)

#: websockets' options that wsroute sets itself, and what to use instead.
RESERVED = {
    "handler": "routes are registered with @app.route",
    "subprotocols": "pass App(subprotocols=[...]) for every route, or @app.route(path, subprotocols=[...])",
    "origins": (
        "websockets compares origins case-sensitively and with explicit default ports; use "
        "app.middleware(wsroute.allow_origins([...])), which compares them as RFC 6454 says"
    ),
}


def check_names(given: Iterable[str], known: Iterable[str], where: str, *, values: Mapping[str, Any]) -> None:
    """Refuse a keyword that is not in ``known``, suggesting the closest one.

    Args:
        given: the keywords received.
        known: the keywords accepted (suggestions come from these).
        where: the call as the message shows it: ``"App"``, ``"app.serve"``.
        values: the keywords with their values, to quote the bad one.

    Raises:
        ConfigurationError: a reserved keyword (``handler``), or
            ``App(ping_intervall=5): unknown option
            'ping_intervall'; did you mean 'ping_interval'? ...``.
    """
    known = sorted(set(known))
    for name in given:
        if name in RESERVED:
            raise ConfigurationError(f"{name}= cannot be passed to wsroute: {RESERVED[name]} (given to {where}())")
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigurationError(
            f"{where}({name}={values[name]!r}): unknown option {name!r}; {hint}"
            f"{where}() takes wsroute's options and those of websockets' serve() and loop.create_server()"
        )


# -- value checks, one per kind of websockets option ------------------------


def _seconds_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0)


def _size(value: Any) -> bool:
    def one(v: Any) -> bool:
        return v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0)

    if isinstance(value, tuple):
        return len(value) == 2 and all(one(v) for v in value)
    return one(value)


def _takes(value: Any, count: int) -> bool:
    """None, or a callable that accepts ``count`` positional arguments."""
    if value is None:
        return True
    if not callable(value):
        return False
    try:
        inspect.signature(value).bind(*[None] * count)
    except TypeError:
        return False
    except ValueError:  # no readable signature (some builtins): trust it
        return True
    return True


def _bool_or_none(value: Any) -> bool:
    return value is None or isinstance(value, bool)


_VALUE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{
        name: (_seconds_or_none, "a number of seconds >= 0, or None")
        for name in (
            "open_timeout", "ping_interval", "ping_timeout", "close_timeout",
            "ssl_handshake_timeout", "ssl_shutdown_timeout",
        )
    },
    "max_size": (_size, "a size in bytes > 0, None, or a (message, fragment) tuple of them"),
    "max_queue": (_size, "a number of frames > 0, None, or a (high, low) tuple of them"),
    "write_limit": (_size, "a size in bytes > 0, or a (high, low) tuple of them"),
    "compression": (lambda v: v in ("deflate", None), "'deflate' or None"),
    "server_header": (lambda v: v is None or isinstance(v, str), "a str, or None to send no Server header"),
    "ssl": (lambda v: v is None or isinstance(v, ssl.SSLContext), "an ssl.SSLContext, or None"),
    "logger": (
        lambda v: v is None or isinstance(v, (logging.Logger, logging.LoggerAdapter)),
        "a logging.Logger or LoggerAdapter, or None",
    ),
    "backlog": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    **{name: (_bool_or_none, "True, False or None") for name in ("reuse_address", "reuse_port", "start_serving")},
    "process_request": (lambda v: _takes(v, 2), "a callable taking (connection, request), or None"),
    "process_response": (lambda v: _takes(v, 3), "a callable taking (connection, request, response), or None"),
}


def _check_serve_options(instance: Any, attribute: Any, options: Mapping[str, Any]) -> None:
    where = instance.where
    check_names(options, SERVE_PARAMETERS, where, values=options)
    for name, value in options.items():
        check = _VALUE_CHECKS.get(name)
        if check is not None and not check[0](value):
            raise ConfigurationError(f"{where}({name}={value!r}): expected {check[1]}")
    factory = options.get("create_connection")
    if factory is not None and not (isinstance(factory, type) and issubclass(factory, Connection)):
        raise ConfigurationError(
            f"{where}(create_connection={factory!r}): must be a subclass of wsroute.Connection, "
            "which carries params and ctx"
        )


@attrs.frozen
class ServeOptions:
    """Keywords for websockets' ``serve()``, checked by name and by value.

    Attributes:
        options: ``{name: value}``; names are those of :data:`SERVE_PARAMETERS`.
        where: the call they came from, for messages (``"App"``, ``"app.serve"``).

    Raises:
        ConfigurationError: an unknown name (with the closest valid one), a
            reserved one (``handler``), a value of the wrong kind, or a
            ``create_connection`` that is not a :class:`~wsroute.Connection`.
    """

    options: Mapping[str, Any] = attrs.field(factory=dict, validator=_check_serve_options)
    where: str = attrs.field(default="App", kw_only=True)

    def merged(self, overrides: Mapping[str, Any], where: str) -> ServeOptions:
        """These options updated by ``overrides`` (checked as coming from ``where``)."""
        ServeOptions(dict(overrides), where=where)
        return ServeOptions({**self.options, **overrides}, where=where)



def plugin_serve_options(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Merge what plugins' ``wsroute_serve_options`` returned, each checked as ``App()``'s options are.

    Args:
        pairs: ``(plugin name, {option: value})`` per plugin that returned something.

    Returns:
        The options, to override the app's and ``app.serve()``'s.

    Raises:
        ConfigurationError: a plugin returned something other than a dict, an
            unknown option or a wrong value (naming the plugin), or two
            plugins set one option to different values.
    """
    merged: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for plugin, options in pairs:
        where = f"plugin {plugin!r}: wsroute_serve_options"
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"{where} returned {options!r}; return a dict {{option name: value}} or None")
        ServeOptions(dict(options), where=where)
        for name, value in options.items():
            if name in merged and merged[name] != value:
                raise ConfigurationError(
                    f"{where} sets {name}={value!r}, but plugin {owners[name]!r} sets {name}={merged[name]!r}; "
                    "configure only one of them"
                )
            merged[name] = value
            owners[name] = plugin
    return merged

def _message_key(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"App(message_key={value!r}): expected a non-empty str such as 'type'")


def _timeout(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"App(first_message_timeout={value!r}): expected a number of seconds > 0")


#: What an invalid typed ``@on`` message gets: an error reply, or a 1008 close.
ON_INVALID_MESSAGE = ("reply", "close")


def check_on_invalid_message(value: Any, where: str, error: type[ConfigurationError] = ConfigurationError) -> None:
    """Refuse an ``on_invalid_message`` that is not one of :data:`ON_INVALID_MESSAGE`.

    Raises:
        ConfigurationError: (or ``error``) naming ``where``, the value and the valid names.
    """
    if value not in ON_INVALID_MESSAGE:
        raise error(
            f"{where}: on_invalid_message={value!r}; expected one of {', '.join(map(repr, ON_INVALID_MESSAGE))}"
        )


def _on_invalid(instance: Any, attribute: Any, value: Any) -> None:
    check_on_invalid_message(value, "App()")


@attrs.frozen
class MessageOptions:
    """How connections read JSON messages.

    Attributes:
        message_key: the JSON field holding a message's type (default ``"type"``).
        first_message_timeout: seconds a message-routed connection has to
            send its first message before it is closed with 1008 (default 10).
        on_invalid_message: what a typed ``@on`` message that fails
            validation gets, unless its route says otherwise: ``"reply"``
            (an error message; default) or ``"close"`` (1008).

    Raises:
        ConfigurationError: an empty key, a timeout that is not a number > 0,
            or an unknown ``on_invalid_message``.
    """

    message_key: str = attrs.field(default="type", validator=_message_key)
    first_message_timeout: float = attrs.field(default=10.0, validator=_timeout)
    on_invalid_message: str = attrs.field(default="reply", validator=_on_invalid)


def check_policy(value: Any, where: str, error: type[ConfigurationError] = ConfigurationError) -> None:
    """Refuse a slow-consumer policy name that is not one of :data:`~wsroute.hub.policy.POLICIES`.

    Raises:
        ConfigurationError: (or ``error``) naming ``where``, the value and the valid names.
    """
    if value not in POLICIES:
        raise error(f"{where}: expected one of {', '.join(POLICIES)}")


#: ``App(hub_options=...)`` keys: Hub's keywords except those App has its own for.
_HUB_OWN_KEYWORDS = {
    "broker": "App(broker=...)",
    "policy": "App(slow_consumer=...)",
    "message_key": "App(message_key=...)",
}


def build_hub(
    hub: Hub | None, broker: Any, slow_consumer: str | None, hub_options: Mapping[str, Any] | None
) -> Hub:
    """The App's hub: ``hub`` as given, or one built from the three hub keywords.

    Raises:
        ConfigurationError: ``hub=`` together with the hub keywords, a key of
            ``hub_options`` that Hub does not take (or that has its own App
            keyword), or a value Hub refuses (the message quotes it).
    """
    options = dict(hub_options or {})
    if hub is not None:
        if not isinstance(hub, Hub):
            raise ConfigurationError(f"App(hub={hub!r}): expected a wsroute.hub.Hub")
        given = [name for name, value in (("broker", broker), ("slow_consumer", slow_consumer)) if value is not None]
        if given or options:
            names = ", ".join([*given, *(["hub_options"] if options else [])])
            raise ConfigurationError(
                f"App(hub=..., {names}=...): pass either a Hub or the hub keywords (broker, slow_consumer, "
                "hub_options), not both; give those options to Hub(...) instead"
            )
        return hub
    policy = "disconnect" if slow_consumer is None else slow_consumer
    check_policy(policy, f"App(slow_consumer={policy!r})")
    for key, instead in _HUB_OWN_KEYWORDS.items():
        if key in options:
            raise ConfigurationError(f"App(hub_options={{{key!r}: ...}}): use {instead} instead")
    known = _parameters(Hub.__init__, ("self", *_HUB_OWN_KEYWORDS))
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"App(hub_options={{{key!r}: {options[key]!r}}}): unknown hub option {key!r}; {hint}"
                f"known: {', '.join(sorted(known))}"
            )
    try:
        return Hub(broker=broker, policy=policy, **options)
    except (ValueError, TypeError) as exc:
        source = f"App(broker={broker!r})" if str(exc).startswith("broker") else f"App(hub_options={options!r})"
        raise ConfigurationError(f"{source}: {exc}") from None


def trusted_proxies(value: Any) -> TrustedProxies:
    """``App(forwarded_allow_ips=...)`` parsed, or ConfigurationError.

    Raises:
        ConfigurationError: an entry that is not an IP address or network, or
            a value that is neither a str nor a list of str.
    """
    if value is not None and not isinstance(value, str):
        items = list(value) if isinstance(value, Iterable) else None
        if items is None or not all(isinstance(item, str) for item in items):
            raise ConfigurationError(
                f"App(forwarded_allow_ips={value!r}): expected a str such as '10.0.0.0/8, 127.0.0.1', "
                "a list of them, '*' or None"
            )
        value = items
    try:
        return TrustedProxies.parse(value)
    except ValueError as exc:
        raise ConfigurationError(f"App(forwarded_allow_ips={value!r}): {exc}") from None
