"""examples/hello-plugin/README.md: its commands run as written."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

from exampletest import EXAMPLES, readme_commands, run

COMMANDS = readme_commands("hello-plugin")


def test_readme_commands_are_the_install_and_the_listing() -> None:
    """The README installs the plugin with the virtualenv's pip, then lists an app's plugins."""
    assert COMMANDS == [
        ".venv/bin/pip install -e examples/hello-plugin",
        ".venv/bin/wsroute plugins examples.quickstart:app",
    ]


def test_the_install_command_is_what_setup_did() -> None:
    """scripts/setup installed examples/hello-plugin in editable mode, as the README's first command does.

    The test does not run pip itself: reinstalling would need the network for
    the build backend and change the environment under the other tests.
    """
    dist = importlib.metadata.distribution("wsroute-hello-plugin")
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert direct_url["dir_info"] == {"editable": True}
    assert direct_url["url"] == Path(EXAMPLES / "hello-plugin").resolve().as_uri()


def test_plugins_command_lists_hello_plugin_with_its_hooks() -> None:
    """`wsroute plugins examples.quickstart:app` exits 0 and lists hello-plugin, its entry point and hooks."""
    result = run(COMMANDS[1])
    assert result.returncode == 0, result.stdout
    line = next(line for line in result.stdout.splitlines() if line.startswith("hello-plugin "))
    assert "entry point 'hello-plugin = wsroute_hello_plugin' of wsroute-hello-plugin" in line
    assert "wsroute_configure" in line
