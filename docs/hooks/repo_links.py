"""MkDocs hook: links from a page to a repository file outside ``docs/``.

Pages link to source files (``../wsroute/hookspecs.py``,
``../plugins/wsroute-health/README.md``) so that they read well on a code
host. Those files are not part of the site, so MkDocs would report the links
as broken. This hook rewrites each such link into a code span naming the file
in the repository, and fails the build (a warning, an error in strict mode)
when the file does not exist, so a renamed file cannot leave a dead reference.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_links")

# [text](target) where target is relative (no scheme, no leading / or #).
LINK = re.compile(r"\[(?P<text>[^\]\n]+)\]\((?P<target>(?![a-z]+:|/|#)[^)\s]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite links that leave ``docs_dir`` into repository references."""
    docs_dir = Path(config["docs_dir"]).resolve()
    repo = docs_dir.parent
    page_dir = (docs_dir / page.file.src_path).parent

    def rewrite(match: re.Match[str]) -> str:
        target = match["target"].split("#", 1)[0]
        resolved = (page_dir / target).resolve()
        if not target or resolved.is_relative_to(docs_dir):
            return match[0]
        if not resolved.exists():
            log.warning("%s links to %s, which does not exist in the repository", page.file.src_path, target)
            return match[0]
        path = resolved.relative_to(repo).as_posix()
        text = match["text"]
        if text.strip("`") == path or text.strip("`").rstrip("/") == path:
            return f"`{path}`"
        return f"{text} (`{path}` in the repository)"

    return LINK.sub(rewrite, markdown)
