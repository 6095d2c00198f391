"""The plugin manager: one per :class:`~wsroute.App`, never global.

Plugins come from, in this order:

1. installed packages with an entry point in the ``wsroute`` group, loaded in
   name order (unless ``App(load_entrypoints=False)`` or
   ``WSROUTE_DISABLE_PLUGIN_AUTOLOAD=1``);
2. ``App(plugins=[module_or_object, ...])``;
3. ``app.plugins.register(obj)``.

A plugin is blocked by name with ``App(disable_plugins=["name"])`` or
``WSROUTE_DISABLE_PLUGINS=name,other`` (pytest's ``-p no:NAME``); an entry-point
plugin's name is its entry point's name. A plugin that fails to import stops
start-up with an error naming it and its entry point; so does one that raises
in ``wsroute_configure`` (see :class:`HookFailed`).

pluggy cannot await, so wsroute calls hook implementations itself
(:func:`call_each`, :func:`call_first`): results that are awaitable are
awaited, and a failure names the plugin that raised rather than wsroute.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import os
import types
from collections.abc import Awaitable, Iterable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .callbacks import describe
from .errors import PluginError

__all__ = ["ENTRY_POINT_GROUP", "HookFailed", "PluginInfo", "Plugins", "Resolved", "call_each", "call_first"]

ENTRY_POINT_GROUP = "wsroute"
AUTOLOAD_ENV = "WSROUTE_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "WSROUTE_DISABLE_PLUGINS"


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
        self.hook = self.pm.hook
        self._sources: dict[str, tuple[str, str | None]] = {}
        self._closed = False
        env_blocked = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        for name in [*disable, *env_blocked]:
            self.pm.set_blocked(name)
        if load_entrypoints and not autoload_disabled():
            self._load_entrypoints()

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
        return registered

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
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
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

    def implemented(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (checked once at start-up)."""
        return bool(getattr(self.hook, hook_name).get_hookimpls())

    def resolve(self, hook_name: str) -> Resolved:
        """The implementations of ``hook_name`` as they are now, for the hot path.

        The handshake resolves its hooks once when the app starts serving
        instead of asking pluggy for the list on every request.
        """
        return Resolved(hook_name, tuple(_implementations(getattr(self.hook, hook_name))))

    async def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook_name``; awaitable results are awaited.

        What a plugin uses to call a hook itself (the health plugin collects
        ``wsroute_register_health_checks`` this way).

        Returns:
            ``(plugin_name, result)`` for every result that is not None, in
            pluggy's call order (last registered first).

        Raises:
            HookFailed: naming the plugin whose implementation raised.
        """
        hook = getattr(self.hook, hook_name)
        return await _call(_implementations(hook), hook_name, kwargs)

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


def _failure(impl: Any, hook_name: str) -> HookFailed:
    plugin = impl.plugin
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else getattr(plugin, "__module__", None)
    return HookFailed(impl.plugin_name, hook_name, _entry_point_of(impl.plugin_name, module))


def _implementations(hook: Any) -> list[Any]:
    # pluggy calls the last registered implementation first (tryfirst before,
    # trylast after); so do we.
    return [impl for impl in reversed(hook.get_hookimpls()) if not (impl.hookwrapper or impl.wrapper)]


@attrs.frozen
class Resolved:
    """A hook's implementations, resolved once (see :meth:`Plugins.resolve`)."""

    hook_name: str
    impls: tuple[Any, ...]

    @property
    def all_sync(self) -> bool:
        """Whether no implementation is ``async def`` (a sync caller may be used)."""
        return not any(inspect.iscoroutinefunction(impl.function) for impl in self.impls)

    def __bool__(self) -> bool:
        return bool(self.impls)

    def first(self, kwargs: dict[str, Any]) -> Any:
        """:func:`call_first` on these implementations."""
        return _first(self.impls, self.hook_name, kwargs)

    async def each(self, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of each implementation, awaiting async ones.

        Raises:
            HookFailed: naming the plugin whose implementation raised.
        """
        return await _call(self.impls, self.hook_name, kwargs)

    def each_sync(self, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of each implementation, all synchronous.

        Raises:
            HookFailed: naming the plugin that raised or returned an awaitable.
        """
        results = []
        for impl in self.impls:
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
                if inspect.isawaitable(result):
                    raise TypeError(f"{self.hook_name} returned an awaitable from a plain 'def'")
            except Exception as exc:
                raise _failure(impl, self.hook_name) from exc
            if result is not None:
                results.append((impl.plugin_name, result))
        return results


def call_first(hook: Any, **kwargs: Any) -> Any:
    """Call a synchronous firstresult hook; the first non-``None`` result wins.

    An awaitable result (``wsroute_process_request`` may return one) is
    returned wrapped, so that awaiting it raises :class:`HookFailed` too.

    Raises:
        HookFailed: naming the plugin whose implementation raised.
    """
    return _first(_implementations(hook), hook.name, kwargs)


def _first(impls: Iterable[Any], hook_name: str, kwargs: dict[str, Any]) -> Any:
    for impl in impls:
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            raise _failure(impl, hook_name) from exc
        if result is not None:
            if inspect.isawaitable(result):
                return _awaited(result, impl, hook_name)
            return result
    return None


async def _awaited(result: Awaitable[Any], impl: Any, hook_name: str) -> Any:
    try:
        return await result
    except Exception as exc:
        raise _failure(impl, hook_name) from exc


async def call_each(hook: Any, **kwargs: Any) -> list[Any]:
    """Call every implementation of a hook, awaiting those that are async.

    Unlike pluggy's own call, a failure names its plugin, so a broken plugin
    is reported as such rather than as a wsroute bug.

    Returns:
        The results that are not None, in pluggy's call order.

    Raises:
        HookFailed: naming the plugin whose implementation raised.
    """
    return [result for _, result in await _call(_implementations(hook), hook.name, kwargs)]


async def _call(impls: Iterable[Any], hook_name: str, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    results = []
    for impl in impls:
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise _failure(impl, hook_name) from exc
        if result is not None:
            results.append((impl.plugin_name, result))
    return results
