"""Counters that say how the hub's fan-out is doing.

They are plain integers on one mutable attrs object so that the hot path pays
one attribute addition per fan-out (never one per delivery) and a health or
metrics plugin can read them without locks: the event loop is single-threaded.
"""

from __future__ import annotations

import attrs

__all__ = ["HubStats"]


@attrs.define(slots=True)
class HubStats:
    """Running totals since the hub was created.

    Attributes:
        delivered: frames written to a connection (fast path and outboxes).
        queued: frames that had to wait in a slow connection's outbox.
        dropped: frames discarded by the slow-consumer policy, or because
            their connection was closed for being slow or was lost.
        dropped_by_policy: the part of ``dropped`` that passed through a
            slow connection's outbox, by its policy's value
            (``"disconnect"``, ``"drop_oldest"``, ``"keep_latest"``).
        slow_disconnects: connections closed with 1013 for being slow.
        publish_failures: publishes that raised because the broker failed.
    """

    delivered: int = 0
    queued: int = 0
    dropped: int = 0
    dropped_by_policy: dict[str, int] = attrs.Factory(dict)
    slow_disconnects: int = 0
    publish_failures: int = 0
