"""Keep secrets out of logs: credentials in headers and query strings are replaced by ``[redacted]``.

At debug level websockets logs the request line and every header of each
handshake (``< GET /chat?token=abc HTTP/1.1``, ``< Authorization: Bearer …``),
and an app's own lines may quote a path or a header. :class:`Redactor` is a
:class:`logging.Filter` that wsroute's logging set-up puts on its handlers, so
every record that reaches them — wsroute's, websockets', the app's — is
formatted once and scrubbed before it is written:

* headers named in :data:`DEFAULT_HEADERS` (``Authorization``, ``Cookie``,
  ``Proxy-Authorization``, ``Set-Cookie``) plus any configured ones: the
  value after ``Name:`` is replaced;
* query parameters named in :data:`DEFAULT_QUERY_PARAMS` plus those of every
  ``query_token_auth(param=...)`` and any configured ones: ``token=…``
  becomes ``token=[redacted]`` wherever a query string appears.

Matching is by name, case-insensitive for headers (RFC 9110 section 5.1) and
exact for query parameters (they are case-sensitive).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["DEFAULT_HEADERS", "DEFAULT_QUERY_PARAMS", "REDACTED", "Redactor"]

REDACTED = "[redacted]"
DEFAULT_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
DEFAULT_QUERY_PARAMS = ("token", "access_token", "api_key", "apikey", "password", "secret")


class Redactor(logging.Filter):
    """A logging filter replacing credential values in every record's message.

    Args:
        headers: more header names to redact (added to the defaults).
        query_params: more query parameter names to redact (added to the defaults).

    The record's message is formatted with its arguments first, so a secret
    passed as an argument (``logger.debug("< %s: %s", name, value)``) is
    caught too; the record then carries the scrubbed text and no arguments.
    """

    def __init__(self, headers: Iterable[str] = (), query_params: Iterable[str] = ()) -> None:
        super().__init__()
        self.headers = tuple(dict.fromkeys([*DEFAULT_HEADERS, *(h.lower() for h in headers)]))
        self.query_params = tuple(dict.fromkeys([*DEFAULT_QUERY_PARAMS, *query_params]))
        self._compile()

    def add_query_params(self, names: Iterable[str]) -> None:
        """Redact these query parameters too (``query_token_auth`` registers its own)."""
        self.add(query_params=names)

    def add(self, headers: Iterable[str] = (), query_params: Iterable[str] = ()) -> None:
        """Redact these headers and query parameters too (from now on)."""
        self.headers = tuple(dict.fromkeys([*self.headers, *(h.lower() for h in headers)]))
        self.query_params = tuple(dict.fromkeys([*self.query_params, *query_params]))
        self._compile()

    def _compile(self) -> None:
        header_names = "|".join(re.escape(h) for h in self.headers)
        # "Authorization: x", "authorization=x" and a dict's "'Authorization': 'x'" alike;
        # the rest of the line goes, as a value's end cannot be told reliably.
        self._header_re = re.compile(rf"(?i)\b({header_names})(['\"]?\s*[:=]\s*)([^\r\n]*)")
        param_names = "|".join(re.escape(p) for p in self.query_params)
        self._query_re = re.compile(rf"([?&;]({param_names})=)([^&#\s\"']*)")

    def redact(self, text: str) -> str:
        """``text`` with every credential value replaced by ``[redacted]``."""
        if "=" in text:
            text = self._query_re.sub(rf"\1{REDACTED}", text)
        if ":" in text or "=" in text:
            text = self._header_re.sub(rf"\1\2{REDACTED}", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to the handler's own error path
            return True
        redacted = self.redact(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        return True
