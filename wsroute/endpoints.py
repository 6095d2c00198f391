"""What the AsyncAPI document says of each route, read from the route once.

:func:`endpoint_of` turns a registered :class:`~wsroute.routes.Route` into the
:class:`~wsroute.asyncapi.Endpoint` value the pure document builder takes:

* the channel address is the pattern without converters
  (``/items/{item_id:int}`` → ``/items/{item_id}``), each parameter with its
  converter's name;
* the description is the handler's own docstring (a Handler subclass without
  one does not inherit ``wsroute.Handler``'s);
* a Handler class receives its ``@on`` types (message classes or wire names)
  and, when it overrides ``on_message``, anything else; it sends its ``sends``;
* a function handler owns its loop, so it receives and sends anything;
* ``bearer_auth`` and ``query_token_auth`` middleware (app-level or the
  route's) carry their security scheme (:func:`security_of`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from .asyncapi import Endpoint, Security
from .handlers import Handler
from .routes import Route

__all__ = ["SECURITY_ATTR", "endpoint_of", "security_of"]

#: The attribute on a middleware function holding its :class:`Security`.
SECURITY_ATTR = "__wsroute_security__"


def security_of(middleware: Callable[..., Any]) -> Security | None:
    """The security scheme a middleware enforces (set by ``bearer_auth``/``query_token_auth``), or ``None``."""
    security = getattr(middleware, SECURITY_ATTR, None)
    return security if isinstance(security, Security) else None


def endpoint_of(route: Route, app_middleware: Iterable[Callable[..., Any]] = ()) -> Endpoint:
    """The :class:`Endpoint` describing ``route`` (app middleware runs on every route)."""
    handler = route.handler
    segments = route.pattern.segments
    address = "/" + "/".join(s.text if s.param is None else f"{{{s.param}}}" for s in segments)
    params = tuple((s.param, s.converter.name) for s in segments if s.param is not None and s.converter is not None)
    securities: list[Security] = []
    for middleware in (*app_middleware, *route.middleware):
        security = security_of(middleware)
        if security is not None and security not in securities:
            securities.append(security)
    common: dict[str, Any] = {
        "params": params,
        "description": _own_doc(handler),
        "first_message": route.message,
        "security": tuple(securities),
    }
    if isinstance(handler, type) and issubclass(handler, Handler):
        typed = handler._wsroute_typed
        receives: tuple[type | str, ...] = tuple(typed.get(kind, kind) for kind in handler._wsroute_dispatch)
        receives_any = handler.on_message is not Handler.on_message
        return Endpoint(
            address, handler, receives=receives, receives_any=receives_any, sends=tuple(handler.sends), **common
        )
    return Endpoint(address, handler, receives_any=True, sends_any=True, **common)


def _own_doc(handler: Any) -> str | None:
    doc = handler.__dict__.get("__doc__") if isinstance(handler, type) else getattr(handler, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)
