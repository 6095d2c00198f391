"""MkDocs hook: links from a page to a repository file outside ``docs/``, and included pages.

Pages link to source files (``../wsroute/hookspecs.py``,
``../plugins/wsroute-health/README.md``) so that they read well on a code
host. Those files are not part of the site, so MkDocs would report the links
as broken. This hook rewrites each such link into a code span naming the file
in the repository, and fails the build (a warning, an error in strict mode)
when the file does not exist, so a renamed file cannot leave a dead reference.

A Markdown file included whole with a snippet line (``--8<-- "docs/x.md"``
alone on a line, as the Performance page includes the generated benchmarks
page) is inlined here first, with its links resolved from its own folder, so
its links are checked and rewritten like the page's own.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_links")

# [text](target) where target is relative (no scheme, no leading / or #).
LINK = re.compile(r"\[(?P<text>[^\]\n]+)\]\((?P<target>(?![a-z]+:|/|#)[^)\s]+)\)")
INCLUDE = re.compile(r'^--8<--\s+"(?P<path>[^"]+\.md)"\s*$', re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Inline included Markdown files, then rewrite links that leave ``docs_dir``."""
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = (docs_dir / page.file.src_path).parent

    def include(match: re.Match[str]) -> str:
        path = (docs_dir.parent / match["path"]).resolve()
        if not path.exists():
            log.warning("%s includes %s, which does not exist", page.file.src_path, match["path"])
            return match[0]
        return rewrite(path.read_text(), path.parent, page_dir, docs_dir, page.file.src_path)

    markdown = INCLUDE.sub(include, markdown)
    return rewrite(markdown, page_dir, page_dir, docs_dir, page.file.src_path)


def rewrite(markdown: str, base: Path, page_dir: Path, docs_dir: Path, where: str) -> str:
    """Resolve each relative link of ``markdown`` (written in folder ``base``) for a page in ``page_dir``."""
    repo = docs_dir.parent

    def one(match: re.Match[str]) -> str:
        target, hash_, anchor = match["target"].partition("#")
        if not target:
            return match[0]
        resolved = (base / target).resolve()
        if resolved.is_relative_to(docs_dir):
            relative = os.path.relpath(resolved, page_dir) + hash_ + anchor
            return f"[{match['text']}]({Path(relative).as_posix()})"
        if not resolved.exists():
            log.warning("%s links to %s, which does not exist in the repository", where, target)
            return match[0]
        path = resolved.relative_to(repo).as_posix()
        text = match["text"].strip("`").rstrip("/")
        if text == path.rstrip("/"):
            return f"`{path}`"
        return f"{match['text']} (`{path}` in the repository)"

    return LINK.sub(one, markdown)
