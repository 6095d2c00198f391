"""Interop tests: real third-party clients (headless Chromium, Node's ``ws``) against a wsroute app.

pytest runs with ``--import-mode=importlib``, so this directory is put on
``sys.path`` here for the test modules to import ``interoptest``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
