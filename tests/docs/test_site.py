"""The documentation site's own rules: the API reference covers the public API, repository links are checked."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import wsroute

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def load_hook() -> ModuleType:
    """Import docs/hooks/repo_links.py (not a package) by path."""
    spec = importlib.util.spec_from_file_location("repo_links", DOCS / "hooks" / "repo_links.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_lists_every_public_name() -> None:
    """docs/reference/api.md has one '::: wsroute.NAME' per name of wsroute.__all__, and no other."""
    listed = re.findall(r"^::: wsroute\.(\w+)$", (DOCS / "reference" / "api.md").read_text(), flags=re.MULTILINE)
    assert sorted(listed) == sorted(name for name in wsroute.__all__ if name != "__version__")


def test_testing_reference_documents_the_module() -> None:
    """docs/reference/testing.md renders wsroute.testing."""
    assert "::: wsroute.testing" in (DOCS / "reference" / "testing.md").read_text()


def test_link_to_a_repository_file_becomes_a_reference() -> None:
    """A link leaving docs/ to an existing file is rewritten to name the file in the repository."""
    hook = load_hook()
    text = hook.rewrite("see [the health plugin](../plugins/wsroute-health/README.md).", DOCS, DOCS, DOCS, "x.md")
    assert text == "see the health plugin (`plugins/wsroute-health/README.md` in the repository)."


def test_link_between_pages_is_kept() -> None:
    """A link to another page, with its anchor, is left for MkDocs to check."""
    hook = load_hook()
    assert hook.rewrite("[stop](cli.md#stopping)", DOCS, DOCS, DOCS, "x.md") == "[stop](cli.md#stopping)"


def test_link_to_a_missing_repository_file_warns(caplog: pytest.LogCaptureFixture) -> None:
    """A link to a file that does not exist is logged as a warning, which fails the strict build."""
    hook = load_hook()
    with caplog.at_level(logging.WARNING, logger="mkdocs.hooks.repo_links"):
        hook.rewrite("[gone](../nowhere/README.md)", DOCS, DOCS, DOCS, "x.md")
    assert [record.getMessage() for record in caplog.records] == [
        "x.md links to ../nowhere/README.md, which does not exist in the repository"
    ]


def test_site_builds_offline_and_strict() -> None:
    """mkdocs.yml fetches no web fonts (theme.font: false) and builds in strict mode."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["theme"]["font"] is False
    assert config["strict"] is True


def test_contributing_page_maps_every_module() -> None:
    """docs/contributing.md's module map names every module of the wsroute package, and no other."""
    import re

    root = Path(__file__).parents[2]
    text = (root / "docs" / "contributing.md").read_text()
    mapped = set(re.findall(r"\| `wsroute/([\w/]+\.py)` \|", text))
    actual = {str(p.relative_to(root / "wsroute")) for p in (root / "wsroute").rglob("*.py")}
    assert mapped == actual
