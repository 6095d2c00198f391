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
in ``wsroute_configure`` (see :class:`~wsroute.hookcalls.HookFailed`).

Hooks are called through :mod:`wsroute.hookcalls` (:meth:`Plugins.resolve`
returns its :class:`~wsroute.hookcalls.Resolved`), so pluggy's wrappers,
``tryfirst``/``trylast`` and call monitoring work as pluggy documents them;
``WSROUTE_TRACE_PLUGINS=1`` logs every hook call.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .builtins import DEFAULT_PLUGINS
from .callbacks import describe
from .errors import PluginError
from .hookcalls import HookFailed, Resolved, describe_entry_point
from .hookspecs import ENTRY_POINT_GROUP

# HookFailed and Resolved live in wsroute.hookcalls; they are named here too, with the manager that hands them out.
__all__ = ["ENTRY_POINT_GROUP", "HookFailed", "PluginInfo", "Plugins", "Resolved"]

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
            where = describe_entry_point(entry_point)
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


def _trace_before(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    names = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no implementation"
    trace_logger.info("hook %s(%s) calls: %s", hook_name, ", ".join(kwargs), names)


def _trace_after(outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    if outcome.exception is not None:
        trace_logger.info("hook %s raised %r", hook_name, outcome.exception)
    else:
        trace_logger.info("hook %s returned %r", hook_name, outcome.get_result())
