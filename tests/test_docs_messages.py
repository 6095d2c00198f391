"""docs/messages.md shows the AsyncAPI document of examples/game.py from a generated file that cannot drift."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from examples.game import app

from .asyncapitest import schema_errors

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "docs" / "generated" / "asyncapi-game.yaml"
PAGE = ROOT / "docs" / "messages.md"
BLOCK = re.compile(
    r"(<!-- generated: docs/generated/asyncapi-game\.yaml -->\n```yaml\n)(.*?)(```\n<!-- end generated -->)", re.S
)


def current() -> str:
    """What ``wsroute asyncapi examples.game:app --format yaml --server ws://127.0.0.1:8765`` prints."""
    document = app.asyncapi(["ws://127.0.0.1:8765"])
    assert schema_errors(document) == []
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def test_generated_document_and_page_match_the_example() -> None:
    """The generated file and the block in docs/messages.md equal the example's document today."""
    text = current()
    if os.environ.get("WSROUTE_UPDATE_DOCS"):
        GENERATED.write_text(text)
        PAGE.write_text(BLOCK.sub(lambda m: m.group(1) + text + m.group(3), PAGE.read_text()))
    hint = "regenerate with WSROUTE_UPDATE_DOCS=1 pytest tests/test_docs_messages.py"
    assert GENERATED.read_text() == text, hint
    block = BLOCK.search(PAGE.read_text())
    assert block is not None, "docs/messages.md lost its generated block markers"
    assert block.group(2) == text, hint
