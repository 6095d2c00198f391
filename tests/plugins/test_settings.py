"""app.plugin_settings(): a plugin's own configuration, defaults and typos."""

from __future__ import annotations

import pytest

import wsroute


def test_defaults_without_settings() -> None:
    """With no settings for the plugin, the defaults are returned (as a new dict)."""
    defaults = {"timeout": 1.0, "path": "/x"}
    settings = wsroute.App(load_entrypoints=False).plugin_settings("mine", defaults)
    assert settings == defaults
    assert settings is not defaults


def test_given_settings_override_defaults() -> None:
    """Given keys override their defaults; the others keep them."""
    app = wsroute.App(load_entrypoints=False, settings={"mine": {"timeout": 5}})
    assert app.plugin_settings("mine", {"timeout": 1.0, "path": "/x"}) == {"timeout": 5, "path": "/x"}


def test_settings_are_per_plugin() -> None:
    """Each plugin reads its own key only."""
    app = wsroute.App(load_entrypoints=False, settings={"a": {"x": 1}, "b": {"x": 2}})
    assert app.plugin_settings("a", {"x": 0}) == {"x": 1}
    assert app.plugin_settings("b", {"x": 0}) == {"x": 2}


def test_unknown_key_is_an_error_naming_the_plugin() -> None:
    """A key the plugin does not declare raises PluginError naming the plugin, the key and the known keys."""
    app = wsroute.App(load_entrypoints=False, settings={"mine": {"timout": 5}})
    with pytest.raises(wsroute.PluginError) as info:
        app.plugin_settings("mine", {"timeout": 1.0, "path": "/x"})
    assert str(info.value) == "settings for plugin 'mine': unknown key 'timout' (known: path, timeout)"
