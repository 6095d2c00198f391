"""One helper to treat sync functions and coroutines alike.

Middleware, verify functions and plugin hooks may be plain functions or
``async def``; wsroute decides which once, at registration, so the hot path
does not ask again. ``functools.partial`` objects are unwrapped first, as
websockets and Starlette do.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["describe", "is_async_callable"]


def is_async_callable(obj: Any) -> bool:
    """Whether calling ``obj`` returns a coroutine (partials and ``__call__`` included)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    return not inspect.isroutine(obj) and callable(obj) and inspect.iscoroutinefunction(obj.__call__)


def describe(obj: Any) -> str:
    """A short name for messages and logs: ``module.qualname``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else str(name)

