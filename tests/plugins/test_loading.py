"""Where plugins come from: entry points, App(plugins=...), register(); blocking; start-up errors."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

import wsroute
from wsroute.plugins import HookFailed, Plugins
from wsroute.testing import serve_app

# The example plugin is not in .venv (scripts/setup keeps it out): install it for these tests.
pytestmark = pytest.mark.usefixtures("hello_plugin")

INSTALLED = {"wsroute-health", "wsroute-headers", "hello-plugin"}
RECORDER = f"{__name__}.Recorder"  # the default name of a Recorder()


def names(app: wsroute.App) -> set[str]:
    return {info.name for info in app.plugins.list()}


class Recorder:
    """A plugin recording the lifecycle hooks it sees."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @wsroute.hookimpl
    def wsroute_configure(self, app: wsroute.App) -> None:
        self.calls.append("configure")

    @wsroute.hookimpl
    async def wsroute_register_routes(self, app: wsroute.App) -> None:
        self.calls.append("register_routes")

    @wsroute.hookimpl
    async def wsroute_startup(self, app: wsroute.App) -> None:
        self.calls.append("startup")

    @wsroute.hookimpl
    def wsroute_shutdown(self, app: wsroute.App) -> None:
        self.calls.append(f"shutdown shutting_down={app.shutting_down}")


# -- entry points -------------------------------------------------------------


def test_installed_plugins_load_by_default() -> None:
    """App() registers every installed wsroute entry point, under the entry point's name."""
    assert names(wsroute.App()) >= INSTALLED


def test_entry_point_source_and_version_are_listed() -> None:
    """list() gives an entry-point plugin's entry point, distribution and version."""
    info = {p.name: p for p in wsroute.App().plugins.list()}["hello-plugin"]
    assert info.source == "entry point 'hello-plugin = wsroute_hello_plugin' of wsroute-hello-plugin 0.1.0"
    assert info.version == "0.1.0"
    assert info.hooks == (
        "wsroute_configure",
        "wsroute_extra_headers",
        "wsroute_register_health_checks",
        "wsroute_register_routes",
    )


def test_load_entrypoints_false_loads_none() -> None:
    """App(load_entrypoints=False) registers only the built-in plugins."""
    app = wsroute.App(load_entrypoints=False)
    assert names(app) == {"wsroute.hub", "wsroute.otel"}


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_autoload_env_switches_entry_points_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """WSROUTE_DISABLE_PLUGIN_AUTOLOAD set to anything but 0 skips entry points."""
    monkeypatch.setenv("WSROUTE_DISABLE_PLUGIN_AUTOLOAD", value)
    assert names(wsroute.App()) == {"wsroute.hub", "wsroute.otel"}


def test_autoload_env_zero_leaves_autoload_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """WSROUTE_DISABLE_PLUGIN_AUTOLOAD=0 means autoload stays on."""
    monkeypatch.setenv("WSROUTE_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert names(wsroute.App()) >= INSTALLED


def test_autoload_off_still_takes_explicit_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """With autoload off, App(plugins=[...]) still registers what it is given."""
    import wsroute_health

    monkeypatch.setenv("WSROUTE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "wsroute_health" in names(wsroute.App(plugins=[wsroute_health]))


async def test_disable_plugins_blocks_one_plugin_by_name() -> None:
    """App(disable_plugins=["hello-plugin"]) blocks that plugin only: its route is gone, the others stay."""
    app = wsroute.App(disable_plugins=["hello-plugin"])
    assert "hello-plugin" not in names(app)
    assert {"wsroute-health", "wsroute-headers"} <= names(app)
    assert app.plugins.blocked() == ["hello-plugin"]
    async with serve_app(app) as server:
        assert await server.rejection("/hello-plugin") == 404


def test_disable_env_blocks_several(monkeypatch: pytest.MonkeyPatch) -> None:
    """WSROUTE_DISABLE_PLUGINS takes comma-separated names."""
    monkeypatch.setenv("WSROUTE_DISABLE_PLUGINS", " hello-plugin, wsroute-headers ,")
    app = wsroute.App()
    assert not {"hello-plugin", "wsroute-headers"} & names(app)
    assert app.plugins.is_blocked("wsroute-headers")


def test_blocked_name_blocks_explicit_registration() -> None:
    """A blocked name is refused by register() too, which returns None."""
    app = wsroute.App(load_entrypoints=False, disable_plugins=["mine"])
    assert app.plugins.register(Recorder(), "mine") is None
    assert "mine" not in names(app)


def test_built_in_plugin_can_be_blocked() -> None:
    """Built-ins are plugins: the hub's health-check plugin is blocked like any other."""
    assert "wsroute.hub" not in names(wsroute.App(load_entrypoints=False, disable_plugins=["wsroute.hub"]))


def test_entry_points_load_in_name_order() -> None:
    """Entry-point plugins are registered sorted by name, so hook order does not depend on the file system."""
    entry_names = [p.name for p in wsroute.App().plugins.list() if p.source.startswith("entry point")]
    assert entry_names == sorted(entry_names)


# -- explicit registration ----------------------------------------------------


async def test_plugins_argument_registers_modules_and_objects() -> None:
    """App(plugins=[module, object]) registers both; a module under its __name__."""
    module = types.ModuleType("my_module_plugin")

    @wsroute.hookimpl
    def wsroute_register_routes(app: wsroute.App) -> list[Any]:
        async def hello(ws: wsroute.Connection) -> None:
            await ws.send("from a module")

        return [("/from-module", hello)]

    module.wsroute_register_routes = wsroute_register_routes  # type: ignore[attr-defined]
    recorder = Recorder()
    app = wsroute.App(load_entrypoints=False, plugins=[module, recorder])
    assert {"my_module_plugin", RECORDER} <= names(app)
    async with serve_app(app) as server, server.connect("/from-module") as ws:
        assert await ws.recv() == "from a module"
    assert recorder.calls[:3] == ["configure", "register_routes", "startup"]


async def test_register_after_construction_takes_effect_at_start() -> None:
    """app.plugins.register(obj) before serving is called like any other plugin."""
    app = wsroute.App(load_entrypoints=False)
    recorder = Recorder()
    assert app.plugins.register(recorder) == RECORDER
    async with serve_app(app):
        pass
    assert recorder.calls == ["configure", "register_routes", "startup", "shutdown shutting_down=True"]


def test_registering_the_same_object_twice_returns_its_name() -> None:
    """Registering an already registered object is a no-op returning its name (explicit + entry point)."""
    import wsroute_health

    app = wsroute.App()
    assert app.plugins.register(wsroute_health) == "wsroute-health"
    assert wsroute.App(plugins=[wsroute_health]).plugins.is_registered("wsroute-health")


def test_objects_of_one_class_get_distinct_names() -> None:
    """Two instances of one plugin class are registered as NAME and NAME#2."""
    app = wsroute.App(load_entrypoints=False)
    assert app.plugins.register(Recorder()) == RECORDER
    assert app.plugins.register(Recorder()) == f"{RECORDER}#2"


def test_explicit_name_clash_is_an_error() -> None:
    """Registering a second object under a taken name raises PluginError naming it."""
    app = wsroute.App(load_entrypoints=False)
    app.plugins.register(Recorder(), "rec")
    with pytest.raises(wsroute.PluginError, match="plugin 'rec'"):
        app.plugins.register(Recorder(), "rec")


def test_unregister_removes_a_plugin() -> None:
    """unregister(name) removes the plugin and its hooks."""
    app = wsroute.App()
    app.plugins.unregister("hello-plugin")
    assert "hello-plugin" not in names(app)


def test_apps_do_not_share_plugins() -> None:
    """A plugin registered on one App is not seen by another (no global manager)."""
    first, second = wsroute.App(load_entrypoints=False), wsroute.App(load_entrypoints=False)
    first.plugins.register(Recorder(), "only-first")
    assert first.plugins.is_registered("only-first")
    assert not second.plugins.is_registered("only-first")


def test_plugins_can_be_built_without_an_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins() alone follows the same rules (what the CLI's `wsroute plugins` uses)."""
    monkeypatch.setenv("WSROUTE_DISABLE_PLUGINS", "wsroute-health")
    plugins = Plugins(disable=["hello-plugin"])
    listed = {p.name for p in plugins.list()}
    assert "wsroute-headers" in listed
    assert not {"wsroute-health", "hello-plugin"} & listed


# -- start-up errors ----------------------------------------------------------


def test_import_error_names_plugin_and_entry_point(fake_distribution: Callable[[str, str], str]) -> None:
    """An entry point whose module fails to import stops App() with its name, entry point and the fix."""
    module = fake_distribution("broken-import", "import a_module_that_does_not_exist\n")
    with pytest.raises(wsroute.PluginError) as info:
        wsroute.App()
    message = str(info.value)
    assert message.startswith(f"Error importing plugin 'broken-import' (entry point 'broken-import = {module}'")
    assert "of wsroute_fake_dist_" in message
    assert "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'" in message
    assert "WSROUTE_DISABLE_PLUGINS=broken-import" in message


def test_broken_entry_point_can_be_blocked(fake_distribution: Callable[[str, str], str]) -> None:
    """Blocking a broken plugin by name lets the app start without importing it."""
    fake_distribution("broken-import", "raise RuntimeError('never imported')\n")
    assert "broken-import" not in names(wsroute.App(disable_plugins=["broken-import"]))


async def test_configure_error_names_plugin_and_entry_point(fake_distribution: Callable[[str, str], str]) -> None:
    """A plugin raising in wsroute_configure stops start-up naming the plugin, its entry point and the cause."""
    module = fake_distribution(
        "bad-config",
        """
        from wsroute import hookimpl

        @hookimpl
        def wsroute_configure(app):
            raise ValueError("missing API key")
        """,
    )
    app = wsroute.App()
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(app):
            pass
    message = str(info.value)
    assert f"plugin 'bad-config' (entry point 'bad-config = {module}' of wsroute_fake_dist_" in message
    assert "failed in wsroute_configure" in message
    assert "missing API key" in message


async def test_settings_error_names_the_plugin() -> None:
    """An unknown settings key for an installed plugin stops start-up naming the plugin and its entry point."""
    app = wsroute.App(settings={"hello-plugin": {"greting": "hi"}})
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(app):
            pass
    message = str(info.value)
    assert "plugin 'hello-plugin' (entry point 'hello-plugin = wsroute_hello_plugin'" in message
    assert "unknown key 'greting' (known: greeting)" in message


async def test_misspelt_hook_fails_at_start_up() -> None:
    """A hook name that is not in the spec (a typo) stops start-up."""

    class Typo:
        @wsroute.hookimpl
        def wsroute_configur(self, app: wsroute.App) -> None:
            pass

    app = wsroute.App(load_entrypoints=False, plugins=[Typo()])
    with pytest.raises(wsroute.PluginError, match="wsroute_configur"):
        async with serve_app(app):
            pass


def test_wrong_argument_name_fails_at_registration() -> None:
    """An implementation asking for an argument its hook does not have is refused when registered."""

    class Wrong:
        @wsroute.hookimpl
        def wsroute_configure(self, application: wsroute.App) -> None:
            pass

    with pytest.raises(wsroute.PluginError, match=r"(?s)plugin 'wrong' \(register\(\)\).*application"):
        wsroute.App(load_entrypoints=False).plugins.register(Wrong(), "wrong")


@pytest.mark.parametrize("hook", ["wsroute_process_request", "wsroute_handle_exception"])
async def test_async_firstresult_hook_fails_at_start_up(hook: str) -> None:
    """An async def implementation of a firstresult hook stops start-up with the reason."""

    async def impl(app: wsroute.App) -> None:
        return None

    plugin = types.SimpleNamespace(**{hook: wsroute.hookimpl(impl)})
    app = wsroute.App(load_entrypoints=False)
    app.plugins.register(plugin, "asyncfirst")
    with pytest.raises(wsroute.PluginError, match=f"plugin 'asyncfirst': {hook} must be a plain 'def'"):
        async with serve_app(app):
            pass


async def test_failing_startup_hook_names_the_plugin() -> None:
    """A plugin raising in wsroute_startup stops start-up with its name and the cause."""

    class Fails:
        @wsroute.hookimpl
        async def wsroute_startup(self, app: wsroute.App) -> None:
            raise OSError("cannot reach the cache")

    app = wsroute.App(load_entrypoints=False, plugins=[Fails()])
    with pytest.raises(wsroute.PluginError, match=r"plugin '[\w.<>]+\.Fails' failed in wsroute_startup: OSError"):
        async with serve_app(app):
            pass


# -- calling hooks -------------------------------------------------------------


async def test_collect_returns_plugin_names_with_results() -> None:
    """plugins.collect() awaits async implementations and pairs each result with its plugin."""

    class A:
        @wsroute.hookimpl
        async def wsroute_register_dependencies(self, app: Any) -> dict[str, int]:
            return {"a": 1}

    class B:
        @wsroute.hookimpl
        def wsroute_register_dependencies(self, app: Any) -> None:
            return None

    plugins = Plugins(load_entrypoints=False)
    plugins.register(A(), "a")
    plugins.register(B(), "b")
    assert await plugins.collect("wsroute_register_dependencies", app=None) == [("a", {"a": 1})]


async def test_collect_failure_names_the_plugin_and_keeps_the_cause() -> None:
    """A raising implementation surfaces as HookFailed with the plugin, the hook and the original exception."""

    class Boom:
        @wsroute.hookimpl
        def wsroute_register_dependencies(self) -> None:
            raise LookupError("nope")

    plugins = Plugins(load_entrypoints=False)
    plugins.register(Boom(), "boom")
    with pytest.raises(HookFailed) as info:
        await plugins.collect("wsroute_register_dependencies", app=None)
    assert str(info.value) == "plugin 'boom' failed in wsroute_register_dependencies"
    assert (info.value.plugin_name, info.value.hook_name, info.value.where) == (
        "boom",
        "wsroute_register_dependencies",
        None,
    )
    assert isinstance(info.value.__cause__, LookupError)


# -- loading messages ------------------------------------------------------------


async def test_unknown_hook_names_the_plugin_and_the_closest_hook() -> None:
    """A misspelt hook names the plugin by its registered name (not its repr) and suggests the real hook."""

    class Typo:
        @wsroute.hookimpl
        def wsroute_register_route(self, app: wsroute.App) -> None:
            pass

    app = wsroute.App(load_entrypoints=False)
    app.plugins.register(Typo(), "typo-plugin")
    with pytest.raises(wsroute.PluginError) as info:
        async with serve_app(app):
            pass
    assert str(info.value) == (
        "plugin 'typo-plugin' implements 'wsroute_register_route', which is not a wsroute hook; "
        "did you mean 'wsroute_register_routes'? the hooks are listed in wsroute/hookspecs.py and docs/plugins.md"
    )
    assert " object at 0x" not in str(info.value)


async def test_optional_unknown_hook_is_allowed() -> None:
    """An implementation marked optionalhook=True for a hook wsroute does not have is accepted (pluggy's rule)."""

    class Optional:
        @wsroute.hookimpl(optionalhook=True)
        def wsroute_future_hook(self) -> None:
            pass

    app = wsroute.App(load_entrypoints=False, plugins=[Optional()])
    app.add_route("/x", _echo)
    async with serve_app(app) as server, server.connect("/x") as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"


async def _echo(ws: wsroute.Connection) -> None:
    async for message in ws:
        await ws.send(message)


def test_hook_without_hookimpl_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """A method named like a hook but missing @hookimpl logs a WARNING naming plugin, method and fix."""

    class Forgot:
        def wsroute_configure(self, app: wsroute.App) -> None:
            pass

        @wsroute.hookimpl
        def wsroute_startup(self, app: wsroute.App) -> None:
            pass

        def wsroute_helper_attribute(self) -> None:  # also named like a hook
            pass

    caplog.set_level("WARNING", logger="wsroute.plugins")
    wsroute.App(load_entrypoints=False).plugins.register(Forgot(), "forgot")
    assert [r.getMessage() for r in caplog.records] == [
        f"plugin 'forgot': {name} looks like a hook but is not decorated with @wsroute.hookimpl, "
        "so it is never called; add the decorator (or rename it)"
        for name in ("wsroute_configure", "wsroute_helper_attribute")
    ]


def test_decorated_plugins_log_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Registering plugins whose hooks are all decorated (the installed ones, a Recorder) logs nothing."""
    caplog.set_level("WARNING", logger="wsroute.plugins")
    wsroute.App(plugins=[Recorder()])
    assert caplog.records == []


@pytest.mark.parametrize(
    "switch",
    [
        {"env": {"WSROUTE_DISABLE_PLUGIN_AUTOLOAD": "1"}},
        {"env": {"WSROUTE_DISABLE_PLUGINS": "hello-plugin"}},
        {"app": {"load_entrypoints": False}},
        {"app": {"disable_plugins": ["hello-plugin"]}},
    ],
    ids=["autoload-env", "disable-env", "load_entrypoints", "disable_plugins"],
)
async def test_settings_for_a_switched_off_plugin_are_ignored_by_every_switch(
    monkeypatch: pytest.MonkeyPatch, switch: dict[str, Any]
) -> None:
    """Settings for an installed plugin that is switched off (any of the four ways) are accepted; it stays off."""
    for name, value in switch.get("env", {}).items():
        monkeypatch.setenv(name, value)
    app = wsroute.App(settings={"hello-plugin": {"greeting": "hi"}}, **switch.get("app", {}))
    app.add_route("/x", _echo)
    async with serve_app(app) as server:
        assert await server.rejection("/hello-plugin") == 404
        async with server.connect("/x") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
    assert "hello-plugin" not in names(app)


async def test_settings_for_a_plugin_not_installed_still_fail_with_autoload_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With autoload off, settings under a name no installed plugin has are still reported as a typo."""
    monkeypatch.setenv("WSROUTE_DISABLE_PLUGIN_AUTOLOAD", "1")
    app = wsroute.App(settings={"hello-plugn": {"greeting": "hi"}})
    with pytest.raises(wsroute.PluginError, match="no loaded plugin reads settings named 'hello-plugn'"):
        async with serve_app(app):
            pass


# -- built-ins are plugin modules ----------------------------------------------------


def test_built_ins_are_the_modules_listed_in_default_plugins() -> None:
    """Every DEFAULT_PLUGINS entry is registered as its module, under its name, with source 'built-in'."""
    import importlib

    from wsroute.builtins import DEFAULT_PLUGINS

    plugins = Plugins(load_entrypoints=False)
    assert [(p.name, p.source) for p in plugins.list()] == [(name, "built-in") for name, _ in DEFAULT_PLUGINS]
    for name, module in DEFAULT_PLUGINS:
        assert plugins.pm.get_plugin(name) is importlib.import_module(module)


async def test_hub_built_in_returns_the_brokers_health_checks() -> None:
    """The wsroute.hub built-in answers wsroute_register_health_checks with the app's broker's checks."""
    from wsroute.hub import MemoryBroker

    async def ready() -> bool:
        return True

    class CheckedBroker(MemoryBroker):
        def health_checks(self) -> dict[str, Any]:
            return {"mine": ready}

    app = wsroute.App(load_entrypoints=False, broker=CheckedBroker())
    assert await app.plugins.collect("wsroute_register_health_checks", app=app) == [("wsroute.hub", {"mine": ready})]
    blocked = wsroute.App(load_entrypoints=False, broker=CheckedBroker(), disable_plugins=["wsroute.hub"])
    assert await blocked.plugins.collect("wsroute_register_health_checks", app=blocked) == []
