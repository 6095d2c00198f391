"""``wsroute routes``, ``wsroute plugins``, plugin commands, ``--help`` and ``--version``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from clitest import run_cli, wsroute_env

import wsroute

pytestmark = pytest.mark.timeout(60)

PLUGIN = '''
import click
import wsroute

@wsroute.hookimpl
def wsroute_register_commands(cli):
    @cli.command()
    def hello():
        """Say hello (added by a plugin)."""
        click.echo("hello from a plugin")

@wsroute.hookimpl
def wsroute_startup(app):
    pass
'''


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """An environment where an installed distribution declares a ``wsroute`` entry point."""
    (tmp_path / "fakeplugin.py").write_text(PLUGIN)
    dist = tmp_path / "wsroute_fakeplugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wsroute-fakeplugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[wsroute]\nfake = fakeplugin\n")
    return wsroute_env(PYTHONPATH=str(tmp_path))


def test_version() -> None:
    """``python -m wsroute --version`` prints the package version."""
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"wsroute {wsroute.__version__}"


@pytest.mark.parametrize("command", [[], ["run"], ["routes"], ["plugins"]])
def test_help_has_examples(command: list[str]) -> None:
    """Every command's --help shows examples."""
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout
    assert "wsroute " in result.stdout


def test_run_help_lists_environment_variables() -> None:
    """``run --help`` names the environment variable of each option."""
    result = run_cli("run", "--help")
    for name in ("HOST", "PORT", "WORKERS", "DRAIN_TIMEOUT", "KEEP_CONNECTIONS", "BROKER", "FORWARDED_ALLOW_IPS"):
        assert f"WSROUTE_{name}" in result.stdout.replace("\n", " ").replace("  ", " ")


def test_routes_table() -> None:
    """``routes`` prints path, name, first-message type, handler, middleware, bound values and own options."""
    result = run_cli("routes", "examples.cli_app:app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PATH", "NAME", "MESSAGE", "HANDLER", "MIDDLEWARE", "BOUND", "OPTIONS"]
    rooms = next(line for line in lines if line.startswith("/rooms/{room}"))
    assert rooms.split() == [
        "/rooms/{room}", "room", "-", "examples.cli_app.create_app.<locals>.room",
        "examples.cli_app.create_app.<locals>.tag", "size=10,", "greeting", "max_size=4096",
    ]
    play = next(line for line in lines if line.startswith("/play"))
    assert play.split() == [
        "/play", "create_app.<locals>.Join", "join", "examples.cli_app.create_app.<locals>.Join", "-", "-", "-",
    ]
    assert "provided (injected by parameter name): greeting" in lines


def test_routes_json() -> None:
    """``routes --json`` prints the same information as JSON, options as a mapping."""
    result = run_cli("routes", "examples.cli_app:app", "--json")
    data = json.loads(result.stdout)
    assert data["provided"] == ["greeting"]
    assert {"path": "/echo", "name": "create_app.<locals>.echo", "message": "-",
            "handler": "examples.cli_app.create_app.<locals>.echo", "middleware": "-", "bound": "-",
            "options": {}} in data["routes"]
    rooms = next(row for row in data["routes"] if row["path"] == "/rooms/{room}")
    assert (rooms["name"], rooms["options"]) == ("room", {"max_size": 4096})


def test_routes_show_the_options_a_route_sets_itself(tmp_path: Path) -> None:
    """Subprotocols, trailing slash, invalid-message policy, slow consumer, limits and the router are shown when set."""
    (tmp_path / "optioned.py").write_text(textwrap.dedent("""\
        import wsroute

        app = wsroute.App(subprotocols=["base.v1"])
        chat = wsroute.Router(prefix="/chat")

        async def echo(ws):
            pass

        app.add_route("/plain", echo, name="plain")
        app.add_route(
            "/tuned", echo, subprotocols=["chat.v2", "chat.v1"], trailing_slash="strict",
            on_invalid_message="close", slow_consumer="drop_oldest", message_rate="50/s",
            max_connections_per_ip=3,
        )
        chat.add_route("/{room}", echo, name="room")
        app.include_router(chat)
    """))
    result = run_cli("routes", "optioned:app", "--app-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    options = {row["path"]: (row["name"], row["options"]) for row in json.loads(result.stdout)["routes"]}
    assert options == {
        "/plain": ("plain", {}),
        "/tuned": ("echo", {
            "subprotocols": ["chat.v2", "chat.v1"], "trailing_slash": "strict", "on_invalid_message": "close",
            "slow_consumer": "drop_oldest", "max_connections_per_ip": 3, "message_rate": "50/1s (burst 50)",
        }),
        "/chat/{room}": ("room", {"router": "Router(prefix='/chat')"}),
    }
    table = run_cli("routes", "optioned:app", "--app-dir", str(tmp_path))
    tuned = next(line for line in table.stdout.splitlines() if line.startswith("/tuned"))
    assert tuned.endswith(
        "subprotocols=chat.v2|chat.v1, trailing_slash=strict, on_invalid_message=close, slow_consumer=drop_oldest, "
        "max_connections_per_ip=3, message_rate=50/1s (burst 50)"
    )


def test_routes_reports_unbindable_route(tmp_path: Path) -> None:
    """``routes`` still prints the table when a route cannot be bound, then fails with the reason."""
    (tmp_path / "needsdb.py").write_text(
        "import wsroute\napp = wsroute.App()\n\n@app.route('/x')\nasync def x(ws, db):\n    pass\n"
    )
    result = run_cli("routes", "needsdb:app", "--app-dir", str(tmp_path))
    assert result.returncode == 1
    assert "/x" in result.stdout and "(error)" in result.stdout
    assert "parameter 'db' of needsdb.x is not a path parameter" in result.stderr


def test_plugins_table() -> None:
    """``plugins`` lists the built-in hub plugin with its source and hooks."""
    result = run_cli("plugins", "examples.cli_app:app", env=wsroute_env(WSROUTE_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "SOURCE", "HOOKS"]
    assert ["wsroute.hub", "-", "built-in", "wsroute_register_health_checks"] in [line.split() for line in lines]


def test_plugins_lists_entry_point_plugins(plugin_env: dict[str, str]) -> None:
    """``plugins`` shows an entry-point plugin's version, entry point and hooks."""
    result = run_cli("plugins", "examples.cli_app:app", "--json", env=plugin_env)
    assert result.returncode == 0, result.stderr
    fake = next(p for p in json.loads(result.stdout) if p["name"] == "fake")
    assert fake["version"] == "1.2.3"
    assert fake["source"] == "entry point 'fake = fakeplugin' of wsroute-fakeplugin 1.2.3"
    assert fake["hooks"] == "wsroute_register_commands, wsroute_startup"


def test_plugin_adds_a_command(plugin_env: dict[str, str]) -> None:
    """An entry-point plugin's ``wsroute_register_commands`` adds a sub-command."""
    result = run_cli("hello", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from a plugin\n"
    assert "hello" in run_cli("--help", env=plugin_env).stdout


def test_broken_plugin_does_not_break_the_cli(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """A plugin that fails to import leaves the built-in commands usable, with a warning."""
    (tmp_path / "fakeplugin.py").write_text("raise RuntimeError('boom')\n")
    result = run_cli("--version", env=plugin_env)
    assert result.returncode == 0
    assert "Warning: plugin commands unavailable: Error importing plugin 'fake'" in result.stderr


def test_setup_environment_has_no_example_plugin() -> None:
    """The environment scripts/setup builds loads the bundled plugins but not examples/hello-plugin."""
    result = run_cli("plugins", "examples.cli_app:app", "--json")
    assert result.returncode == 0, result.stderr
    loaded = {row["name"] for row in json.loads(result.stdout)}
    assert {"wsroute-health", "wsroute-headers"} <= loaded
    assert "hello-plugin" not in loaded
    routes = run_cli("routes", "examples.cli_app:app", "--json")
    assert "/hello-plugin" not in [row["path"] for row in json.loads(routes.stdout)["routes"]]


def test_routes_lists_per_connection_and_lifespan_dependencies(tmp_path: Path) -> None:
    """Per-connection dependencies are listed as such; a name only the lifespan can give is not an error."""
    (tmp_path / "scoped.py").write_text(
        "import contextlib\nimport wsroute\n\n"
        "@contextlib.asynccontextmanager\nasync def lifespan(app):\n    yield {'pool': 1}\n\n"
        "app = wsroute.App(lifespan=lifespan, load_entrypoints=False)\n"
        "app.provide_per_connection(user=lambda conn: 'ada')\n\n"
        "@app.route('/me')\nasync def me(ws, user):\n    pass\n\n"
        "@app.route('/pool')\nasync def pool(ws, pool):\n    pass\n"
    )
    result = run_cli("routes", "scoped:app", "--app-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    bound = {row["path"]: row["bound"] for row in json.loads(result.stdout)["routes"]}
    assert bound == {"/me": "user(per-connection)", "/pool": "(lifespan)"}
