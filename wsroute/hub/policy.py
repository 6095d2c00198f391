"""What to do with a connection that cannot keep up: the slow-consumer policy.

A connection falls *behind* when its transport write buffer is over the hub's
``max_buffer`` (the kernel's socket buffer is already full) or when it has
frames waiting in its outbox. From then on new frames wait in a bounded
outbox of ``max_queue`` frames, and when that is full the policy decides:

``disconnect``
    Close the connection with 1013 "slow consumer" (the default: a client
    that cannot keep up usually reconnects and resynchronises).
``drop_oldest``
    Discard the oldest waiting frame; the client sees a gap, then the most
    recent ``max_queue`` frames, in order.
``keep_latest``
    Keep only the newest frame while the client is behind: right for state
    snapshots (a score, a cursor) where only the last value matters.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["POLICIES", "SlowConsumer", "parse_policy"]


class SlowConsumer(enum.Enum):
    """The three slow-consumer policies; their values are the config strings."""

    DISCONNECT = "disconnect"
    DROP_OLDEST = "drop_oldest"
    KEEP_LATEST = "keep_latest"


#: The policy names accepted in configuration (``App(slow_consumer=...)``,
#: ``@app.route(..., slow_consumer=...)``, ``Hub(policy=...)``): the one
#: list every validator and error message uses.
POLICIES: Final[tuple[str, ...]] = tuple(policy.value for policy in SlowConsumer)


def parse_policy(value: SlowConsumer | str, *, where: str = "slow_consumer") -> SlowConsumer:
    """Turn a config value into a :class:`SlowConsumer`, or raise ``ValueError``.

    Args:
        value: a :class:`SlowConsumer` or its string value.
        where: the option name, quoted in the error message.

    Raises:
        ValueError: the value names no policy; the message lists the valid ones.
    """
    if isinstance(value, SlowConsumer):
        return value
    try:
        return SlowConsumer(value)
    except ValueError:
        known = ", ".join(repr(name) for name in POLICIES)
        raise ValueError(
            f"{where} must be one of {known} (got {value!r} that is a "
            f"<{type(value).__name__}>)"
        ) from None
