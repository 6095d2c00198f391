"""Extract the code samples of a Markdown page, the way the docs' convention defines them.

The convention (docs/contributing.md explains it to writers):

* Every fenced ````python`` block runs. The blocks of one page run in order in
  one namespace (as a reader types them into one session), with top-level
  ``await`` allowed (on a loop kept for the page) and ``asyncio.run()`` too
  (no loop runs between blocks); ``__name__`` is not ``"__main__"`` (so
  ``app.run()`` under ``if __name__ == "__main__":`` does not serve).
* A block with ``title="NAME.py"`` is a file: it is written to a temporary
  directory on ``sys.path`` instead of being run, so later blocks can
  ``import NAME``.
* A block whose body is ``--8<-- "path"`` (pymdownx.snippets) is the file at
  ``path`` from the repository root.
* ``<!-- check`` … ``-->`` is hidden Python code, not rendered on the site,
  run in the page's namespace at that point: it serves the app the sample
  built with a real client and asserts what the page says.
* A ````console`` block's ``$ command`` lines followed by output lines are run
  from the repository root and their output must match; commands shown
  without output are not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)(?P<attrs>[^\n`]*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
SNIPPET = re.compile(r'^--8<--\s+"(?P<path>[^"]+)"\s*$')
CHECK_START = "<!-- check"
CHECK_END = "-->"


@attrs.frozen
class Block:
    """One code block of a page.

    Attributes:
        page: the Markdown file it comes from.
        line: its first line (1-based) in the page, for error messages.
        kind: ``"python"`` (a visible sample), ``"file"`` (a module written to
            disk), ``"check"`` (hidden code) or ``"console"``.
        source: the code, dedented; snippets already replaced by the file.
        title: the file name of a ``"file"`` block, else ``""``.
    """

    page: Path
    line: int
    kind: str
    source: str
    title: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every python, console and check block of ``page``, in page order."""
    return list(_scan(page, page.read_text().splitlines()))


def _scan(page: Path, lines: list[str]) -> Iterator[Block]:
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == CHECK_START:
            end = _closing(lines, index, CHECK_END, page)
            yield Block(page, index + 2, "check", "\n".join(lines[index + 1 : end]) + "\n")
            index = end + 1
            continue
        match = FENCE.match(line)
        if not match:
            index += 1
            continue
        indent, fence = match["indent"], match["fence"]
        end = _closing(lines, index, fence, page)
        body = [text[len(indent) :] if text.startswith(indent) else text.lstrip() for text in lines[index + 1 : end]]
        lang = match["lang"].lower()
        if lang == "python":
            title = TITLE.search(match["attrs"])
            source = _resolve_snippets(body)
            if title:
                yield Block(page, index + 2, "file", source, title["title"])
            else:
                yield Block(page, index + 2, "python", source)
        elif lang == "console":
            yield Block(page, index + 2, "console", "\n".join(body) + "\n")
        index = end + 1


def _closing(lines: list[str], opened: int, closer: str, page: Path) -> int:
    """The index of the first line after ``opened`` that is ``closer`` (surrounding blanks ignored)."""
    for index in range(opened + 1, len(lines)):
        if lines[index].strip() == closer:
            return index
    raise ValueError(f"{page.relative_to(ROOT)}:{opened + 1}: block is never closed with {closer}")


def _resolve_snippets(body: list[str]) -> str:
    out = []
    for text in body:
        match = SNIPPET.match(text.strip())
        out.append((ROOT / match["path"]).read_text().rstrip("\n") if match else text)
    return "\n".join(out) + "\n"


@attrs.frozen
class Command:
    """A ``$ command`` of a console block and the output the page shows for it."""

    block: Block
    command: str
    output: str


def commands(block: Block) -> list[Command]:
    """The commands of a console block that show their output (only those are checked)."""
    found: list[Command] = []
    current: str | None = None
    output: list[str] = []
    for text in [*block.source.splitlines(), "$ "]:
        if current is not None and current.endswith("\\") and not output:  # a continued command line
            current = current[:-1] + " " + text.strip()
        elif text.startswith("$ "):
            if current and output:
                found.append(Command(block, current, "\n".join(output).rstrip() + "\n"))
            current, output = text[2:].strip(), []
        elif current is not None:
            output.append(text.rstrip())
    return found
