"""The messaging hub: broadcast, one user, topics, presence, with backpressure.

Handlers and apps call one object, ``app.hub``::

    await app.hub.broadcast("server restarting")
    await app.hub.send_to_user("alice", "you have mail")
    await app.hub.subscribe(ws, "room:1")
    await app.hub.publish_json("room:1", {"type": "say", "text": "hi"})

The package's modules, one idea each: :mod:`.hub` (the :class:`Hub` class),
:mod:`.registry` (local maps of connections), :mod:`.delivery` (writes with
backpressure), :mod:`.policy` (slow-consumer policies), :mod:`.broker`,
:mod:`.memory` and :mod:`.redis` (sharing messages between processes),
:mod:`.history` and :mod:`.recovery` (offsets, positions, replay), and
:mod:`.publisher` (publishing from outside a server). This module only
re-exports their public names.
"""

from __future__ import annotations

from .broker import Broker, HealthCheck, PresenceEvent, Sink, make_broker
from .history import HistoryConfig, Position, Recovery
from .hub import Hub
from .memory import MemoryBroker
from .policy import SlowConsumer
from .publisher import Publisher
from .registry import PresenceCallback
from .stats import HubStats

__all__ = [
    "Hub",
    "HubStats",
    "SlowConsumer",
    "Broker",
    "Sink",
    "MemoryBroker",
    "Publisher",
    "PresenceCallback",
    "PresenceEvent",
    "HealthCheck",
    "HistoryConfig",
    "Position",
    "Recovery",
    "make_broker",
]
