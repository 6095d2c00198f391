"""Where wsroute's log lines go when wsroute owns the process.

``wsroute run``, its worker processes and ``app.run()`` log to stderr as
``time LEVEL [prefix] logger: message``. A library user who configured
logging keeps their own set-up: :func:`ensure_logging` only acts when the
root logger has no handler yet (as ``logging.basicConfig`` does).

Every line through that set-up, at every level and from every logger
(wsroute's, websockets' debug lines with each request header, the app's), is
scrubbed by :data:`REDACTOR` (:class:`~wsroute.redaction.Redactor`):
``Authorization``, ``Cookie``, ``Proxy-Authorization`` and ``Set-Cookie``
values and ``token=…``-like query parameters become ``[redacted]``. An app
adds names with ``App(redact=[...])`` and every ``query_token_auth(param=...)``
adds its parameter when the app starts (:func:`redact_also`). A library user
with their own handlers adds ``REDACTOR`` to them as a filter.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable

from .redaction import Redactor

__all__ = ["REDACTOR", "configure_logging", "ensure_logging", "flush_logs", "redact_also"]

#: The process's redacting filter, on every handler :func:`configure_logging` installs.
REDACTOR = Redactor()


def redact_also(names: Iterable[str] = (), query_params: Iterable[str] = ()) -> None:
    """Redact more names from now on: ``names`` as headers and query parameters, ``query_params`` as parameters."""
    names = tuple(names)
    REDACTOR.add(headers=names, query_params=(*names, *query_params))


def configure_logging(level: str = "info", prefix: str = "") -> None:
    """Log to stderr as ``time LEVEL [prefix] logger: message``, replacing the root's handlers.

    websockets' per-connection INFO lines ("connection open", "server
    closing") are shown only at ``debug``. Credentials are redacted from
    every line (:data:`REDACTOR`).

    Args:
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
        prefix: put before each logger name, e.g. ``"[worker 2 pid 1234] "``.

    Raises:
        ValueError: an unknown level name.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r}: expected debug, info, warning, error or critical")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("websockets").setLevel(max(numeric, logging.WARNING) if numeric > logging.DEBUG else numeric)


def ensure_logging(level: str = "info") -> None:
    """:func:`configure_logging` unless logging is set up already (``app.run()`` calls this).

    Without it, the INFO line saying where the app serves would be dropped by
    Python's last-resort handler, which only prints warnings.
    """
    if not logging.getLogger().handlers:
        configure_logging(level)


def flush_logs() -> None:
    """Flush every handler and the standard streams; before ``os._exit()``, which flushes nothing."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # a broken handler must not stop the exit
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream
            stream.flush()
