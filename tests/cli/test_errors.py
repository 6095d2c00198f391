"""User mistakes: one ``Error: …`` line, a non-zero exit status, no traceback."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from clitest import ROOT, free_port, run_cli, wsroute_env

from wsroute.errors import LoadError
from wsroute.loading import import_from_string, load_app
from wsroute.server import ServeConfig, explain_os_error

pytestmark = pytest.mark.timeout(60)

BROKEN = "import wsroute\nimport nosuchdependency_xyz\napp = wsroute.App()\n"
NEEDS_DB = (
    "import wsroute\napp = wsroute.App()\n\n@app.route('/x')\nasync def x(ws, db):\n    pass\n"
)


def fails_with(result: object, message: str, code: int = 1) -> None:
    """The command exited with ``code`` and printed exactly ``Error: message``, without a traceback."""
    assert result.returncode == code, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    assert result.stderr.strip().splitlines()[-1] == f"Error: {message}"  # type: ignore[attr-defined]


def test_module_not_found() -> None:
    """A module that does not exist is named, with where it was looked for."""
    result = run_cli("run", "nosuchmodule:app")
    fails_with(result, f'Could not import module "nosuchmodule" (searched from {ROOT}; '
                       "pass --app-dir to look elsewhere).")


def test_import_error_inside_the_module(tmp_path: Path) -> None:
    """An ImportError raised inside an existing module is reported as such, with its location."""
    (tmp_path / "broken.py").write_text(BROKEN)
    result = run_cli("run", "broken:app", "--app-dir", str(tmp_path))
    fails_with(result, 'Importing module "broken" failed: ModuleNotFoundError: '
                       f"No module named 'nosuchdependency_xyz' (at {tmp_path / 'broken.py'}:2).")


def test_attribute_missing() -> None:
    """A missing attribute is named with its module."""
    fails_with(run_cli("run", "examples.cli_app:nope"), 'Attribute "nope" not found in module "examples.cli_app".')


def test_attribute_not_an_app() -> None:
    """An attribute that is not an App says what it is and suggests --factory for functions."""
    fails_with(
        run_cli("run", "examples.cli_app:create_app"),
        '"examples.cli_app:create_app" is a function, not a wsroute.App; '
        "pass --factory if it is a function that returns one.",
    )


def test_attribute_of_another_type() -> None:
    """An attribute of another type is shown with its type and value."""
    fails_with(run_cli("run", "examples.cli_app:__doc__"),
               "\"examples.cli_app:__doc__\" is a <str> ('An app for trying ``wsroute run`` (a...), not a wsroute.App.")


def test_bad_import_string_format() -> None:
    """An import string without a colon gets the expected format."""
    fails_with(run_cli("run", "examples.cli_app"),
               'Import string "examples.cli_app" must be in format "<module>:<attribute>", e.g. "main:app".')


def test_factory_pointing_at_an_app() -> None:
    """--factory on an App instance says to drop --factory."""
    fails_with(run_cli("run", "examples.cli_app:app", "--factory"),
               '"examples.cli_app:app" is a wsroute.App, not a factory; drop --factory.')


def test_port_in_use() -> None:
    """A port that another socket listens on is reported, suggesting another --port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("run", "examples.cli_app:app", "--port", str(port))
    fails_with(result, f"cannot listen on 127.0.0.1:{port}: address already in use; "
                       "stop the other server or pass another --port")


def test_port_in_use_with_workers() -> None:
    """With --workers, a port in use is reported once by the supervisor, before any worker starts."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("run", "examples.cli_app:app", "--port", str(port), "--workers", "2")
    fails_with(result, f"cannot listen on 127.0.0.1:{port}: address already in use; "
                       "stop the other server or pass another --port")
    assert "worker 1" not in result.stderr


def test_address_not_available() -> None:
    """An address this machine does not have gets the FAQ's advice: --host 0.0.0.0 or an IPv4 address."""
    result = run_cli("run", "examples.cli_app:app", "--host", "192.0.2.1", "--port", str(free_port()))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "address not available on this machine [Errno 99]" in result.stderr
    assert "pass --host 0.0.0.0 or an IPv4 address such as 127.0.0.1" in result.stderr


def test_permission_denied_message() -> None:
    """EACCES on a low port explains that ports below 1024 need privileges."""
    exc = OSError(errno.EACCES, os.strerror(errno.EACCES))
    assert explain_os_error(exc, ServeConfig(host="0.0.0.0", port=80, cli=True)) == (
        "cannot listen on 0.0.0.0:80: permission denied; ports below 1024 need privileges, "
        "pass --port 1024 or higher (and a reverse proxy on the low port)"
    )


def test_permission_denied_on_a_low_port() -> None:
    """Without the right to bind low ports, port 80 gets the permission message, not a traceback."""
    # An unprivileged process is simulated by dropping CAP_NET_BIND_SERVICE
    # (util-linux setpriv), so root CI and a normal user see the same EACCES.
    command = [sys.executable, "-m", "wsroute", "run", "examples.cli_app:app", "--host", "127.0.0.1", "--port", "80"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) is needed to drop CAP_NET_BIND_SERVICE"
        command = [setpriv, "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service", *command]
    result = subprocess.run(command, cwd=ROOT, env=wsroute_env(), capture_output=True, text=True, timeout=30)
    fails_with(result, "cannot listen on 127.0.0.1:80: permission denied; ports below 1024 need privileges, "
                       "pass --port 1024 or higher (and a reverse proxy on the low port)")


def test_configuration_error_at_start_up(tmp_path: Path) -> None:
    """A ConfigurationError raised at start-up (a dependency nothing provides) is printed as is."""
    (tmp_path / "needsdb.py").write_text(NEEDS_DB)
    result = run_cli("run", "needsdb:app", "--app-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: route '/x': parameter 'db' of needsdb.x is not a path parameter, not provided")


def test_unreachable_broker_fails_at_start_up() -> None:
    """--broker pointing at a Redis that is not there stops start-up with the broker's message."""
    pytest.importorskip("redis")
    result = run_cli("run", "examples.cli_app:app", "--port", str(free_port()),
                     "--broker", f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_reload_with_workers_is_refused() -> None:
    """--reload with --workers 2 is a usage error (status 2)."""
    result = run_cli("run", "examples.cli_app:app", "--reload", "--workers", "2")
    assert result.returncode == 2
    assert "--reload is for development and runs one process; drop --workers or --reload" in result.stderr


def test_reload_without_watchfiles(tmp_path: Path) -> None:
    """--reload without watchfiles says which extra to install."""
    (tmp_path / "watchfiles").mkdir()
    (tmp_path / "watchfiles" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    env = wsroute_env(PYTHONPATH=str(tmp_path))
    result = run_cli("run", "examples.cli_app:app", "--reload", "--port", str(free_port()), env=env)
    fails_with(result, "--reload needs the watchfiles package: pip install 'wsroute[reload]'")


def test_bad_forwarded_allow_ips() -> None:
    """A malformed --forwarded-allow-ips is a usage error naming the bad entry."""
    result = run_cli("run", "examples.cli_app:app", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.300")
    assert result.returncode == 2
    assert "'10.0.0.300' is not an IP address or network" in result.stderr


def test_unknown_broker_scheme() -> None:
    """An unknown --broker scheme is a usage error."""
    result = run_cli("run", "examples.cli_app:app", "--broker", "kafka://x")
    assert result.returncode == 2
    assert "--broker" in result.stderr


def test_loading_module_not_found_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_app raises LoadError with the same message when called from Python."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LoadError) as caught:
        load_app("nosuchmodule_abc:app", app_dir=None)
    assert str(caught.value) == (
        f'Could not import module "nosuchmodule_abc" (searched from {tmp_path}; pass --app-dir to look elsewhere).'
    )


def test_loading_missing_submodule_of_existing_package() -> None:
    """A missing submodule of an existing package is 'could not import module', not an import failure."""
    with pytest.raises(LoadError, match=r'^Could not import module "wsroute.nosuch"'):
        import_from_string("wsroute.nosuch:app")


def test_loading_nested_attribute() -> None:
    """``module:a.b`` follows attributes."""
    assert import_from_string("wsroute:App.run") is sys.modules["wsroute"].App.run
