"""wsroute-health: ``/healthz`` and ``/readyz`` answered as plain HTTP before routing.

Installed, it is loaded into every :class:`wsroute.App` through its entry
point (group ``wsroute``, name ``wsroute-health``) and answers only its two
paths; every other request goes on to routing untouched.

* ``GET /healthz`` (liveness): ``200 OK`` while the process serves.
* ``GET /readyz`` (readiness): runs every check returned by the
  ``wsroute_register_health_checks`` hook, concurrently, each cut at
  ``timeout`` seconds; ``200`` when all pass, ``503`` otherwise or while the
  server is shutting down. The JSON body gives each check's status and
  duration. A check that raises, returns ``False`` or times out is a failed
  check, never a 500.
* ``HEAD`` answers the same status and headers without a body; other methods
  get ``405``.

Settings, ``App(settings={"wsroute-health": {...}})``; see :data:`DEFAULTS`.
"""

from __future__ import annotations

import wsroute
from wsroute import hookimpl

from ._config import DEFAULTS, NAME, Config
from ._endpoints import Endpoints

__version__ = "0.1.0"

__all__ = ["DEFAULTS", "NAME", "Config", "Endpoints", "wsroute_configure"]


@hookimpl
def wsroute_configure(app: wsroute.App) -> None:
    """Validate the settings and register this app's endpoints.

    The module is shared by every App of the process, so the per-app state
    lives in an :class:`Endpoints` object registered with this app only.
    """
    config = Config.from_settings(app.plugin_settings(NAME, DEFAULTS))
    if config.paths:
        app.plugins.register(Endpoints(config), f"{NAME}.endpoints", source=f"registered by {NAME}")
