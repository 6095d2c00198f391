"""wsroute-metrics: Prometheus metrics for a wsroute app.

Installed, it is loaded into every :class:`wsroute.App` through its entry
point (group ``wsroute``, name ``wsroute-metrics``). It serves the text
exposition format on ``GET /metrics`` before routing (or on a port of its
own), and exports the families of :data:`FAMILIES` (listed, with PromQL
examples, in ``docs/observability.md``). With ``wsroute run --workers N``
one scrape returns the sum over the workers (prometheus_client's
multiprocess mode; wsroute creates and removes the shared directory).

Settings, ``App(settings={"wsroute-metrics": {...}})``; see :data:`DEFAULTS`.
Switch it off with ``-p no:wsroute-metrics`` like any plugin.
"""

from __future__ import annotations

import weakref

import wsroute
from wsroute import hookimpl

from ._config import DEFAULTS, NAME, Config
from ._exporter import UNMATCHED, Exporter, add_to_histogram, limit_refusals, route_label
from ._families import FAMILIES, Family, markdown_table

__version__ = "0.1.0"

__all__ = [
    "DEFAULTS",
    "FAMILIES",
    "NAME",
    "UNMATCHED",
    "Config",
    "Exporter",
    "Family",
    "add_to_histogram",
    "limit_refusals",
    "exporter_of",
    "markdown_table",
    "route_label",
    "wsroute_configure",
]


@hookimpl
def wsroute_configure(app: wsroute.App) -> None:
    """Validate the settings and register this app's :class:`Exporter` (per-app state, not module globals)."""
    config = Config.from_settings(app.plugin_settings(NAME, DEFAULTS))
    exporter = Exporter(config, app)
    _EXPORTERS[app] = exporter
    app.plugins.register(exporter, f"{NAME}.exporter", source=f"registered by {NAME}")


_EXPORTERS: weakref.WeakKeyDictionary[wsroute.App, Exporter] = weakref.WeakKeyDictionary()


def exporter_of(app: wsroute.App) -> Exporter | None:
    """The app's :class:`Exporter` once it started (e.g. to read ``side_port.port``), else None."""
    return _EXPORTERS.get(app)
