"""The plugin's settings, validated when the app starts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

import wsroute

__all__ = ["DEFAULTS", "LIVENESS", "NAME", "READINESS", "Config"]

NAME = "wsroute-health"

#: ``App(settings={"wsroute-health": {...}})`` keys and their defaults.
#:
#: * ``liveness_path``: the liveness endpoint, or None to switch it off.
#: * ``readiness_path``: the readiness endpoint, or None to switch it off.
#: * ``timeout``: seconds each readiness check may take before it fails.
#: * ``show_errors``: include each failed check's error text in ``/readyz``'s
#:   body (switch off when the endpoint is reachable from outside).
DEFAULTS: Mapping[str, Any] = {
    "liveness_path": "/healthz",
    "readiness_path": "/readyz",
    "timeout": 2.0,
    "show_errors": True,
}

LIVENESS = "liveness"
READINESS = "readiness"


def _error(message: str) -> wsroute.PluginError:
    return wsroute.PluginError(f"settings for plugin {NAME!r}: {message}")


def _got(value: Any) -> str:
    return f"got {value!r} that is a <{type(value).__name__}>"


def _path(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/") or "?" in value or any(c.isspace() for c in value):
        raise _error(f"{key!r} must be a path such as '/healthz' without query or spaces, or None ({_got(value)})")
    return value


@attrs.frozen
class Config:
    """Validated settings.

    Attributes:
        paths: ``{path: "liveness" | "readiness"}`` for the enabled endpoints.
        timeout: seconds per readiness check.
        show_errors: whether failed checks show their error text.
    """

    paths: Mapping[str, str]
    timeout: float
    show_errors: bool

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Config:
        """Validate ``app.plugin_settings(NAME, DEFAULTS)``.

        Raises:
            wsroute.PluginError: a value of the wrong type or out of range.
        """
        live = _path("liveness_path", settings["liveness_path"])
        ready = _path("readiness_path", settings["readiness_path"])
        if live is not None and live == ready:
            raise _error(f"'liveness_path' and 'readiness_path' must differ (both are {live!r})")
        timeout = settings["timeout"]
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise _error(f"'timeout' must be a number of seconds > 0 ({_got(timeout)})")
        show_errors = settings["show_errors"]
        if not isinstance(show_errors, bool):
            raise _error(f"'show_errors' must be True or False ({_got(show_errors)})")
        paths = {path: kind for path, kind in ((live, LIVENESS), (ready, READINESS)) if path is not None}
        return cls(paths, float(timeout), show_errors)
