"""Built-in plugin ``wsroute.hub``: the hub's broker readiness checks.

The Redis broker contributes a ``"redis"`` check (a PING with a timeout);
the health plugin (``wsroute-health``) collects it for ``/readyz``. The
in-memory broker has none.
"""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def wsroute_register_health_checks(app: Any) -> Any:
    """The app's hub's broker checks, ``{name: check}`` (empty for the memory broker)."""
    return app.hub.health_checks()
