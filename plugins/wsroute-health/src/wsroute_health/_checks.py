"""Readiness checks: collected once at start-up, run concurrently per request."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

import wsroute

__all__ = ["Check", "Outcome", "collect_checks", "run_checks"]

PASS = "pass"
FAIL = "fail"


@attrs.frozen
class Check:
    """One named readiness check.

    Attributes:
        name: its name in ``/readyz``'s body.
        func: the callable; fails by raising or returning ``False``.
        plugin: the plugin that registered it.
        is_async: ``async def`` checks run on the loop, others in a thread.
    """

    name: str
    func: Callable[[], Any]
    plugin: str
    is_async: bool


@attrs.frozen
class Outcome:
    """How one check went."""

    name: str
    passed: bool
    duration: float
    error: str | None = None

    def as_json(self, show_errors: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"status": PASS if self.passed else FAIL, "duration_ms": round(self.duration * 1000, 3)}
        if self.error is not None and show_errors:
            body["error"] = self.error
        return body


def _is_async(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    # an object whose class defines ``async def __call__``
    return not inspect.isroutine(func) and inspect.iscoroutinefunction(type(func).__call__)


async def collect_checks(app: wsroute.App) -> tuple[Check, ...]:
    """Call ``wsroute_register_health_checks`` on every plugin.

    Raises:
        wsroute.PluginError: a plugin failed, returned something that is not
            ``{name: callable}``, or reused another plugin's check name.
    """
    try:
        results = await app.plugins.collect("wsroute_register_health_checks", app=app)
    except Exception as exc:  # HookFailed: names the plugin and its entry point
        raise wsroute.PluginError(f"{exc}: {exc.__cause__!r}") from exc.__cause__
    checks: dict[str, Check] = {}
    for plugin, returned in results:
        if not isinstance(returned, Mapping):
            raise wsroute.PluginError(
                f"plugin {plugin!r}: wsroute_register_health_checks must return {{name: check}} (got {returned!r})"
            )
        for name, func in returned.items():
            if not isinstance(name, str) or not name:
                raise wsroute.PluginError(f"plugin {plugin!r}: health check name {name!r} must be a non-empty str")
            if not callable(func):
                raise wsroute.PluginError(f"plugin {plugin!r}: health check {name!r} is not callable (got {func!r})")
            if name in checks:
                raise wsroute.PluginError(
                    f"health check {name!r} is registered by plugin {checks[name].plugin!r} "
                    f"and by plugin {plugin!r}; one of them must use another name"
                )
            checks[name] = Check(name, func, plugin, _is_async(func))
    return tuple(checks.values())


async def run_check(check: Check, timeout: float) -> Outcome:
    """Run one check under ``timeout``; an exception or a timeout is a failure."""
    start = time.perf_counter()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            result = check.func() if check.is_async else await asyncio.to_thread(check.func)
            if inspect.isawaitable(result):
                result = await result
    except TimeoutError as exc:
        error = f"timed out after {timeout:g} s" if deadline.expired() else f"TimeoutError: {exc}"
        return Outcome(check.name, False, time.perf_counter() - start, error)
    except Exception as exc:
        return Outcome(check.name, False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    duration = time.perf_counter() - start
    if result is False:
        return Outcome(check.name, False, duration, "returned False")
    return Outcome(check.name, True, duration)


async def run_checks(checks: tuple[Check, ...], timeout: float) -> list[Outcome]:
    """Run every check concurrently; never raises for a failing check."""
    if not checks:
        return []
    return list(await asyncio.gather(*(run_check(check, timeout) for check in checks)))
