"""The samples a reader copies one at a time work when saved alone, not only in the page's shared namespace.

``test_samples`` runs a page's blocks in order in one namespace, so a block
that uses ``wsroute``, ``asyncio`` or ``app`` from an earlier block passes
there and fails with ``NameError`` in the reader's file. On the pages a
newcomer reads answer by answer (the FAQ, getting started, testing,
handlers, deployment, routing, typed messages, the READMEs) every python
block must name only what it imports or defines itself, or a builtin; the
few blocks that openly continue the previous one say so in their prose and
are listed in ``CONTINUATIONS``.
"""

from __future__ import annotations

import builtins
import symtable

import pytest
from samples import ROOT, Block, blocks

PAGES = [
    ROOT / "docs" / "faq.md",
    ROOT / "docs" / "getting-started.md",
    ROOT / "docs" / "testing.md",
    ROOT / "docs" / "handlers.md",
    ROOT / "docs" / "deployment.md",
    ROOT / "docs" / "routing.md",
    ROOT / "docs" / "messages.md",
    ROOT / "README.md",
    *sorted((ROOT / "examples").glob("*/README.md")),
]

#: (page, text found in the block) -> the names it takes from the block before it, as its prose says.
CONTINUATIONS: dict[tuple[str, str], frozenset[str]] = {
    ("docs/faq.md", "await serving.stop(timeout=60, keep_connections=True)"): frozenset({"app"}),
    ("docs/routing.md", 'app.add_route("/x/{id:integer}", post)'): frozenset({"app", "post"}),
}

BUILTINS = frozenset(dir(builtins))


def undefined_names(source: str) -> set[str]:
    """The global names ``source`` reads (at module level or inside its functions) that it never binds."""
    module = symtable.symtable(source, "<sample>", "exec")
    bound = {symbol.get_name() for symbol in module.get_symbols() if symbol.is_assigned() or symbol.is_imported()}
    bound |= {child.get_name() for child in module.get_children()}  # def/class statements
    used: set[str] = set()
    stack = [module]
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        for symbol in table.get_symbols():
            at_module = table is module and symbol.is_referenced()
            if at_module or (table is not module and symbol.is_global() and symbol.is_referenced()):
                used.add(symbol.get_name())
    return used - bound - BUILTINS


def copied_blocks() -> list[Block]:
    """Every visible python block (and file block) of the pages readers copy from."""
    return [block for page in PAGES for block in blocks(page) if block.kind in ("python", "file")]


def test_undefined_names_finds_what_a_copied_block_misses() -> None:
    """The checker reports a name used in a handler but imported only by an earlier block."""
    sample = "import wsroute\n\napp = wsroute.App()\n\n@app.route('/x')\nasync def x(ws):\n    await asyncio.sleep(0)\n"
    assert undefined_names(sample) == {"asyncio"}
    assert undefined_names("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n") == set()
    assert undefined_names("async with Publisher() as pub:\n    await pub.send(len([]))\n") == {"Publisher"}


@pytest.mark.parametrize("block", copied_blocks(), ids=lambda block: block.where)
def test_sample_runs_when_copied_alone(block: Block) -> None:
    """The block compiles as a script and imports or defines every name it uses, so it works as the reader's file."""
    page = block.page.relative_to(ROOT).as_posix()
    allowed: frozenset[str] = frozenset()
    for (continued_page, text), names in CONTINUATIONS.items():
        if continued_page == page and text in block.source:
            allowed = names
    try:  # top-level await or async with is a SyntaxError in the reader's script
        compile(block.source, block.where, "exec")
    except SyntaxError as exc:
        raise AssertionError(
            f"{block.where}: not valid in a script ({exc.msg}); wrap it in asyncio.run(main())"
        ) from exc
    missing = undefined_names(block.source) - allowed
    assert not missing, f"{block.where}: the sample uses {sorted(missing)} without importing or defining it"


def test_continuations_still_exist() -> None:
    """Every listed continuation is still a block of its page (a stale entry would hide nothing and mislead)."""
    found = {
        (page, text)
        for page, text in CONTINUATIONS
        for block in copied_blocks()
        if block.page.relative_to(ROOT).as_posix() == page and text in block.source
    }
    assert found == set(CONTINUATIONS)
