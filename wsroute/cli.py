"""The ``wsroute`` command: ``run``, ``routes``, ``plugins``, ``asyncapi`` (a thin shell over the library).

Every option can also come from an environment variable ``WSROUTE_<NAME>``
(``--drain-timeout`` from ``WSROUTE_DRAIN_TIMEOUT``). Installed plugins may add
commands with the ``wsroute_register_commands(cli)`` hook. A user mistake
(module not found, port in use, a route that cannot be bound…) prints one
``Error: …`` line and exits with status 1; bad options exit with status 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from .app import App
from .callbacks import describe
from .errors import WsrouteError
from .forwarding import LOCAL_PROXIES, TrustedProxies
from .loading import AppSpec, check_directory
from .logs import LOG_FORMATS, configure_logging
from .routetable import COLUMNS, options_text, route_rows
from .server import LOOPS, ServeConfig, loop_factory, run_config

if TYPE_CHECKING:
    from .workers import Launch

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _env(name: str) -> str:
    return f"WSROUTE_{name}"


@contextmanager
def user_errors(debug: bool = False) -> Iterator[None]:
    """Turn wsroute's errors (and missing optional packages) into ``Error: message``, exit 1.

    Args:
        debug: print the traceback of the user's code first, when the error
            came from it (a module that fails to import, a factory that raises).
    """
    try:
        yield
    except WsrouteError as exc:
        if debug and exc.__cause__ is not None:
            click.echo("".join(traceback.format_exception(exc.__cause__)), err=True, nl=False)
        raise click.ClickException(str(exc)) from None
    except ImportError as exc:
        if "pip install" not in str(exc):
            raise
        raise click.ClickException(str(exc)) from None


def _app_options(func: F) -> F:
    """The options every command that loads an app takes."""
    func = click.argument("import_string", metavar="MODULE:ATTR", envvar=_env("APP"))(func)
    func = click.option(
        "--factory", is_flag=True, envvar=_env("FACTORY"), show_envvar=True,
        help="MODULE:ATTR is a function returning the App, called with no arguments.",
    )(func)
    func = click.option(
        "--app-dir", default=".", show_default=True, envvar=_env("APP_DIR"), show_envvar=True,
        type=click.Path(file_okay=False), help="Directory put first on sys.path to import the app from.",
    )(func)
    return func


def _check_broker(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from .hub import make_broker

    try:
        make_broker(value)
    except (ValueError, TypeError, ImportError) as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_allow_ips(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        TrustedProxies.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="wsroute", message="%(prog)s %(version)s")
def cli() -> None:
    """wsroute: run and inspect wsroute WebSocket apps.

    \b
    Examples:
      wsroute run app:app --port 8765
      wsroute run app:app --workers 4 --broker redis://127.0.0.1:6379/0
      wsroute routes app:app
      wsroute plugins app:app
      wsroute asyncapi app:app --format yaml
    """


@cli.command(context_settings={"show_default": True})
@_app_options
@click.option("--host", default="127.0.0.1", envvar=_env("HOST"), show_envvar=True,
              help="Address to listen on; 0.0.0.0 for every IPv4 interface.")
@click.option("--port", default=8765, type=click.IntRange(0, 65535), envvar=_env("PORT"), show_envvar=True,
              help="TCP port (0: any free port).")
@click.option("--uds", type=click.Path(dir_okay=False), envvar=_env("UDS"), show_envvar=True,
              help="Listen on this Unix domain socket instead of --host/--port.")
@click.option("--workers", default=1, type=click.IntRange(min=1), envvar=_env("WORKERS"), show_envvar=True,
              help="Server processes sharing the port (SO_REUSEPORT), restarted when they die.")
@click.option("--reload", is_flag=True, envvar=_env("RELOAD"), show_envvar=True,
              help="Restart when Python files change (development only; needs wsroute[reload]).")
@click.option("--reload-dir", "reload_dirs", multiple=True, type=click.Path(file_okay=False),
              envvar=_env("RELOAD_DIR"), show_envvar=True,
              help="Directory to watch with --reload [default: --app-dir].")
@click.option("--loop", default="auto", type=click.Choice(LOOPS), envvar=_env("LOOP"), show_envvar=True,
              help="Event loop; auto picks uvloop when it is installed.")
@click.option("--log-level", default="info", type=click.Choice(LOG_LEVELS), envvar=_env("LOG_LEVEL"),
              show_envvar=True, help="Logging level.")
@click.option("--log-format", default="text", type=click.Choice(LOG_FORMATS), envvar=_env("LOG_FORMAT"),
              show_envvar=True, help="text lines, or one JSON object per line (connection id, route, client IP, "
                                     "user id as keys).")
@click.option("--drain-timeout", default=10.0, type=click.FloatRange(min=0), envvar=_env("DRAIN_TIMEOUT"),
              show_envvar=True, metavar="SECONDS",
              help="On SIGTERM/SIGINT, seconds connections get to close before handlers are cancelled.")
@click.option("--keep-connections", is_flag=True, envvar=_env("KEEP_CONNECTIONS"), show_envvar=True,
              help="On stop, let clients leave by themselves until the drain timeout, then close with 1012.")
@click.option("--proxy-headers", is_flag=True, envvar=_env("PROXY_HEADERS"), show_envvar=True,
              help="Believe X-Forwarded-For/Forwarded from --forwarded-allow-ips for ws.client_ip.")
@click.option("--forwarded-allow-ips", default=LOCAL_PROXIES, callback=_check_allow_ips,
              envvar=_env("FORWARDED_ALLOW_IPS"), show_envvar=True,
              help="Comma-separated proxy IPs or networks to trust with --proxy-headers; '*' trusts all.")
@click.option("--broker", callback=_check_broker, envvar=_env("BROKER"), show_envvar=True, metavar="URL",
              help="The hub's broker, replacing the app's: memory://, redis://host:6379/0, "
                   "or redis+cluster://host:7000,host:7001/ (Redis Cluster).")
@click.option("--max-connections", type=click.IntRange(min=1), envvar=_env("MAX_CONNECTIONS"), show_envvar=True,
              help="Open connections per process; past it handshakes get 503 + Retry-After "
                   "[default: the file-descriptor limit minus a reserve].")
@click.option("--max-connections-per-ip", type=click.IntRange(min=1), envvar=_env("MAX_CONNECTIONS_PER_IP"),
              show_envvar=True, help="Open connections per client IP (proxy-aware); past it 429 [default: off].")
@click.option("--redact", "redact", multiple=True, envvar=_env("REDACT"), show_envvar=True, metavar="NAME",
              help="A header or query parameter whose values the log hides (repeatable; Authorization, Cookie, "
                   "token... always are).")
@click.option("--debug", is_flag=True, envvar=_env("DEBUG"), show_envvar=True,
              help="asyncio debug mode, warn when a route blocks the event loop, and show the traceback "
                   "when importing the app or calling its factory fails.")
@click.option("--lag-threshold", default=0.1, type=click.FloatRange(min=0.001), envvar=_env("LAG_THRESHOLD"),
              show_envvar=True, metavar="SECONDS", help="With --debug: event-loop block worth a warning.")
def run(
    import_string: str, factory: bool, app_dir: str, host: str, port: int, uds: str | None, workers: int,
    reload: bool, reload_dirs: tuple[str, ...], loop: str, log_level: str, log_format: str, drain_timeout: float,
    keep_connections: bool, proxy_headers: bool, forwarded_allow_ips: str, broker: str | None,
    max_connections: int | None, max_connections_per_ip: int | None, redact: tuple[str, ...], debug: bool,
    lag_threshold: float,
) -> None:
    """Serve the App at MODULE:ATTR until SIGTERM or SIGINT.

    On SIGTERM/SIGINT the server stops accepting, readiness turns 503,
    connections are closed with 1001 and handlers still running after
    --drain-timeout are cancelled; the process exits within the drain
    timeout plus 5 s (threads still running are logged and left behind)
    with status 0. A second signal stops at once with status 1.

    \b
    Examples:
      wsroute run app:app
      wsroute run app:app --host 0.0.0.0 --port 8000 --workers 4
      wsroute run app:create_app --factory --reload
      wsroute run app:app --uds /run/wsroute.sock --proxy-headers
      WSROUTE_PORT=9000 WSROUTE_LOG_LEVEL=debug wsroute run app:app
      wsroute run app:app --max-connections 10000 --max-connections-per-ip 50
    """
    if reload and workers > 1:
        raise click.UsageError("--reload is for development and runs one process; drop --workers or --reload")
    if uds is not None and workers > 1:
        raise click.UsageError("--uds cannot be shared by several --workers; use --host/--port, or one process")
    configure_logging(log_level, log_format=log_format)
    limits = {"max_connections": max_connections, "max_connections_per_ip": max_connections_per_ip}
    spec = AppSpec(
        import_string, factory, app_dir, broker, proxy_headers, forwarded_allow_ips,
        limits=tuple((name, value) for name, value in limits.items() if value is not None),
        redact=tuple(name for item in redact for name in item.split(",") if name.strip()),
    )
    config = ServeConfig(
        host=host, port=port, uds=uds, drain_timeout=drain_timeout, keep_connections=keep_connections,
        loop=loop, debug=debug, lag_threshold=lag_threshold, cli=True,
    )
    with user_errors(debug):
        loop_factory(loop)
        check_directory(app_dir)
        for folder in reload_dirs:
            check_directory(folder, "Reload directory", "--reload-dir")
        if reload or workers > 1:
            from .workers import Launch  # only here: the supervisor's modules are not needed otherwise

            dirs = list(reload_dirs or [app_dir]) if reload else None
            _supervise(Launch(spec, config, log_level, log_format), workers, dirs)
            return
        app = spec.load()
        run_config(app, config)


def _supervise(launch: Launch, workers: int, dirs: list[str] | None) -> None:
    from .workers import Supervisor

    supervisor = Supervisor(launch, workers, reload_dirs=dirs)
    code = supervisor.run()
    if supervisor.failure is not None:
        raise click.ClickException(supervisor.failure)
    if code:
        sys.exit(code)


@cli.command()
@_app_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def routes(import_string: str, factory: bool, app_dir: str, as_json: bool) -> None:
    """List the routes of the App at MODULE:ATTR.

    One line per route: its path, its name (for app.url_path_for), the
    first-message type that selects it (message-routed paths), the handler,
    route-level middleware, the dependencies bound to it and the options it
    sets itself (subprotocols, trailing_slash, limits, the router that
    registered it...). Routes added by plugins are included.

    \b
    Examples:
      wsroute routes app:app
      wsroute routes app:app --json
    """
    with user_errors():
        app = _configured(AppSpec(import_string, factory, app_dir))
    rows, problems = route_rows(app)
    app_middleware = [describe(m) for m in app.middleware_chain]
    if as_json:
        report = {"routes": rows, "middleware": app_middleware, "provided": sorted(app.provided)}
        click.echo(json.dumps(report, indent=2))
    else:
        table = [{**row, "options": options_text(row["options"])} for row in rows]
        click.echo(_table(table, list(COLUMNS)))
        click.echo(f"\napp middleware (every route, first): {', '.join(app_middleware) or '-'}")
        click.echo(f"provided (injected by parameter name): {', '.join(sorted(app.provided)) or '-'}")
    if problems:
        raise click.ClickException("\n".join(problems))


@cli.command()
@_app_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(import_string: str, factory: bool, app_dir: str, as_json: bool) -> None:
    """List the plugins loaded by the App at MODULE:ATTR.

    For each plugin: its name, version, where it came from (entry point,
    App(plugins=...), built-in) and the hooks it implements.

    \b
    Examples:
      wsroute plugins app:app
      WSROUTE_DISABLE_PLUGINS=wsroute-health wsroute plugins app:app
    """
    with user_errors():
        app = _configured(AppSpec(import_string, factory, app_dir))
    rows = [
        {"name": p.name, "version": p.version or "-", "source": p.source, "hooks": ", ".join(p.hooks) or "-"}
        for p in app.plugins.list()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(_table(rows, ["name", "version", "source", "hooks"]))


def _configured(spec: AppSpec) -> App:
    """Load the app and let its plugins configure it (routes, middleware, dependencies)."""
    app = spec.load()
    # Plugins register routes and dependencies when configured; nothing listens.
    asyncio.run(app.configure())
    return app


@cli.command()
@_app_options
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True,
              envvar=_env("ASYNCAPI_FORMAT"), show_envvar=True,
              help="Output format; yaml needs PyYAML (pip install 'wsroute[yaml]').")
@click.option("--server", "servers", multiple=True, metavar="URL", envvar=_env("ASYNCAPI_SERVER"), show_envvar=True,
              help="A server URL such as ws://127.0.0.1:8765 for the document's servers (repeatable).")
@click.option("--title", default="wsroute application", show_default=True, help="The document's info.title.")
@click.option("--api-version", default="1.0.0", show_default=True, help="The document's info.version.")
def asyncapi(
    import_string: str, factory: bool, app_dir: str, fmt: str, servers: tuple[str, ...], title: str,
    api_version: str,
) -> None:
    """Print the AsyncAPI 3.0.0 document of the App at MODULE:ATTR.

    One channel per route, the messages clients send and receive with their
    JSON Schemas (from @wsroute.message classes), and the security schemes
    of bearer_auth/query_token_auth. Routes added by plugins are included.

    \b
    Examples:
      wsroute asyncapi app:app > asyncapi.json
      wsroute asyncapi app:app --format yaml --server ws://127.0.0.1:8765
    """
    with user_errors():
        app = _configured(AppSpec(import_string, factory, app_dir))
        document = app.asyncapi(list(servers) or None, title=title, version=api_version)
        text = _yaml(document) if fmt == "yaml" else json.dumps(document, indent=2, ensure_ascii=False)
    click.echo(text)


def _yaml(document: dict[str, Any]) -> str:
    """The document as YAML, with PyYAML (an optional extra)."""
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "--format yaml needs PyYAML: pip install 'wsroute[yaml]' (or use --format json)"
        ) from None
    text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return text.rstrip("\n")


def _table(rows: list[dict[str, str]], columns: list[str]) -> str:
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


_plugin_commands_added = False


def add_plugin_commands(group: click.Group = cli) -> None:
    """Call ``wsroute_register_commands(cli)`` on the installed entry-point plugins (once)."""
    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True
    from .plugins import Plugins

    try:
        plugins = Plugins()
        plugins.hook.wsroute_register_commands(cli=group)
    except WsrouteError as exc:
        click.echo(f"Warning: plugin commands unavailable: {exc}", err=True)


def main(argv: list[str] | None = None) -> Any:
    """The ``wsroute`` console script."""
    add_plugin_commands(cli)
    return cli.main(args=argv, prog_name="wsroute")
