"""The plugin manager: one per :class:`~wsroute.App`, never global.

Plugins come from, in this order:

1. installed packages with an entry point in the ``wsroute`` group (unless
   ``App(load_entrypoints=False)`` or ``WSROUTE_DISABLE_PLUGIN_AUTOLOAD=1``);
2. ``App(plugins=[module_or_object, ...])``;
3. ``app.plugins.register(obj)``.

A plugin is blocked by name with ``App(disable_plugins=["name"])`` or
``WSROUTE_DISABLE_PLUGINS=name,other`` (pytest's ``-p no:NAME``). A plugin that
fails to import stops start-up with an error naming it and its entry point.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .callbacks import describe
from .errors import PluginError

__all__ = ["ENTRY_POINT_GROUP", "HookFailed", "PluginInfo", "Plugins", "call_each", "call_first"]

ENTRY_POINT_GROUP = "wsroute"
AUTOLOAD_ENV = "WSROUTE_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "WSROUTE_DISABLE_PLUGINS"


@attrs.frozen
class PluginInfo:
    """What ``wsroute plugins`` prints for one plugin."""

    name: str
    source: str
    hooks: tuple[str, ...]
    version: str | None = None


class Plugins:
    """A pluggy ``PluginManager`` with wsroute's loading rules.

    Attributes:
        hook: pluggy's hook relay: ``plugins.hook.wsroute_startup(app=app)``.
    """

    def __init__(self, *, load_entrypoints: bool = True, disable: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.hook = self.pm.hook
        self._sources: dict[str, tuple[str, str | None]] = {}
        env_blocked = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        for name in [*disable, *env_blocked]:
            self.pm.set_blocked(name)
        autoload_off = os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0")
        if load_entrypoints and not autoload_off:
            self._load_entrypoints()

    def register(self, plugin: object, name: str | None = None, *, source: str = "register()") -> str | None:
        """Register ``plugin`` (a module or object with hook implementations)."""
        name = name or getattr(plugin, "__name__", None) or describe(plugin)
        if self.pm.is_blocked(name):
            return None
        try:
            registered = self.pm.register(plugin, name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r}: {exc}") from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} ({source}): {exc}") from None
        if registered is not None:
            self._sources[registered] = (source, None)
        return registered

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._sources.pop(name, None)

    def is_registered(self, name: str) -> bool:
        return self.pm.has_plugin(name)

    def check(self) -> None:
        """Fail when a plugin implements a hook that does not exist (a typo)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{exc}; see wsroute/hookspecs.py for the hook names") from None

    def implemented(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (checked once at start-up)."""
        return bool(getattr(self.hook, hook_name).get_hookimpls())

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
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.is_blocked(entry_point.name) or self.pm.has_plugin(entry_point.name):
                continue
            where = f"entry point '{entry_point.name} = {entry_point.value}'"
            dist = entry_point.dist
            if dist is not None:
                where += f" of {dist.name} {dist.version}"
            try:
                plugin = entry_point.load()
            except Exception as exc:
                raise PluginError(
                    f"Error importing plugin {entry_point.name!r} ({where}): {type(exc).__name__}: {exc}; "
                    f"fix or uninstall it, or block it with {DISABLE_ENV}={entry_point.name}"
                ) from exc
            self.register(plugin, entry_point.name, source=where)
            self._sources[entry_point.name] = (where, dist.version if dist is not None else None)


class HookFailed(Exception):
    """A plugin's hook implementation raised; names the plugin and the hook."""

    def __init__(self, plugin_name: str, hook_name: str) -> None:
        super().__init__(f"plugin {plugin_name!r} failed in {hook_name}")
        self.plugin_name = plugin_name
        self.hook_name = hook_name


def _implementations(hook: Any) -> list[Any]:
    # pluggy calls the last registered implementation first; so do we.
    return [impl for impl in reversed(hook.get_hookimpls()) if not (impl.hookwrapper or impl.wrapper)]


def call_first(hook: Any, **kwargs: Any) -> Any:
    """Call a synchronous firstresult hook; the first non-``None`` result wins.

    Raises:
        HookFailed: naming the plugin whose implementation raised.
    """
    for impl in _implementations(hook):
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            raise HookFailed(impl.plugin_name, hook.name) from exc
        if result is not None:
            return result
    return None


async def call_each(hook: Any, **kwargs: Any) -> list[Any]:
    """Call every implementation of a hook, awaiting those that are async.

    Unlike pluggy's own call, a failure names its plugin, so a broken plugin
    is reported as such rather than as a wsroute bug.

    Raises:
        HookFailed: naming the plugin whose implementation raised.
    """
    results = []
    for impl in _implementations(hook):
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise HookFailed(impl.plugin_name, hook.name) from exc
        if result is not None:
            results.append(result)
    return results
