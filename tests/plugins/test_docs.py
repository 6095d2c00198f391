"""Meta-tests (datasette style): every hook is specified with a full docstring and documented in docs/plugins.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import wsroute
from wsroute import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("wsroute_"))


def documented_headings() -> dict[str, str]:
    """``{hook name: its heading's argument list}`` from the ``### name(args)`` headings."""
    return dict(re.findall(r"^### (wsroute_\w+)\(([^)]*)\)$", DOCS.read_text(), flags=re.MULTILINE))


def test_every_hookspec_is_registered_with_pluggy() -> None:
    """Every wsroute_* function in hookspecs.py is a hook of an App's plugin manager."""
    relay = wsroute.App(load_entrypoints=False).plugins.hook
    assert HOOKS and all(hasattr(relay, name) for name in HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_arguments(hook: str) -> None:
    """docs/plugins.md has a '### hook(args)' heading whose arguments match the spec."""
    headings = documented_headings()
    assert hook in headings, f"{hook} is not documented in docs/plugins.md"
    arguments = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert [a.strip() for a in headings[hook].split(",") if a.strip()] == arguments


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_docstring_says_when_and_what_it_returns(hook: str) -> None:
    """Each hookspec's docstring documents its arguments and return value."""
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "Args:" in doc
    assert "Returns:" in doc


def test_docs_document_no_hook_that_does_not_exist() -> None:
    """Every hook documented in docs/plugins.md exists in hookspecs.py."""
    assert sorted(documented_headings()) == HOOKS


TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_have_tests(hook: str) -> None:
    """Every hook is exercised by a test module under tests/plugins (datasette's test_plugin_hooks_have_tests)."""
    modules = [p for p in sorted(TESTS.glob("test_*.py")) if p.name != Path(__file__).name]
    assert any(hook in module.read_text() for module in modules), f"no test under tests/plugins uses {hook}"
