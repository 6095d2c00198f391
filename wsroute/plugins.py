"""The plugin manager: one per :class:`~wsroute.App`, never global.

Plugins come from, in this order:

1. wsroute's built-in plugin modules (:data:`~wsroute.builtins.DEFAULT_PLUGINS`);
2. installed packages with an entry point in the ``wsroute`` group, loaded in
   name order (unless ``App(load_entrypoints=False)`` or
   ``WSROUTE_DISABLE_PLUGIN_AUTOLOAD=1``);
3. ``App(plugins=[module_or_object, ...])``;
4. ``app.plugins.register(obj)``.

A plugin is blocked by name with ``App(disable_plugins=["name"])`` or
``WSROUTE_DISABLE_PLUGINS=name,other`` (pytest's ``-p no:NAME``); an entry-point
plugin's name is its entry point's name. A plugin that fails to import stops
start-up with an error naming it and its entry point; so does one that raises
in ``wsroute_configure`` (see :class:`HookFailed`).

Every hook is called through pluggy's own call (:class:`Resolved`), so
wrappers (``@hookimpl(wrapper=True)`` and old-style ``hookwrapper=True``),
``tryfirst``/``trylast`` and pluggy's call monitoring work as pluggy
documents them; ``WSROUTE_TRACE_PLUGINS=1`` logs every hook call. pluggy
cannot await, so results that are awaitable are awaited afterwards, in call
order, and a failure names the plugin that raised rather than wsroute.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import inspect
import logging
import os
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .builtins import DEFAULT_PLUGINS
from .callbacks import describe
from .errors import PluginError

__all__ = ["ENTRY_POINT_GROUP", "HookFailed", "PluginInfo", "Plugins", "Resolved"]

ENTRY_POINT_GROUP = "wsroute"
AUTOLOAD_ENV = "WSROUTE_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "WSROUTE_DISABLE_PLUGINS"
TRACE_ENV = "WSROUTE_TRACE_PLUGINS"

logger = logging.getLogger("wsroute.plugins")
trace_logger = logging.getLogger("wsroute.plugins.trace")


@attrs.frozen
class PluginInfo:
    """What ``wsroute plugins`` prints for one plugin.

    Attributes:
        name: the name it is registered (and blocked) under.
        source: where it came from: ``entry point 'x = pkg' of dist 1.0``,
            ``App(plugins=...)``, ``register()``, ``built-in``…
        hooks: the hooks it implements, sorted.
        version: its distribution's version, for entry-point plugins.
    """

    name: str
    source: str
    hooks: tuple[str, ...]
    version: str | None = None


class Plugins:
    """A pluggy ``PluginManager`` with wsroute's loading rules.

    Args:
        load_entrypoints: load the plugins installed with a ``wsroute`` entry
            point (also switched off by ``WSROUTE_DISABLE_PLUGIN_AUTOLOAD=1``).
        disable: plugin names to block, added to ``WSROUTE_DISABLE_PLUGINS``.

    Attributes:
        pm: the underlying ``pluggy.PluginManager``.
        hook: pluggy's hook relay: ``plugins.hook.wsroute_startup``.
    """

    def __init__(self, *, load_entrypoints: bool = True, disable: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        # pluggy's hook executor without monitoring: a Resolved hook calls the
        # implementations itself only while the manager still uses this one.
        self._plain_exec = getattr(self.pm, "_inner_hookexec", None)
        self.hook = self.pm.hook
        self._sources: dict[str, tuple[str, str | None]] = {}
        self._closed = False
        env_blocked = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        for name in [*disable, *env_blocked]:
            self.pm.set_blocked(name)
        self._register_builtins()
        self._autoloaded = load_entrypoints and not autoload_disabled()
        if self._autoloaded:
            self._load_entrypoints()
        if os.environ.get(TRACE_ENV, "").strip() not in ("", "0"):
            self.trace()

    def register(self, plugin: object, name: str | None = None, *, source: str = "register()") -> str | None:
        """Register ``plugin`` (a module or object with hook implementations).

        Args:
            plugin: the module or object.
            name: its name; default: a module's ``__name__``, else
                ``module.QualName`` (made unique with ``#2``, ``#3``…).
            source: where it comes from, for :meth:`list`.

        Returns:
            The name it is registered under; None when that name is blocked.
            Registering an already registered object returns its name.

        Raises:
            PluginError: the name is taken, a hook's arguments are not
                among the spec's (a typo in an argument name), or the app is
                serving (registration is closed).
        """
        self._check_open(f"register plugin {describe(plugin)}")
        if self.pm.is_registered(plugin):
            return self.pm.get_name(plugin)
        if name is None:
            name = getattr(plugin, "__name__", None) or describe(plugin)
            base, n = name, 1
            while self.pm.has_plugin(name):
                n += 1
                name = f"{base}#{n}"
        if self.pm.is_blocked(name):
            return None
        try:
            registered = self.pm.register(plugin, name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} ({source}): {exc}") from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} ({source}): {exc}") from None
        if registered is not None:
            self._sources[registered] = (source, None)
            self._warn_unmarked(plugin, registered)
        return registered

    def _warn_unmarked(self, plugin: object, name: str) -> None:
        """Log a WARNING for each ``wsroute_*`` function of ``plugin`` lacking ``@hookimpl``.

        pluggy silently skips such a function, so a forgotten decorator would
        otherwise mean a hook that never runs.
        """
        prefix = f"{hookspecs.PROJECT_NAME}_"
        for attr in dir(plugin):
            if not attr.startswith(prefix):
                continue
            value = getattr(plugin, attr, None)
            if not inspect.isroutine(value) or self.pm.parse_hookimpl_opts(plugin, attr) is not None:
                continue
            logger.warning(
                "plugin %r: %s looks like a hook but is not decorated with @wsroute.hookimpl, "
                "so it is never called; add the decorator (or rename it)",
                name,
                attr,
            )

    def unregister(self, name: str) -> None:
        """Remove the plugin registered as ``name``.

        Raises:
            PluginError: the app is serving (registration is closed).
        """
        self._check_open(f"unregister plugin {name!r}")
        self.pm.unregister(name=name)
        self._sources.pop(name, None)

    def close_registration(self) -> None:
        """Refuse :meth:`register` and :meth:`unregister` (the app started serving)."""
        self._closed = True

    def open_registration(self) -> None:
        """Accept registrations again (the app stopped)."""
        self._closed = False

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise PluginError(
                f"cannot {what}: the app is serving, and its hooks were resolved when it started; "
                "register plugins before app.serve()/app.run()"
            )

    def is_registered(self, name: str) -> bool:
        """Whether a plugin is registered as ``name``."""
        return self.pm.has_plugin(name)

    def is_blocked(self, name: str) -> bool:
        """Whether ``name`` is blocked (``disable_plugins``, ``WSROUTE_DISABLE_PLUGINS``)."""
        return self.pm.is_blocked(name)

    def blocked(self) -> list[str]:
        """The blocked plugin names, sorted."""
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is None)

    def check(self) -> None:
        """Fail on a hook that does not exist (a typo) or an ``async def`` firstresult hook.

        Raises:
            PluginError: naming the plugin and the hook.
        """
        self._check_unknown_hooks()
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:  # pragma: no cover - _check_unknown_hooks reports first
            raise PluginError(f"{exc}; see wsroute/hookspecs.py for the hook names") from None
        for caller in vars(self.hook).values():
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
                continue
            if not caller.spec.opts.get("firstresult"):
                continue
            for impl in caller.get_hookimpls():
                if inspect.iscoroutinefunction(impl.function):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {caller.name} must be a plain 'def', not 'async def': "
                        "it is a firstresult hook, called synchronously (see wsroute/hookspecs.py)"
                    )

    def _check_unknown_hooks(self) -> None:
        """pluggy's check_pending, with the plugin's name and the closest hook name."""
        known = sorted(name for name in vars(hookspecs) if name.startswith(f"{hookspecs.PROJECT_NAME}_"))
        for caller in vars(self.hook).values():
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(caller.name, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise PluginError(
                    f"plugin {impl.plugin_name!r} implements {caller.name!r}, which is not a wsroute hook; "
                    f"{hint}the hooks are listed in wsroute/hookspecs.py and docs/plugins.md"
                )

    def is_switched_off(self, name: str) -> bool:
        """Whether ``name`` is a plugin deliberately not loaded.

        True when it is blocked (``disable_plugins``, ``WSROUTE_DISABLE_PLUGINS``)
        or installed with a ``wsroute`` entry point that was not loaded because
        autoloading is off (``App(load_entrypoints=False)``,
        ``WSROUTE_DISABLE_PLUGIN_AUTOLOAD=1``). Settings for such a plugin are
        ignored rather than reported as a typo.
        """
        if self.pm.is_blocked(name):
            return True
        if self._autoloaded or self.pm.has_plugin(name):
            return False
        return bool(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name))

    def implemented(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (checked once at start-up)."""
        return bool(getattr(self.hook, hook_name).get_hookimpls())

    def resolve(self, hook_name: str) -> Resolved:
        """The hook as it is now, for the hot path.

        The handshake and the session resolve their hooks once when the app
        starts serving (registration is closed from then on), so a request
        asks nothing of pluggy but the call itself.
        """
        return Resolved.of(getattr(self.hook, hook_name), self.pm, self._plain_exec)

    async def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call ``hook_name`` through pluggy; awaitable results are awaited, in call order.

        What the app uses for its start-up and shutdown hooks. Wrappers run
        around the implementations (they see the raw results: coroutines for
        ``async def`` implementations).

        Returns:
            The results that are not None, in pluggy's call order (last
            registered first).

        Raises:
            HookFailed: naming the plugin whose implementation raised.
        """
        return [result for _, result in await self.resolve(hook_name).each(kwargs)]

    async def call_for_app(self, hook_name: str, app: object) -> list[Any]:
        """:meth:`call` for the app's own hook calls: configure, ``register_*``, start-up, shutdown.

        Returns:
            As :meth:`call`.

        Raises:
            PluginError: naming the plugin, the hook and the exception raised,
                which is ``__cause__``.
        """
        try:
            return await self.call(hook_name, app=app)
        except HookFailed as failure:
            raise PluginError(f"{failure}: {failure.__cause__!r}") from failure.__cause__

    async def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """:meth:`call`, each result with the name of the plugin that returned it.

        What a plugin uses to call a hook itself (the health plugin collects
        ``wsroute_register_health_checks`` this way). pluggy does not say
        which plugin returned a result; wsroute matches them in call order
        (exact unless some implementation returned None or a wrapper changed
        the list; then a result is credited to the candidates).

        Raises:
            HookFailed: naming the plugin whose implementation raised.
        """
        return await self.resolve(hook_name).each(kwargs)

    def trace(self) -> Callable[[], None]:
        """Log every hook call and its outcome to ``wsroute.plugins.trace`` (INFO).

        On by default when ``WSROUTE_TRACE_PLUGINS=1`` (as datasette's
        ``DATASETTE_TRACE_PLUGINS``); uses pluggy's call monitoring, so it
        sees wrappers too.

        Returns:
            A function that switches tracing off again.
        """
        undo: Callable[[], None] = self.pm.add_hookcall_monitoring(_trace_before, _trace_after)
        return undo

    def list(self) -> list[PluginInfo]:
        """The registered plugins, where they came from, and their hooks."""
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            source, version = self._sources.get(name, ("register()", None))
            infos.append(PluginInfo(name, source, hooks, version))
        return infos

    def _register_builtins(self) -> None:
        """Register the built-in plugin modules of :data:`~wsroute.builtins.DEFAULT_PLUGINS` (unless blocked)."""
        for name, module in DEFAULT_PLUGINS:
            if not self.pm.is_blocked(name):
                self.register(importlib.import_module(module), name, source="built-in")

    def _load_entrypoints(self) -> None:
        entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        for entry_point in entry_points:
            if self.pm.is_blocked(entry_point.name) or self.pm.has_plugin(entry_point.name):
                continue
            where = _describe_entry_point(entry_point)
            try:
                plugin = entry_point.load()
            except Exception as exc:
                raise PluginError(
                    f"Error importing plugin {entry_point.name!r} ({where}): {type(exc).__name__}: {exc}; "
                    f"fix or uninstall it, or block it with {DISABLE_ENV}={entry_point.name}"
                ) from exc
            self.register(plugin, entry_point.name, source=where)
            dist = entry_point.dist
            self._sources[entry_point.name] = (where, dist.version if dist is not None else None)


def autoload_disabled() -> bool:
    """Whether ``WSROUTE_DISABLE_PLUGIN_AUTOLOAD`` is set to something other than ``0``."""
    return os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0")


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


def _describe_entry_point(entry_point: importlib.metadata.EntryPoint) -> str:
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
            return _describe_entry_point(entry_point)
    return None


# -- calling hooks: one path ------------------------------------------------
#
# Every hook is called through pluggy's own ``HookCaller.__call__``, so
# wrappers (``@hookimpl(wrapper=True)``, ``hookwrapper=True``), tryfirst /
# trylast and call monitoring (``WSROUTE_TRACE_PLUGINS``) work as pluggy
# documents them. pluggy cannot await: an ``async def`` implementation's
# result is a coroutine, which wsroute awaits afterwards, in call order
# (datasette's ``await_me_maybe`` over pluggy's list). Which plugin failed is
# read from the exception's traceback, only on the failure path.


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
        for name, result in pairs:
            if inspect.isawaitable(result):
                _close_pending(pairs)
                cause = TypeError(f"{self.hook_name} returned an awaitable from a plain 'def'")
                raise HookFailed(name, self.hook_name) from cause
        return pairs


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


def _trace_before(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    names = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no implementation"
    trace_logger.info("hook %s(%s) calls: %s", hook_name, ", ".join(kwargs), names)


def _trace_after(outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    if outcome.exception is not None:
        trace_logger.info("hook %s raised %r", hook_name, outcome.exception)
    else:
        trace_logger.info("hook %s returned %r", hook_name, outcome.get_result())
