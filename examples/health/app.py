"""Health checks and response headers, configured as a load balancer needs them.

Run it (from the repository root, after ``scripts/setup``, which installs the
bundled ``wsroute-health`` and ``wsroute-headers`` plugins)::

    .venv/bin/wsroute run examples.health.app:app --port 8765

* ``GET /healthz`` (liveness): 200 ``OK`` while the process serves.
* ``GET /ready`` (readiness): 200 when every check passes, 503 otherwise —
  here one check of our own, ``maintenance``, fails while the file named by
  ``$MAINTENANCE_FILE`` (default ``/tmp/wsroute-health-example.maintenance``)
  exists: ``touch`` it to take this instance out of the load balancer's
  rotation without stopping it, ``rm`` it to put it back.
* every handshake response, probes included, carries the configured headers
  and ``Server: health-example``.
* ``/ws`` is the application: an echo.
"""

from __future__ import annotations

import os
from pathlib import Path

import wsroute

DEFAULT_MAINTENANCE_FILE = "/tmp/wsroute-health-example.maintenance"


class Maintenance:
    """A plugin object of the app: one readiness check, ``maintenance``."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    @wsroute.hookimpl
    def wsroute_register_health_checks(self) -> dict[str, object]:
        return {"maintenance": self.in_rotation}

    def in_rotation(self) -> bool:
        """Fails while the flag file exists (a plain def: the health plugin runs it in a thread)."""
        if self.flag.exists():
            raise RuntimeError(f"{self.flag} exists: out of rotation")
        return True


app = wsroute.App(
    plugins=[Maintenance(Path(os.environ.get("MAINTENANCE_FILE", DEFAULT_MAINTENANCE_FILE)))],
    settings={
        "wsroute-health": {"readiness_path": "/ready", "timeout": 1.0},
        "wsroute-headers": {
            "headers": {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
            "server": "health-example",
        },
    },
)


@app.route("/ws")
async def echo(ws: wsroute.Connection) -> None:
    """The application behind the load balancer."""
    async for message in ws:
        await ws.send(message)
