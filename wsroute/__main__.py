"""``python -m wsroute``: the same as the ``wsroute`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
