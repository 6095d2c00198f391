"""Close reasons that always fit in a close frame.

RFC 6455 section 5.5 limits a control frame's payload to 125 bytes; a close
frame spends two of them on the code, which leaves 123 bytes of UTF-8 for the
reason. websockets refuses a longer reason with ``ProtocolError: control frame
too long``, raised inside the code that asked to close, so the client would
get 1011 "internal error" instead of the code that was asked for.

Every close that wsroute performs or hands to user code (``Handler.close``,
``ws.close`` on a :class:`~wsroute.connection.Connection`, first-message
rejections, hub and server closes) passes its reason through
:func:`fit_close_reason`::

    >>> fit_close_reason("short")
    'short'
    >>> len(fit_close_reason("é" * 200).encode())
    123
"""

from __future__ import annotations

__all__ = ["MAX_CLOSE_REASON_BYTES", "fit_close_reason"]

#: The longest close reason a close frame can carry, in bytes of UTF-8.
MAX_CLOSE_REASON_BYTES = 123

_CUT_MARK = "..."
_KEPT_BYTES = MAX_CLOSE_REASON_BYTES - len(_CUT_MARK)


def fit_close_reason(reason: str) -> str:
    """Return ``reason`` cut to at most 123 bytes of UTF-8.

    A reason that fits is returned unchanged. A longer one keeps its first
    120 bytes, cut back to the last whole character (a multi-byte character
    is never split), followed by ``"..."`` to show it was cut. Characters
    that UTF-8 cannot encode (lone surrogates) become ``"?"``, so the result
    can always be sent.

    Args:
        reason: any text.

    Returns:
        A str whose UTF-8 encoding is at most :data:`MAX_CLOSE_REASON_BYTES`.
    """
    try:
        encoded = reason.encode()
    except UnicodeEncodeError:
        encoded = reason.encode(errors="replace")
        reason = encoded.decode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    # The prefix is valid UTF-8 except, at most, one split character at its
    # end, which errors="ignore" drops.
    return encoded[:_KEPT_BYTES].decode(errors="ignore") + _CUT_MARK
