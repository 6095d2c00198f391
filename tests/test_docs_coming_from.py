"""The "Coming from ..." pages: every complete Python sample runs and its assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("coming-from-fastapi.md", "coming-from-channels.md", "coming-from-socketio.md")


def samples() -> list[tuple[str, int, str]]:
    """``(page, index, code)`` for each ```python block that imports wsroute (a whole program)."""
    found = []
    for page in PAGES:
        blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)
        found += [(page, index, code) for index, code in enumerate(blocks) if "import wsroute" in code]
    return found


def test_every_page_has_runnable_samples() -> None:
    """Each page maps its framework's concepts with at least one complete, executed program."""
    assert sorted({page for page, _, _ in samples()}) == sorted(PAGES)


@pytest.mark.parametrize(("page", "index", "code"), samples(), ids=lambda value: str(value)[:30])
def test_sample_runs(page: str, index: int, code: str) -> None:
    """The sample runs to the end: its servers start and stop and every assert in it passes."""
    exec(compile(code, f"{page}[{index}]", "exec"), {"__name__": f"docs_sample_{index}"})
