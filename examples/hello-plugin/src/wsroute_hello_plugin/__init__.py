"""An example wsroute plugin, written the way a third party would write one.

Once installed (``pip install -e examples/hello-plugin``) every
``wsroute.App`` in the environment loads it through its entry point and:

* serves the WebSocket route ``/hello-plugin``, which greets and then echoes;
* adds the readiness check ``hello-plugin`` to ``/readyz`` (wsroute-health);
* adds ``X-Hello-Plugin: <greeting>`` to the handshake responses of its route.

Setting: ``App(settings={"hello-plugin": {"greeting": "hi"}})``.
"""

from __future__ import annotations

from typing import Any

import wsroute
from wsroute import hookimpl

NAME = "hello-plugin"
PATH = "/hello-plugin"
HEADER = "X-Hello-Plugin"
DEFAULTS = {"greeting": "hello"}


def _settings(app: wsroute.App) -> dict[str, Any]:
    return app.plugin_settings(NAME, DEFAULTS)


async def hello(ws: wsroute.Connection, greeting: str) -> None:
    """Greet, then answer every message with the greeting."""
    await ws.send(f"{greeting} from a plugin")
    async for message in ws:
        text = message if isinstance(message, str) else message.decode(errors="replace")
        await ws.send(f"{greeting}, {text}")


async def ready() -> bool:
    """A readiness check; a real plugin would ping its backend here."""
    return True


@hookimpl
def wsroute_configure(app: wsroute.App) -> None:
    """Check the settings once, at start-up: a typo stops the app with a clear message."""
    greeting = _settings(app)["greeting"]
    if not isinstance(greeting, str) or not greeting or any(c in greeting for c in "\r\n"):
        raise wsroute.PluginError(f"settings for plugin {NAME!r}: 'greeting' must be a one-line str (got {greeting!r})")


@hookimpl
def wsroute_register_routes(app: wsroute.App) -> list[tuple[Any, ...]]:
    """Serve /hello-plugin; the greeting is bound to the handler once."""
    return [(PATH, hello, {"greeting": _settings(app)["greeting"]})]


@hookimpl
def wsroute_register_health_checks(app: wsroute.App) -> dict[str, Any]:
    """Add this plugin's check to /readyz."""
    return {NAME: ready}


@hookimpl
def wsroute_extra_headers(app: wsroute.App, request: wsroute.Request) -> dict[str, str] | None:
    """Add a header to the handshake responses of this plugin's route only."""
    if request.path.partition("?")[0] == PATH:
        return {HEADER: _settings(app)["greeting"]}
    return None
