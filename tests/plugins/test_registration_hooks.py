"""The registration hooks not covered elsewhere: middleware from plugins, CLI commands from plugins."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import click
import pytest
from click.testing import CliRunner

import wsroute
from wsroute.plugins import Plugins
from wsroute.testing import serve_app


async def echo(ws: wsroute.Connection) -> None:
    async for message in ws:
        await ws.send(message)


class PrivatePaths:
    """A plugin registering middleware that refuses /private/*."""

    @wsroute.hookimpl
    def wsroute_register_middleware(self, app: wsroute.App) -> list[Any]:
        def refuse_private(conn: wsroute.Connection, request: wsroute.Request) -> wsroute.Response | None:
            if conn.path.startswith("/private/"):
                return conn.respond(HTTPStatus.FORBIDDEN, "private\n")
            return None

        return [refuse_private]


async def test_wsroute_register_middleware_runs_per_handshake() -> None:
    """Middleware returned by wsroute_register_middleware refuses matching requests and lets others through."""
    app = wsroute.App(load_entrypoints=False, plugins=[PrivatePaths()])
    app.add_route("/private/{name}", echo)
    app.add_route("/public", echo)
    async with serve_app(app) as server:
        assert await server.rejection("/private/x") == 403
        async with server.connect("/public") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_wsroute_register_middleware_after_code_middleware() -> None:
    """Plugin middleware runs after the middleware registered in code."""
    order: list[str] = []

    class Second:
        @wsroute.hookimpl
        def wsroute_register_middleware(self) -> list[Any]:
            return [lambda conn, request: order.append("plugin")]

    app = wsroute.App(load_entrypoints=False, plugins=[Second()])
    app.middleware(lambda conn, request: order.append("code"))
    app.add_route("/x", echo)
    async with serve_app(app) as server, server.connect("/x"):
        pass
    assert order == ["code", "plugin"]


async def test_wsroute_register_middleware_with_a_bad_signature_stops_start_up() -> None:
    """A plugin's middleware that cannot take (conn, request) stops start-up with ConfigurationError."""

    class Bad:
        @wsroute.hookimpl
        def wsroute_register_middleware(self) -> list[Any]:
            return [lambda request: None]

    app = wsroute.App(load_entrypoints=False, plugins=[Bad()])
    expected = r"^wsroute_register_middleware: middleware .* cannot be called as \(conn, request\)"
    with pytest.raises(wsroute.ConfigurationError, match=expected):
        async with serve_app(app):
            pass


def test_wsroute_register_commands_adds_a_cli_command(fake_distribution: Callable[[str, str], str]) -> None:
    """An installed plugin's wsroute_register_commands adds a click command that runs."""
    fake_distribution(
        "greeter-cli",
        """
        import click
        from wsroute import hookimpl

        @hookimpl
        def wsroute_register_commands(cli):
            @cli.command()
            @click.argument("name")
            def greet(name):
                click.echo(f"hello {name}")
        """,
    )
    group = click.Group("wsroute")
    Plugins().hook.wsroute_register_commands(cli=group)
    result = CliRunner().invoke(group, ["greet", "ada"])
    assert (result.exit_code, result.output) == (0, "hello ada\n")
