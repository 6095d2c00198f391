"""User mistakes: one ``Error: …`` line, a non-zero exit status, no traceback."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
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


def test_app_dir_that_does_not_exist() -> None:
    """--app-dir naming a missing directory says so, naming it, instead of "searched from" the current one."""
    fails_with(run_cli("run", "main:app", "--app-dir", "/nonexistent/wsroute-app"),
               'App directory "/nonexistent/wsroute-app" does not exist; check --app-dir.')


def test_app_dir_that_does_not_exist_with_reload() -> None:
    """With --reload, a missing --app-dir is reported before anything is watched or started."""
    fails_with(run_cli("run", "main:app", "--app-dir", "/nonexistent/wsroute-app", "--reload"),
               'App directory "/nonexistent/wsroute-app" does not exist; check --app-dir.')


def test_reload_dir_that_does_not_exist() -> None:
    """A missing --reload-dir is named too."""
    fails_with(run_cli("run", "examples.cli_app:app", "--reload", "--reload-dir", "/nonexistent/src"),
               'Reload directory "/nonexistent/src" does not exist; check --reload-dir.')


def test_module_not_found_names_the_app_dir(tmp_path: Path) -> None:
    """A module missing from --app-dir names that directory, not the current one."""
    fails_with(run_cli("run", "nosuchmodule:app", "--app-dir", str(tmp_path)),
               f'Could not import module "nosuchmodule" (searched from {tmp_path}; pass --app-dir to look elsewhere).')


def test_file_name_instead_of_module_name(tmp_path: Path) -> None:
    """``main.py:app`` suggests ``main:app`` (without importing main.py)."""
    (tmp_path / "main.py").write_text("raise SystemExit('imported!')\n")
    fails_with(run_cli("run", "main.py:app", "--app-dir", str(tmp_path)),
               'Import string "main.py:app" names a file, not a module; use "main:app".')


def test_file_path_instead_of_module_name() -> None:
    """``examples/cli_app.py:app`` suggests the dotted module, or the module with --app-dir."""
    fails_with(run_cli("run", "examples/cli_app.py:app"),
               'Import string "examples/cli_app.py:app" names a file, not a module; use "examples.cli_app:app" '
               '(or "cli_app:app" with --app-dir examples).')


def test_missing_file_name_instead_of_module_name() -> None:
    """A ``.py`` import string that matches no file gets the same advice."""
    fails_with(run_cli("run", "nosuchfile.py:app"),
               'Import string "nosuchfile.py:app" names a file, not a module; use "nosuchfile:app".')


FACTORY = "import wsroute\n\ndef make():\n    raise RuntimeError('no config')\n"


def test_factory_that_raises(tmp_path: Path) -> None:
    """A factory that raises prints one Error line with the exception and where it was raised."""
    (tmp_path / "fact.py").write_text(FACTORY)
    fails_with(run_cli("run", "fact:make", "--factory", "--app-dir", str(tmp_path)),
               f'The factory "fact:make" raised RuntimeError: no config (at {tmp_path / "fact.py"}:4).')


def test_factory_that_raises_with_debug(tmp_path: Path) -> None:
    """With --debug the factory's traceback comes before the same Error line."""
    (tmp_path / "fact.py").write_text(FACTORY)
    result = run_cli("run", "fact:make", "--factory", "--app-dir", str(tmp_path), "--debug")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert f'  File "{tmp_path / "fact.py"}", line 4, in make' in lines
    assert lines[-2] == "RuntimeError: no config"
    assert lines[-1] == f'Error: The factory "fact:make" raised RuntimeError: no config (at {tmp_path / "fact.py"}:4).'


def test_loading_with_missing_app_dir_in_process() -> None:
    """load_app raises the same LoadError when called from Python."""
    with pytest.raises(LoadError) as caught:
        load_app("main:app", app_dir="/nonexistent/wsroute-app")
    assert str(caught.value) == 'App directory "/nonexistent/wsroute-app" does not exist; check --app-dir.'


RUN_SCRIPT = "import sys\nimport wsroute\n\napp = wsroute.App()\napp.run('127.0.0.1', int(sys.argv[1]))\n"


def test_app_run_port_in_use_names_app_run(tmp_path: Path) -> None:
    """app.run() on a busy port raises ServerError whose advice is about app.run(), not --port."""
    script = tmp_path / "serve.py"
    script.write_text(RUN_SCRIPT)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run([sys.executable, str(script), str(port)], cwd=tmp_path, env=wsroute_env(),
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"wsroute.errors.ServerError: cannot listen on 127.0.0.1:{port}: address already in use; "
        "stop the other server or pass another port to app.run()"
    )


def test_app_run_logs_where_it_serves(tmp_path: Path) -> None:
    """app.run() without any logging set-up logs where it serves, and its stop, to stderr."""
    script = tmp_path / "serve.py"
    script.write_text(RUN_SCRIPT)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(script), str(port)], cwd=tmp_path, env=wsroute_env(),
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while "serving on" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            proc.kill()
    text = log.read_text()
    serving = rf"INFO wsroute.server: wsroute serving on 127.0.0.1:{port} \(loop: (uvloop|asyncio)\)"
    assert re.search(serving, text), text
    assert "INFO wsroute.server: SIGTERM: stopping, draining connections" in text
    assert "INFO wsroute.server: stopped in " in text


def test_app_run_messages_for_other_listening_errors() -> None:
    """Every listening error's advice names app.run() arguments when not started by wsroute run."""
    config = ServeConfig(host="127.0.0.1", port=80)
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES))
    assert explain_os_error(denied, config) == (
        "cannot listen on 127.0.0.1:80: permission denied; ports below 1024 need privileges, "
        "pass a port of 1024 or higher to app.run() (and a reverse proxy on the low port)"
    )
    missing = OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
    assert explain_os_error(missing, ServeConfig(host="::1", port=8765)) == (
        "cannot listen on [::1]:8765: address not available on this machine [Errno 99] (with 'localhost' or '::1' "
        "this usually means IPv6 is disabled); pass the host 0.0.0.0 or an IPv4 address such as 127.0.0.1 to app.run()"
    )
    unknown = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert explain_os_error(unknown, ServeConfig(host="nosuch.invalid", port=8765)) == (
        "cannot listen on nosuch.invalid:8765: unknown host 'nosuch.invalid' (Name or service not known); "
        "check the host passed to app.run()"
    )
