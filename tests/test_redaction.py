"""Secrets kept out of log records: headers and query parameters redacted."""

from __future__ import annotations

import logging

from wsroute.redaction import Redactor


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("websockets.server", logging.DEBUG, __file__, 1, msg, args, None)


def test_header_lines_as_websockets_logs_them() -> None:
    """websockets' "< Name: value" debug lines lose the value of credential headers."""
    redactor = Redactor()
    for name in ("Authorization", "authorization", "Cookie", "Proxy-Authorization", "Set-Cookie"):
        item = record("< %s: %s", name, "Bearer s3cret")
        redactor.filter(item)
        assert item.getMessage() == f"< {name}: [redacted]"
    item = record("< %s: %s", "Host", "example.com")
    redactor.filter(item)
    assert item.getMessage() == "< Host: example.com"


def test_query_tokens_in_request_lines() -> None:
    """A token in the request line's query string is redacted, other parameters kept."""
    redactor = Redactor()
    item = record("< GET %s HTTP/1.1", "/chat?room=1&token=s3cret&x=2")
    redactor.filter(item)
    assert item.getMessage() == "< GET /chat?room=1&token=[redacted]&x=2 HTTP/1.1"


def test_configured_names() -> None:
    """Configured headers and query parameters are redacted as well as the defaults."""
    redactor = Redactor(headers=["X-Api-Key"], query_params=["sig"])
    redactor.add_query_params(["ticket"])
    text = redactor.redact("x-api-key: abc /p?sig=1&ticket=2&token=3")
    assert text == "x-api-key: [redacted]"
    assert redactor.redact("/p?sig=1&ticket=2&token=3") == "/p?sig=[redacted]&ticket=[redacted]&token=[redacted]"


def test_headers_in_a_dict_repr() -> None:
    """A header dict quoted in a message loses the credential and what follows it on the line."""
    assert "s3cret" not in Redactor().redact("headers={'Host': 'h', 'Authorization': 'Bearer s3cret'}")


def test_plain_text_is_untouched() -> None:
    """Words that only look like names are left alone."""
    redactor = Redactor()
    text = "missing Authorization header; tokens are required"
    assert redactor.redact(text) == text
