"""Watch source files for ``wsroute run --reload`` (development only).

A daemon thread runs ``watchfiles.watch()`` and pokes a socket when Python
files change, so the supervisor's single wait loop (:mod:`wsroute.workers`)
sees changes, signals and dying processes alike. ``watchfiles`` is an
optional dependency: ``pip install 'wsroute[reload]'``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["Watcher", "require_watchfiles"]

logger = logging.getLogger("wsroute.reload")

INSTALL_HINT = "--reload needs the watchfiles package: pip install 'wsroute[reload]'"


def require_watchfiles() -> Any:
    """Import watchfiles, or fail with an ImportError that says how to install it."""
    try:
        import watchfiles
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return watchfiles


class Watcher:
    """Python file changes under ``dirs``, readable as a file descriptor.

    Example::

        watcher = Watcher(["."])
        watcher.start()
        ...  # select/wait on watcher.fileno()
        changed = watcher.take()   # paths that changed since the last take()

    Raises:
        ImportError: watchfiles is not installed (see :data:`INSTALL_HINT`).
    """

    def __init__(self, dirs: Sequence[str], *, debounce_ms: int = 400) -> None:
        self._watchfiles = require_watchfiles()
        self.dirs = [os.path.abspath(d) for d in dirs] or [os.getcwd()]
        self.debounce_ms = debounce_ms
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._thread = threading.Thread(target=self._watch, name="wsroute-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info("watching %s for changes to Python files", ", ".join(self.dirs))

    def fileno(self) -> int:
        return self._reader.fileno()

    def take(self) -> list[str]:
        """The changed paths since the last call (clears the readiness)."""
        try:
            while self._reader.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            changed, self._changed = sorted(self._changed), set()
        return changed

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._reader.close()
        self._writer.close()

    def _watch(self) -> None:
        watchfiles = self._watchfiles
        try:
            for changes in watchfiles.watch(
                *self.dirs,
                watch_filter=watchfiles.PythonFilter(),
                stop_event=self._stop,
                debounce=self.debounce_ms,
                raise_interrupt=False,
            ):
                with self._lock:
                    self._changed.update(os.path.relpath(path) for _, path in changes)
                self._writer.send(b"!")
        except Exception:  # pragma: no cover - a broken watcher must not kill the server
            logger.exception("file watcher failed; --reload is off from now on")
