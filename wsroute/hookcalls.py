"""Calling hooks: one path that keeps pluggy's wrappers and monitoring, and names the plugin that failed.

Every hook is called through pluggy's own ``HookCaller.__call__``, so
wrappers (``@hookimpl(wrapper=True)``, ``hookwrapper=True``), tryfirst /
trylast and call monitoring (``WSROUTE_TRACE_PLUGINS``) work as pluggy
documents them. pluggy cannot await: an ``async def`` implementation's
result is a coroutine, which wsroute awaits afterwards, in call order
(datasette's ``await_me_maybe`` over pluggy's list). Which plugin failed is
read from the exception's traceback, only on the failure path
(:class:`HookFailed`). :meth:`Plugins.resolve <wsroute.plugins.Plugins.resolve>`
hands out a :class:`Resolved` per hook; the handshake, the session and the
app's start-up call hooks only through it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import pluggy

from .hookspecs import ENTRY_POINT_GROUP

__all__ = ["HookFailed", "Resolved", "describe_entry_point"]


class HookFailed(Exception):
    """A plugin's hook implementation raised; names the plugin and the hook.

    The original exception is ``__cause__``.

    Attributes:
        plugin_name: the failing plugin's registered name.
        hook_name: the hook it failed in.
        where: its entry point (``entry point 'x = pkg' of dist 1.0``), if
            it was loaded from one.
    """

    def __init__(self, plugin_name: str, hook_name: str, where: str | None = None) -> None:
        origin = f" ({where})" if where else ""
        super().__init__(f"plugin {plugin_name!r}{origin} failed in {hook_name}")
        self.plugin_name = plugin_name
        self.hook_name = hook_name
        self.where = where


def describe_entry_point(entry_point: importlib.metadata.EntryPoint) -> str:
    """``entry point 'name = module' of dist 1.0``: where a plugin came from, in messages."""
    where = f"entry point '{entry_point.name} = {entry_point.value}'"
    dist = entry_point.dist
    if dist is not None:
        where += f" of {dist.name} {dist.version}"
    return where


@functools.cache
def _entry_point_of(plugin_name: str, module: str | None) -> str | None:
    # Only on the failure path; cached since installed entry points do not
    # change while the process runs.
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=plugin_name):
        if module is None or entry_point.module == module:
            return describe_entry_point(entry_point)
    return None


@attrs.frozen
class Resolved:
    """One hook, looked up once when the app starts serving (see :meth:`Plugins.resolve`).

    Registration is closed while the app serves, so the implementations
    cannot change under it; the flags below are computed once.

    A call goes through pluggy's ``HookCaller.__call__`` whenever pluggy
    would do more than call the implementations in turn: some
    implementation is a wrapper (``wrapper=True``, ``hookwrapper=True``) or
    takes keyword-only arguments, the spec has argument defaults, or call
    monitoring is on (``WSROUTE_TRACE_PLUGINS``, ``pm.add_hookcall_monitoring``;
    checked on every call, so monitoring added while serving is seen at once).
    Otherwise the implementations are called directly, in pluggy's order, with
    pluggy's semantics (``None`` results dropped; a firstresult hook stops at
    the first other result; an exception propagates as raised): about a
    quarter of the instructions of pluggy's call, which matters on the
    handshake path (measured with ``python -m benchmarks.instructions``).

    Attributes:
        hook_name: the hook's name.
        caller: pluggy's ``HookCaller`` for it (wrappers and monitoring included).
        impls: every implementation, wrappers included, in registration order.
        all_sync: no (non-wrapper) implementation is ``async def``.
        direct: ``(plugin name, function, argument names)`` per
            implementation in call order, or None when every call must go
            through pluggy (see above).
        firstresult: the hook stops at its first non-``None`` result.
        monitor: reads the plugin manager's current hook executor, or None
            when pluggy offers none to compare (then pluggy is always called).
        plain_exec: that executor when no monitoring is installed.
    """

    hook_name: str
    caller: Any = attrs.field(repr=False)
    impls: tuple[Any, ...] = attrs.field(repr=False)
    all_sync: bool = True
    direct: tuple[tuple[str, Callable[..., Any], tuple[str, ...]], ...] | None = attrs.field(default=None, repr=False)
    firstresult: bool = False
    monitor: Callable[[], Any] | None = attrs.field(default=None, repr=False)
    plain_exec: Any = attrs.field(default=None, repr=False)

    @classmethod
    def of(cls, caller: Any, manager: pluggy.PluginManager | None = None, plain_exec: Any = None) -> Resolved:
        """Resolve ``caller`` now.

        Args:
            caller: pluggy's ``HookCaller``.
            manager: its plugin manager; without it every call goes through pluggy.
            plain_exec: the manager's hook executor before any monitoring was
                added (:class:`Plugins` records it when it creates the manager).
        """
        impls = tuple(caller.get_hookimpls())
        plain = [impl for impl in impls if not _is_wrapper(impl)]
        spec = caller.spec
        monitor = None
        if manager is not None and plain_exec is not None and hasattr(manager, "_inner_hookexec"):
            monitor = functools.partial(getattr, manager, "_inner_hookexec")
        direct = None
        simple = len(plain) == len(impls) and not any(getattr(impl, "kwargnames", ()) for impl in impls)
        if monitor is not None and simple and not (spec is not None and spec.kwargdefaults):
            direct = tuple((impl.plugin_name, impl.function, tuple(impl.argnames)) for impl in reversed(impls))
        return cls(
            caller.name,
            caller,
            impls,
            not any(inspect.iscoroutinefunction(i.function) for i in plain),
            direct,
            bool(spec is not None and spec.opts.get("firstresult")),
            monitor,
            plain_exec,
        )

    def __bool__(self) -> bool:
        return bool(self.impls)

    def _direct(self) -> tuple[tuple[str, Callable[..., Any], tuple[str, ...]], ...] | None:
        """The direct call list, or None when pluggy must make this call (wrappers, monitoring...)."""
        if self.direct is None or self.monitor is None or self.monitor() is not self.plain_exec:
            return None
        return self.direct

    def call(self, kwargs: dict[str, Any]) -> Any:
        """pluggy's call: the list of results (or the first, for firstresult), not awaited.

        Raises:
            HookFailed: naming the plugin whose implementation (or wrapper) raised.
        """
        direct = self._direct()
        try:
            if direct is None:
                return self.caller(**kwargs)
            if self.firstresult:
                for _, function, names in direct:
                    result = function(*map(kwargs.__getitem__, names))
                    if result is not None:
                        return result
                return None
            results = []
            for _, function, names in direct:
                result = function(*map(kwargs.__getitem__, names))
                if result is not None:
                    results.append(result)
            return results
        except Exception as exc:
            raise _failure(exc, self) from exc

    def _pairs(self, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """Call a non-firstresult hook: ``(plugin name, result)`` for each result that is not None, not awaited."""
        direct = self.direct
        if direct is None or self.monitor() is not self.plain_exec:  # type: ignore[misc]
            return _pair(self.call(kwargs), self)
        pairs = []
        try:
            for name, function, names in direct:  # each result is known to come from its implementation
                result = function(*map(kwargs.__getitem__, names))
                if result is not None:
                    pairs.append((name, result))
        except Exception as exc:
            raise _failure(exc, self) from exc
        return pairs

    def first(self, kwargs: dict[str, Any]) -> Any:
        """Call a synchronous firstresult hook; the first non-``None`` result wins.

        An awaitable result (``wsroute_process_request`` may return one) is
        returned wrapped, so that awaiting it raises :class:`HookFailed` too.

        Raises:
            HookFailed: naming the plugin whose implementation raised.
        """
        direct = self.direct
        if direct is None or self.monitor() is not self.plain_exec:  # type: ignore[misc]
            result = self.call(kwargs)
        else:  # inlined: this runs on every handshake
            result = None
            try:
                for _, function, names in direct:
                    result = function(*map(kwargs.__getitem__, names))
                    if result is not None:
                        break
            except Exception as exc:
                raise _failure(exc, self) from exc
        if result is not None and inspect.isawaitable(result):
            return _awaited(result, self)
        return result

    async def each(self, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` for each result that is not None, awaiting awaitables in order.

        Raises:
            HookFailed: naming the plugin whose implementation raised.
        """
        pairs = self._pairs(kwargs)
        settled = []
        for index, (name, result) in enumerate(pairs):
            if inspect.isawaitable(result):
                try:
                    result = await result
                except BaseException as exc:
                    _close_pending(pairs[index + 1 :])
                    if isinstance(exc, Exception):
                        raise _failure(exc, self) from exc
                    raise
            if result is not None:
                settled.append((name, result))
        return settled

    def each_sync(self, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """:meth:`each` when every implementation is synchronous (no coroutine per call).

        Raises:
            HookFailed: naming the plugin that raised or returned an awaitable.
        """
        pairs = self._pairs(kwargs)
        if pairs:  # most calls on the handshake path return nothing: no loop
            _refuse_awaitables(pairs, self)
        return pairs


def _refuse_awaitables(pairs: list[tuple[str, Any]], hook: Resolved) -> None:
    """Raise :class:`HookFailed` for the first awaitable result of a hook called synchronously."""
    for name, result in pairs:
        if inspect.isawaitable(result):
            _close_pending(pairs)
            cause = TypeError(f"{hook.hook_name} returned an awaitable from a plain 'def'")
            raise HookFailed(name, hook.hook_name) from cause


async def _awaited(result: Awaitable[Any], hook: Resolved) -> Any:
    try:
        return await result
    except Exception as exc:
        raise _failure(exc, hook) from exc


def _close_pending(pairs: Sequence[tuple[str, Any]]) -> None:
    """Close coroutines that will not be awaited (no "never awaited" warning)."""
    for _, result in pairs:
        close = getattr(result, "close", None)
        if inspect.iscoroutine(result) and close is not None:
            close()


def _is_wrapper(impl: Any) -> bool:
    return bool(impl.hookwrapper or impl.wrapper)


def _code_of(function: Any) -> Any:
    function = inspect.unwrap(getattr(function, "__func__", function))
    return getattr(function, "__code__", None)


def _pair(results: Any, hook: Resolved) -> list[tuple[str, Any]]:
    """Attach the plugin name to each result of a non-firstresult call.

    pluggy returns results without their plugin and drops ``None`` results.
    A coroutine is matched exactly to the ``async def`` that made it; the
    other results came, in call order, from the plain ``def`` implementations
    between two such matches: exact when the counts agree, else credited to
    the candidates (``'a or b'``; a wrapper may also have changed the list).
    """
    if not results:
        return []
    plain = [impl for impl in reversed(hook.impls) if not _is_wrapper(impl)]
    if len(results) == len(plain):
        return [(impl.plugin_name, result) for impl, result in zip(plain, results, strict=True)]
    pairs: list[tuple[str, Any]] = []
    pending: list[Any] = []  # results of plain defs since the last matched coroutine
    start = 0
    for result in [*results, _END]:
        position = _position_of(result, plain, start) if result is not _END else len(plain)
        if position is None:
            pending.append(result)
            continue
        pairs.extend(_credit(pending, [i for i in plain[start:position] if not _is_async(i)]))
        pending = []
        if result is not _END:
            pairs.append((plain[position].plugin_name, result))
            start = position + 1
    return pairs


_END = object()


def _position_of(result: Any, plain: list[Any], start: int) -> int | None:
    code = getattr(result, "cr_code", None)
    if code is None:
        return None
    for index in range(start, len(plain)):
        if _code_of(plain[index].function) is code:
            return index
    return None


def _credit(results: list[Any], candidates: list[Any]) -> list[tuple[str, Any]]:
    if len(results) == len(candidates):
        return [(impl.plugin_name, result) for impl, result in zip(candidates, results, strict=True)]
    names = " or ".join(impl.plugin_name for impl in candidates) or "?"
    return [(names, result) for result in results]


def _is_async(impl: Any) -> bool:
    return inspect.iscoroutinefunction(impl.function)


def _failure(exc: BaseException, hook: Resolved) -> HookFailed:
    """The :class:`HookFailed` for ``exc``: the plugin whose code is outermost in its traceback."""
    impl = _culprit(exc, hook.impls)
    if impl is None:
        plain = [i for i in hook.impls if not _is_wrapper(i)] or list(hook.impls)
        return HookFailed(" or ".join(i.plugin_name for i in plain) or "?", hook.hook_name)
    plugin = impl.plugin
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else getattr(plugin, "__module__", None)
    return HookFailed(impl.plugin_name, hook.hook_name, _entry_point_of(impl.plugin_name, module))


def _culprit(exc: BaseException, impls: tuple[Any, ...]) -> Any:
    """The implementation that raised: its code in the traceback, else its object or module."""
    by_code = {_code_of(impl.function): impl for impl in impls}
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        impl = by_code.get(tb.tb_frame.f_code)
        if impl is not None:
            return impl
        tb = tb.tb_next
    # An awaitable returned by a plain def (e.g. a method's coroutine): the
    # frame's ``self`` is the plugin object, or its module is the plugin module.
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        module = frame.f_globals.get("__name__")
        for impl in impls:
            if owner is not None and owner is impl.plugin:
                return impl
            if isinstance(impl.plugin, types.ModuleType) and impl.plugin.__name__ == module:
                return impl
    return None
