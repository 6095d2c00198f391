"""wsroute-headers: configured headers and the ``Server`` header on every handshake response.

Installed, it is loaded into every :class:`wsroute.App` through its entry
point (group ``wsroute``, name ``wsroute-headers``). With no settings it does
nothing at all — not even a per-request call: websockets' own ``Server``
header is left as is. Configure it with::

    app = wsroute.App(settings={"wsroute-headers": {
        "headers": {"X-Frame-Options": "DENY", "Cache-Control": "no-store"},
        "server": "my-service",      # or False to send no Server header
    }})

Configured headers *replace* any header of the same name already in the
response (websockets' ``headers[name] = value`` appends, so the plugin
deletes first); a list value sends the header once per item. They are added
to every handshake response: the ``101``, rejections (``401``, ``404``…) and
plain HTTP answers such as ``/healthz``. Other plugins add their own headers
by implementing ``wsroute_extra_headers``; wsroute appends what they return
after this plugin ran.

Names and values are checked when the app starts (``wsroute_configure``):
a name that is not an HTTP token, a value with CR, LF or another control
character, or a header that the WebSocket handshake itself manages
(``Connection``, ``Upgrade``, ``Sec-WebSocket-*``, ``Content-Length``…) stops
start-up with a message saying which one and why.
"""

from __future__ import annotations

import wsroute
from wsroute import hookimpl

from ._apply import Apply, ServerHeader, server_of
from ._config import DEFAULTS, NAME, Config

__version__ = "0.1.0"

__all__ = ["DEFAULTS", "NAME", "Apply", "Config", "ServerHeader", "wsroute_configure"]


@hookimpl
def wsroute_configure(app: wsroute.App) -> None:
    """Validate the settings; when there is something to do, register this app's :class:`Apply`.

    The module is shared by every App of the process, so the per-app state
    lives in objects registered with this app only: :class:`ServerHeader`
    for ``server`` (it becomes websockets' ``server_header`` option, written
    once per response by websockets itself) and :class:`Apply` for
    ``headers`` (its hook runs per response). With nothing configured,
    nothing is registered and handshakes pay nothing.
    """
    config = Config.from_settings(app.plugin_settings(NAME, DEFAULTS))
    server = server_of(config)
    if server is not None:  # no per-request work: websockets' server_header option
        app.plugins.register(server, f"{NAME}.server", source=f"registered by {NAME}")
    if config.headers:
        app.plugins.register(Apply(config), f"{NAME}.response", source=f"registered by {NAME}")
