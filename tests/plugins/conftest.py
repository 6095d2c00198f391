"""Fixtures for the plugin-machinery tests.

``hello_plugin`` makes the example third-party plugin (``examples/hello-plugin``)
installed for one test: it is pip-installed once per session into a directory
of its own (never into ``.venv``, where it would change every app run from
it), and that directory is put on ``sys.path`` so ``importlib.metadata`` finds
its ``*.dist-info`` and entry point exactly as after ``pip install``.

``fake_distribution`` installs a plugin the way pip would, minus pip: a
``*.dist-info`` directory with an ``entry_points.txt`` and a module, on
``sys.path``, so ``importlib.metadata`` (and so wsroute) discovers it
through a real entry point.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_counter = itertools.count()
HELLO_PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "hello-plugin"


@pytest.fixture(autouse=True)
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test with the plugin environment variables unset."""
    monkeypatch.delenv("WSROUTE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("WSROUTE_DISABLE_PLUGINS", raising=False)


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """A factory ``(entry_point_name, module_source) -> module_name`` installing a plugin for one test."""
    modules: list[str] = []

    def install(name: str, source: str) -> str:
        n = next(_counter)
        module = f"wsroute_fake_plugin_{n}"
        dist = f"wsroute_fake_dist_{n}"
        root = tmp_path / f"site{n}"
        info = root / f"{dist}-1.2.3.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[wsroute]\n{name} = {module}\n")
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(root))
        modules.append(module)
        return module

    yield install
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture(scope="session")
def hello_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``examples/hello-plugin`` installed by pip (offline, no dependencies) into a fresh directory."""
    target = tmp_path_factory.mktemp("hello-plugin-site")
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
        "--target", str(target), str(HELLO_PLUGIN),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return target


@pytest.fixture
def hello_plugin(hello_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example plugin, visible through its entry point for this test only."""
    monkeypatch.syspath_prepend(str(hello_plugin_site))
    yield hello_plugin_site
    sys.modules.pop("wsroute_hello_plugin", None)
