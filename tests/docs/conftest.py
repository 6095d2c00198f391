"""The docs tests import ``samples`` (the extractor) from this directory.

pytest runs with ``--import-mode=importlib``, so the directory is put on
``sys.path`` here, as tests/interop does.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
