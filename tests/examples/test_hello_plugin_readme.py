"""examples/hello-plugin/README.md: its commands run as written, into a temporary directory instead of .venv."""

from __future__ import annotations

import tomllib
from pathlib import Path

from exampletest import EXAMPLES, readme_commands, run

COMMANDS = readme_commands("hello-plugin")
#: What the test adds to the README's install command: the same install, into a directory of the
#: test's own and offline (hatchling comes with the dev extra), so .venv is left as scripts/setup made it.
ISOLATED = "--target {target} --no-deps --no-index --no-build-isolation --quiet"


def test_readme_installs_lists_and_uninstalls_the_plugin() -> None:
    """The README installs the package with the virtualenv's pip, lists an app's plugins, uninstalls it."""
    name = tomllib.loads((EXAMPLES / "hello-plugin" / "pyproject.toml").read_text())["project"]["name"]
    expected = [
        ".venv/bin/pip install examples/hello-plugin",
        ".venv/bin/wsroute plugins examples.quickstart:app",
        f".venv/bin/pip uninstall -y {name}",
    ]
    assert readme_commands("hello-plugin") == expected


def test_installed_plugin_is_listed_with_its_entry_point_and_hooks(tmp_path: Path) -> None:
    """After the README's install (into tmp_path), its `wsroute plugins` command lists hello-plugin."""
    installed = run(f"{COMMANDS[0]} {ISOLATED.format(target=tmp_path)}", seconds=300)
    assert installed.returncode == 0, installed.stdout
    listed = run(COMMANDS[1], env={"PYTHONPATH": str(tmp_path)})
    assert listed.returncode == 0, listed.stdout
    line = next(line for line in listed.stdout.splitlines() if line.startswith("hello-plugin "))
    assert "entry point 'hello-plugin = wsroute_hello_plugin' of wsroute-hello-plugin" in line
    assert "wsroute_register_routes" in line


def test_without_the_install_the_plugin_is_not_listed() -> None:
    """scripts/setup leaves the example out of .venv: the same listing does not show it."""
    listed = run(COMMANDS[1])
    assert listed.returncode == 0, listed.stdout
    assert not any(line.startswith("hello-plugin ") for line in listed.stdout.splitlines())
