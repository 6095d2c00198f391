"""The plugin's settings, validated when the app starts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

import wsroute
from wsroute.traffic import DEFAULT_DURATION_BUCKETS

__all__ = ["DEFAULTS", "NAME", "Config"]

NAME = "wsroute-metrics"

#: ``App(settings={"wsroute-metrics": {...}})`` keys and their defaults.
#:
#: * ``path``: where the exposition is served (``GET``/``HEAD``), answered
#:   before routing, so a route on the same path is never reached.
#: * ``port``: serve the metrics on this port of their own instead of the app's
#:   port (0 picks a free one; ``None``, the default, uses the app's port).
#: * ``host``: the address of that separate port (default loopback only).
#: * ``duration_buckets``: upper bounds, in seconds, of the connection
#:   duration histogram's buckets.
#: * ``lag_interval``: seconds between two event-loop lag measurements.
#: * ``sync_interval``: with several workers, seconds between two copies of
#:   this worker's counters into the shared directory (a scrape in another
#:   worker sees values at most this old).
DEFAULTS: Mapping[str, Any] = {
    "path": "/metrics",
    "port": None,
    "host": "127.0.0.1",
    "duration_buckets": DEFAULT_DURATION_BUCKETS,
    "lag_interval": 0.5,
    "sync_interval": 1.0,
}


def _error(message: str) -> wsroute.PluginError:
    return wsroute.PluginError(f"settings for plugin {NAME!r}: {message}")


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _error(f"{key!r} must be a number of seconds > 0 (got {value!r})")
    return float(value)


@attrs.frozen
class Config:
    """Validated settings (see :data:`DEFAULTS`)."""

    path: str
    port: int | None
    host: str
    duration_buckets: tuple[float, ...]
    lag_interval: float
    sync_interval: float

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Config:
        """Validate ``app.plugin_settings(NAME, DEFAULTS)``.

        Raises:
            wsroute.PluginError: a value of the wrong type or out of range.
        """
        path = settings["path"]
        if not isinstance(path, str) or not path.startswith("/") or "?" in path or any(c.isspace() for c in path):
            raise _error(f"'path' must be a path such as '/metrics' without query or spaces (got {path!r})")
        port = settings["port"]
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
            raise _error(f"'port' must be None or a port number 0-65535 (got {port!r})")
        host = settings["host"]
        if not isinstance(host, str) or not host:
            raise _error(f"'host' must be an address such as '127.0.0.1' (got {host!r})")
        buckets = settings["duration_buckets"]
        try:
            bounds = tuple(_seconds("duration_buckets", b) for b in buckets)
        except TypeError:
            raise _error(f"'duration_buckets' must be increasing seconds (got {buckets!r})") from None
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise _error(f"'duration_buckets' must be increasing seconds (got {buckets!r})")
        return cls(
            path,
            port,
            host,
            bounds,
            _seconds("lag_interval", settings["lag_interval"]),
            _seconds("sync_interval", settings["sync_interval"]),
        )
