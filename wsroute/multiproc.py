"""A shared directory for per-process metric files, made and removed by the supervisor.

prometheus_client's multiprocess mode sums metrics over processes that share
nothing but a directory: each process writes its values to memory-mapped
files there, named after its pid, and a scrape in any process reads them all.
The directory is named by the ``PROMETHEUS_MULTIPROC_DIR`` environment
variable, which must be set *before* a process imports prometheus_client.

``wsroute run --workers N`` (and ``--reload``) therefore sets it in the
supervisor, before spawning: a fresh empty temporary directory, removed when
the supervisor exits (files of a previous run would be added to this one's
counters). A directory the user set is kept and never emptied: it is theirs.
When a worker exits, its *live* gauge files (``gauge_live*_<pid>.db``) are
removed, as prometheus_client's ``mark_process_dead`` does, so a gauge such
as the open connections stops counting a dead worker. The core imports no
metrics library: it only manages the directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["ENV", "MultiprocessDir"]

#: The environment variable prometheus_client reads.
ENV = "PROMETHEUS_MULTIPROC_DIR"


class MultiprocessDir:
    """The supervisor's metrics directory: :meth:`create` before spawning, :meth:`remove` at exit."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._owned = False

    def create(self) -> None:
        """Set ``PROMETHEUS_MULTIPROC_DIR`` to a new temporary directory unless the user set one."""
        given = os.environ.get(ENV)
        if given:
            self.path = Path(given)
            self.path.mkdir(parents=True, exist_ok=True)
            return
        self.path = Path(tempfile.mkdtemp(prefix="wsroute-metrics-"))
        self._owned = True
        os.environ[ENV] = str(self.path)

    def process_gone(self, pid: int | None) -> None:
        """Remove an exited worker's live gauge files (``gauge_live*_<pid>.db``)."""
        if self.path is None or pid is None:
            return
        for file in self.path.glob(f"gauge_live*_{pid}.db"):
            with contextlib.suppress(OSError):
                file.unlink()

    def remove(self) -> None:
        """Remove the directory and unset the variable, if this supervisor made it."""
        if self._owned and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            if os.environ.get(ENV) == str(self.path):
                del os.environ[ENV]
        self.path = None
        self._owned = False
