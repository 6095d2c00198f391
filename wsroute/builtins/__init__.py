"""wsroute's built-in plugins: features of the core registered through the plugin contract.

"Built-ins are plugins" (as in datasette and pytest): each built-in feature
that a user might replace or switch off is a plugin module here, listed in
:data:`DEFAULT_PLUGINS` and registered into every App's plugin manager before
the installed (entry-point) plugins. It is blocked like any other plugin, by
its name: ``App(disable_plugins=["wsroute.hub"])`` or
``WSROUTE_DISABLE_PLUGINS=wsroute.hub``.

A built-in module holds hook implementations only, takes what it needs from
the ``app`` argument (never module state: one module serves every App of the
process), and is never imported by the core directly.
"""

from __future__ import annotations

__all__ = ["DEFAULT_PLUGINS"]

#: ``(plugin name, module)`` of every built-in plugin, in registration order.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("wsroute.hub", "wsroute.builtins.hub"),
    ("wsroute.otel", "wsroute.builtins.otel"),
)
