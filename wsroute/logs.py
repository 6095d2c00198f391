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

Connection-level lines (a handler failure, a slow consumer, a first message
rejected, websockets' "connection closed") carry the connection: they are
logged through the connection's logger (websockets' ``LoggerAdapter``, which
sets ``record.websocket``) or with ``extra={"websocket": conn}``.
:class:`ConnectionContext` turns that into four record attributes,
``conn_id``, ``route`` (the route *pattern*), ``client_ip`` and ``user_id``
(``conn.ctx.user_id`` when middleware set it), the names
:func:`wsroute.hub.who.connection_fields` gives. The text format appends them
as ``[conn 3f2a9c1e route /chat ip 203.0.113.7 user alice]`` unless the
message already names the connection; ``--log-format json``
(:class:`JsonFormatter`) writes one JSON object per line with them as keys.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

from .hub.who import Who, connection_fields
from .redaction import Redactor

__all__ = [
    "LOG_FORMATS",
    "REDACTOR",
    "ConnectionContext",
    "JsonFormatter",
    "configure_logging",
    "ensure_logging",
    "flush_logs",
    "redact_also",
]

#: The values of ``--log-format`` / ``WSROUTE_LOG_FORMAT``.
LOG_FORMATS = ("text", "json")

_FIELDS = ("conn_id", "route", "client_ip", "user_id")

#: The process's redacting filter, on every handler :func:`configure_logging` installs.
REDACTOR = Redactor()


def redact_also(names: Iterable[str] = (), query_params: Iterable[str] = ()) -> None:
    """Redact more names from now on: ``names`` as headers and query parameters, ``query_params`` as parameters."""
    names = tuple(names)
    REDACTOR.add(headers=names, query_params=(*names, *query_params))


class ConnectionContext(logging.Filter):
    """Add ``conn_id``, ``route``, ``client_ip``, ``user_id`` and ``connection`` to every record.

    The four fields come from ``record.websocket`` (None on records about no
    connection); ``connection`` is the text format's suffix,
    ``" [conn 3f2a9c1e route /chat ip 203.0.113.7 user alice]"``, empty when
    there is no connection or the message already describes it (the hub's
    lines pass a :class:`~wsroute.hub.who.Who`). A filter on the handler, so
    it only runs for records that are emitted. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        conn = getattr(record, "websocket", None)
        if conn is None:
            for name in _FIELDS:
                setattr(record, name, getattr(record, name, None))
            record.connection = ""
            return True
        fields = connection_fields(conn)
        for name, value in fields.items():
            setattr(record, name, value)
        args = record.args if isinstance(record.args, tuple) else ()
        if any(isinstance(arg, Who) for arg in args):
            record.connection = ""
        else:
            parts = [f"conn {fields['conn_id']}", f"route {fields['route']}", f"ip {fields['client_ip']}"]
            if fields["user_id"] is not None:
                parts.append(f"user {fields['user_id']}")
            record.connection = f" [{' '.join(parts)}]"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the connection fields, ``exc``.

    ``time`` is UTC ISO 8601 with milliseconds; ``pid`` and ``worker`` (the
    ``[worker N pid P]`` prefix, when there is one) name the process. The
    connection fields (see :class:`ConnectionContext`) appear when known.
    ``message`` is ``record.getMessage()``, so a redacting filter on the
    handler (it runs before the formatter) applies to it; an exception's
    traceback is in ``exc``, as text.
    """

    def __init__(self, worker: str = "") -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if self.worker:
            entry["worker"] = self.worker
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", prefix: str = "", log_format: str | None = None) -> None:
    """Log to stderr as ``time LEVEL [prefix] logger: message``, or as JSON, replacing the root's handlers.

    websockets' per-connection INFO lines ("connection open", "server
    closing") are shown only at ``debug``. Credentials are redacted from
    every line (:data:`REDACTOR`).

    Args:
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
        prefix: put before each logger name, e.g. ``"[worker 2 pid 1234] "``
            (in JSON, the ``worker`` key).
        log_format: ``"text"`` or ``"json"`` (:class:`JsonFormatter`); None
            reads ``WSROUTE_LOG_FORMAT`` (default ``"text"``).

    Raises:
        ValueError: an unknown level or format name.
    """
    if log_format is None:
        log_format = os.environ.get("WSROUTE_LOG_FORMAT", "") or "text"
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: expected text or json (--log-format, WSROUTE_LOG_FORMAT)")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r}: expected debug, info, warning, error or critical")
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(prefix.strip().strip("[]")))
    else:
        text = f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s%(connection)s"
        handler.setFormatter(logging.Formatter(text))
    handler.addFilter(ConnectionContext())
    handler.addFilter(REDACTOR)  # after the context filter: it formats and scrubs the final message
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
