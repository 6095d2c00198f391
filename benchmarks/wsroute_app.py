"""The wsroute server under test: a realistic app, not a bare echo.

What makes it realistic, and so what every wsroute figure pays for:

- 50 routes (the three benchmark endpoints plus the filler table of
  :func:`benchmarks.apps.filler_paths`, a quarter of them parameterised);
- an auth middleware that checks the ``Authorization`` header of every
  handshake (a dict lookup, so it measures the middleware machinery, not a
  token check);
- the headers plugin (``wsroute_headers``) configured with two headers and a
  ``Server`` header, so it runs on every handshake response, and the health
  plugin (``wsroute_health``), whose ``wsroute_process_request`` sees every
  request; a missing plugin is named in the run's notes.

``/json`` is a ``wsroute.Handler`` class with one ``@wsroute.on("echo")``
method: the per-message dispatch path.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.apps import TOKEN, Running, filler_paths, serve_options

VALID_TOKENS = {TOKEN: "bench-user"}
HEADERS_SETTINGS = {
    "headers": {"X-Frame-Options": "DENY", "Cache-Control": "no-store"},
    "server": "wsroute-bench",
}
"""What a production app typically sets; with no settings the plugin does nothing."""


def unavailable() -> str | None:
    """Return why the wsroute kind cannot run yet, or None when it can."""
    try:
        wsroute = importlib.import_module("wsroute")
    except ImportError as exc:
        return f"wsroute not importable ({exc}): wsroute kind skipped"
    missing = [n for n in ("App", "Handler", "on") if not hasattr(wsroute, n)]
    if missing:
        return f"wsroute has no {', '.join(missing)} yet: wsroute kind skipped"
    return None


def bundled_plugin(folder: str, module: str) -> Any | None:
    """Return a plugin module from ``plugins/``, or None when it does not exist yet.

    Installed (``pip install -e plugins/wsroute-headers``) it is found by
    import; in a fresh checkout it is imported from its source folder, so
    the benchmark measures it either way.
    """
    if importlib.util.find_spec(module) is None:
        root = Path(__file__).resolve().parent.parent / "plugins" / folder
        for path in (root / "src", root):
            if (path / module).is_dir():
                sys.path.append(str(path))
                break
        else:
            return None
    return importlib.import_module(module)


def build_app(tokens: dict[str, str] | None = None) -> tuple[Any, str]:
    """Build the 50-route app; return it and a note saying which plugins it loaded.

    Entry-point discovery is off: whatever else happens to be installed in
    the environment (an example plugin, say) must not change the figures.
    The plugins measured are the bundled ones a production app would load:
    the headers plugin (configured) and the health plugin (its
    ``wsroute_process_request`` runs on every handshake).

    Args:
        tokens: the auth middleware's ``{Authorization value: user}`` table
            (default :data:`VALID_TOKENS`); an independent harness whose
            client sends no such header passes ``{"": "anonymous"}`` too,
            so the middleware still runs its lookup on every handshake.
    """
    import wsroute

    valid = VALID_TOKENS if tokens is None else tokens

    # Diagnostic: WSROUTE_BENCH_APP=bare|middleware|headers|health|full (the
    # default) builds the app without the parts not named, to tell the
    # framework's own per-handshake cost from its plugins' and middleware's.
    # ``limits`` and ``metrics`` are ``full`` plus every limit configured (never hit) or the
    # metrics plugin, to measure what each costs (issues 11 and 17); ``counting`` is ``full``
    # with the core's traffic counting the metrics plugin switches on, without the plugin.
    variant = os.environ.get("WSROUTE_BENCH_APP", "full")
    full = ("full", "limits", "metrics", "counting")
    headers = bundled_plugin("wsroute-headers", "wsroute_headers") if variant in (*full, "headers") else None
    health = bundled_plugin("wsroute-health", "wsroute_health") if variant in (*full, "health") else None
    metrics = bundled_plugin("wsroute-metrics", "wsroute_metrics") if variant == "metrics" else None
    plugins = [p for p in (headers, health, metrics) if p is not None]
    settings = {"wsroute-headers": HEADERS_SETTINGS} if headers is not None else {}
    limits: dict[str, Any] = {}
    if variant == "limits":
        limits = {
            "max_connections": 1_000_000,
            "max_connections_per_ip": 1_000_000,
            "max_connections_per_user": 1_000_000,
            "handshake_rate": "1000000/s",
            "message_rate": wsroute.Rate(1_000_000, per=1.0),
            "max_subscriptions": 1000,
        }
    app = wsroute.App(settings=settings, plugins=plugins, load_entrypoints=False, **limits)

    def auth(conn: Any, request: Any) -> Any:
        user = valid.get(request.headers.get("Authorization", ""))
        if user is None:
            return conn.respond(401, "bad token\n")
        conn.ctx.user = user
        return None

    if variant != "bare":
        app.middleware(auth)
    if variant == "counting":
        app.count_traffic()

    @app.route("/echo")
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    @app.route("/json")
    class JsonEcho(wsroute.Handler):
        @wsroute.on("echo")
        async def echo(self, data: Any) -> None:
            await self.send_json(data)

    @app.route("/idle")
    async def idle(ws: Any) -> None:
        await ws.wait_closed()

    for pattern, _ in filler_paths():
        app.route(pattern)(echo)

    loaded = ", ".join(p.__name__ for p in plugins) or "none"
    missing = "" if headers is not None else " (headers plugin not found: measured without it)"
    return app, f"wsroute plugins loaded: {loaded}{missing}"


async def start_wsroute(path: str, deflate: bool = False) -> tuple[Any, Running]:
    """Start the app on 127.0.0.1 port 0; ``path`` is unused (all routes are served).

    With ``deflate`` the app negotiates permessage-deflate with wsroute's
    default settings (:mod:`wsroute.compression`); otherwise not at all.
    """
    app, note = build_app()
    manager = app.serve("127.0.0.1", 0, **serve_options(deflate))
    server = await manager.__aenter__()
    port = int(next(iter(server.sockets)).getsockname()[1])

    def broadcast(message: str) -> Any:
        return app.hub.broadcast(message)

    return manager, Running(port, broadcast, lambda: app.hub.connections, note)
