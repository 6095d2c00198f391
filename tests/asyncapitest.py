"""The official AsyncAPI 3.0.0 JSON Schema, as the npm package @asyncapi/specs ships it.

``scripts/test`` installs it with ``npm ci`` in tests/interop/node (beside Node's
``ws``); CI must have it, so a missing copy fails there and skips elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SPECS = Path(__file__).parent / "interop" / "node" / "node_modules" / "@asyncapi" / "specs" / "schemas"


def asyncapi_validator() -> jsonschema.Draft7Validator:
    """A validator for AsyncAPI 3.0.0 documents (the schema with local references)."""
    path = SPECS / "3.0.0-without-$id.json"
    if not path.exists():
        message = f"{path} is missing: run `npm ci` in tests/interop/node (scripts/test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return jsonschema.Draft7Validator(json.loads(path.read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every violation of the AsyncAPI 3.0.0 schema, as readable lines."""
    validator = asyncapi_validator()
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(document)]
