"""``wsroute asyncapi``: the document printed as JSON or YAML, and ``routes`` showing message classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from clitest import run_cli, wsroute_env

from examples.game import app as game_app

pytestmark = pytest.mark.timeout(60)

#: Plugins installed in the environment would add their routes to the CLI's view of the app.
NO_PLUGINS = wsroute_env(WSROUTE_DISABLE_PLUGIN_AUTOLOAD="1")


def test_asyncapi_json_is_the_apps_document() -> None:
    """``wsroute asyncapi MODULE:ATTR --server URL`` prints app.asyncapi([URL]) as JSON."""
    result = run_cli("asyncapi", "examples.game:app", "--server", "ws://127.0.0.1:8765", env=NO_PLUGINS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == game_app.asyncapi(["ws://127.0.0.1:8765"])


def test_asyncapi_yaml_has_the_same_content() -> None:
    """``--format yaml`` prints the same document, readable by a YAML parser, keys in document order."""
    options = ("--format", "yaml", "--title", "Game", "--api-version", "2.1.0")
    result = run_cli("asyncapi", "examples.game:app", *options, env=NO_PLUGINS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("asyncapi: 3.0.0\ninfo:\n  title: Game\n  version: 2.1.0\n")
    assert yaml.safe_load(result.stdout) == game_app.asyncapi(title="Game", version="2.1.0")


def test_asyncapi_yaml_without_pyyaml_says_what_to_install(tmp_path: Path) -> None:
    """Without PyYAML, --format yaml exits 1 with the pip command, and JSON still works."""
    (tmp_path / "yaml.py").write_text("raise ImportError('No module named yaml')\n")
    env = wsroute_env(PYTHONPATH=str(tmp_path), WSROUTE_DISABLE_PLUGIN_AUTOLOAD="1")
    result = run_cli("asyncapi", "examples.game:app", "--format", "yaml", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: --format yaml needs PyYAML: pip install 'wsroute[yaml]' (or use --format json)"
    )
    assert run_cli("asyncapi", "examples.game:app", env=env).returncode == 0


def test_asyncapi_bad_server_is_one_error_line() -> None:
    """A --server that is not ws:// or wss:// exits 1 naming the expected form."""
    result = run_cli("asyncapi", "examples.game:app", "--server", "http://127.0.0.1:80")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: server 'http://127.0.0.1:80': expected a URL such as ws://host:port or wss://host"
    )


def test_asyncapi_help_has_examples() -> None:
    """``asyncapi --help`` shows examples and the format choice."""
    result = run_cli("asyncapi", "--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout and "[json|yaml]" in result.stdout


def test_routes_shows_the_first_message_class() -> None:
    """``wsroute routes`` shows a typed first message as "join (Join)"."""
    result = run_cli("routes", "examples.game:app", "--json", env=NO_PLUGINS)
    assert result.returncode == 0, result.stderr
    rows = {row["path"]: row["message"] for row in json.loads(result.stdout)["routes"]}
    assert rows == {"/play": "join (Join)", "/scores/{player}": "-"}
