"""Every code sample of the documentation (docs/*.md, README.md, examples/*/README.md) runs and says what it shows.

The convention is described in ``samples.py`` and in docs/contributing.md:
python blocks of a page run in order in one namespace, hidden ``<!-- check``
blocks poke the apps with real clients, every App left in the namespace at
the end of the page is started on 127.0.0.1 port 0 and stopped, and console
commands shown with their output are run and compared.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from samples import ROOT, Block, blocks, commands
from timing import timeout

import wsroute
from wsroute.testing import serve_app

PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md", *sorted((ROOT / "examples").glob("*/README.md"))]
SAMPLE_TIMEOUT = timeout(60)  # one block, including the real servers and clients it starts
COMMAND_TIMEOUT = timeout(60)
CONSOLE = [
    command for page in PAGES for block in blocks(page) if block.kind == "console" for command in commands(block)
]


def page_id(page: Path) -> str:
    """The page's path from the repository root, as the test id."""
    return page.relative_to(ROOT).as_posix()


class PageRunner:
    """Runs a page's blocks in order in one namespace, on one event loop of its own.

    No loop is running between blocks, so a sample may call ``asyncio.run()``
    as a script does; a block with top-level ``await`` (and every coroutine
    the runner itself awaits) runs on the page's loop.
    """

    def __init__(self, page: Path) -> None:
        self.namespace: dict[str, Any] = {"__name__": "docs_sample", "__file__": str(page)}
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def wait(self, awaitable: Any) -> Any:
        """Run ``awaitable`` on the page's loop, cut at SAMPLE_TIMEOUT."""
        return self.loop.run_until_complete(asyncio.wait_for(awaitable, SAMPLE_TIMEOUT))

    def run(self, block: Block) -> None:
        """Run one block, then any ``test_*`` function it defined (called without fixtures)."""
        before = set(self.namespace)
        code = compile(block.source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, self.namespace)
        if inspect.iscoroutine(result):
            self.wait(result)
        for name in sorted(set(self.namespace) - before):
            func = self.namespace[name]
            if name.startswith("test_") and callable(func):
                outcome = func()
                if inspect.isawaitable(outcome):
                    self.wait(outcome)

    def start_every_app(self) -> int:
        """Start and stop every App left in the namespace that no check served; the number started.

        An app a check already served has shown that it starts (``configure()``
        ran: its plugins are configured), so it is not started a second time.
        """
        apps = {
            id(value): value
            for value in self.namespace.values()
            if isinstance(value, wsroute.App) and not value._plugins_configured
        }
        for app in apps.values():
            self.wait(_start_and_stop(app))
        return len(apps)


async def _start_and_stop(app: wsroute.App) -> None:
    async with serve_app(app):
        pass


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_python_samples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The page's python blocks and hidden checks run in order without error, and its apps start."""
    monkeypatch.syspath_prepend(str(tmp_path))
    if "REDIS_URL" in page.read_text():  # the page's samples read Redis's address from the environment
        redis = request.getfixturevalue("docs_redis")
        redis.command("FLUSHALL")
        monkeypatch.setenv("REDIS_URL", redis.url)
    if "REDIS_CLUSTER_URL" in page.read_text():  # likewise for a Redis Cluster
        monkeypatch.setenv("REDIS_CLUSTER_URL", request.getfixturevalue("docs_redis_cluster"))
    modules_before = set(sys.modules)
    runner = PageRunner(page)
    ran = 0
    try:
        for block in blocks(page):
            if block.kind == "file":
                (tmp_path / block.title).write_text(block.source)
                importlib.invalidate_caches()
                try:  # a file sample must at least import; later blocks use it
                    importlib.import_module(block.title.removesuffix(".py"))
                except Exception as exc:
                    raise AssertionError(f"the file sample at {block.where} does not import: {exc!r}") from exc
            elif block.kind in ("python", "check"):
                try:
                    runner.run(block)
                except BaseException as exc:
                    raise AssertionError(f"the sample at {block.where} failed: {exc!r}") from exc
                ran += 1
        runner.start_every_app()
    finally:
        runner.close()
        for name in set(sys.modules) - modules_before:  # modules written from title="x.py" blocks
            if getattr(sys.modules[name], "__file__", "") and str(tmp_path) in str(sys.modules[name].__file__):
                del sys.modules[name]
    assert ran == sum(1 for block in blocks(page) if block.kind in ("python", "check"))


@pytest.mark.parametrize("command", CONSOLE, ids=lambda c: f"{c.block.where}:{c.command}")
def test_console_output_is_current(command: Any) -> None:
    """A console command shown with its output prints exactly that output today."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", command.command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    printed = "\n".join(line.rstrip() for line in (result.stdout + result.stderr).splitlines()).rstrip() + "\n"
    assert printed == command.output, f"{command.block.where}: `{command.command}` now prints:\n{printed}"
