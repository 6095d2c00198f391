"""Test-wide set-up: put ``tests/`` on ``sys.path`` for shared helpers.

pytest runs with ``--import-mode=importlib``, so helper modules are not
importable by default; this makes ``from timing import MS`` work in every
test module (see ``tests/timing.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
