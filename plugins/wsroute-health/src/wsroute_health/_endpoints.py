"""The per-app endpoints: answer the two health paths in ``wsroute_process_request``."""

from __future__ import annotations

import json
import logging
from typing import Any

import wsroute
from wsroute import hookimpl

from ._checks import Check, Outcome, collect_checks, run_checks
from ._config import LIVENESS, NAME, Config

__all__ = ["Endpoints"]

logger = logging.getLogger("wsroute.health")

_METHODS = ("GET", "HEAD")


class Endpoints:
    """One app's health endpoints, registered by ``wsroute_configure``.

    ``wsroute_process_request`` must decide synchronously: it compares the
    path (one dict lookup) and returns None for every other request; since it
    declares its paths (``wsroute_paths``), wsroute does not even call it for
    other paths unless another plugin answers every path. For
    ``/readyz`` it returns a coroutine that runs the checks; wsroute awaits it
    before answering (see the hook's documentation).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        #: The decoded paths this plugin answers: wsroute calls its
        #: ``wsroute_process_request`` for these only (no call per other handshake).
        self.wsroute_paths = frozenset(config.paths)
        self.checks: tuple[Check, ...] = ()
        self._failing: set[str] = set()

    def __repr__(self) -> str:
        return f"<{NAME} endpoints {', '.join(self.config.paths)}>"

    @hookimpl
    async def wsroute_startup(self, app: wsroute.App) -> None:
        """Collect the readiness checks (once per start) and warn about shadowed routes."""
        self.checks = await collect_checks(app)
        for route in app.routes:
            if route.path in self.config.paths:
                logger.warning(
                    "%s answers %s before routing: route %s is never reached; change the %s setting",
                    NAME,
                    route.path,
                    route.label,
                    f"'{self.config.paths[route.path]}_path'",
                )

    @hookimpl
    def wsroute_process_request(self, app: wsroute.App, conn: wsroute.Connection, request: wsroute.Request) -> Any:
        """Answer the health paths; None for everything else."""
        path = request.path
        if "?" in path:
            path = path.partition("?")[0]
        if "%" in path:  # compared decoded, as routes are: /health%7A is /healthz
            path = conn.decoded_path
        kind = self.config.paths.get(path)
        if kind is None:
            return None
        if request.method not in _METHODS:
            response = conn.respond(405, "Method Not Allowed\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        if kind == LIVENESS:
            return _finish(conn.respond(200, "OK"), request)
        return self._readiness(app, conn, request)

    async def _readiness(
        self, app: wsroute.App, conn: wsroute.Connection, request: wsroute.Request
    ) -> wsroute.Response:
        if app.shutting_down:
            body: dict[str, Any] = {"status": "fail", "shutting_down": True, "checks": {}}
            return _finish(_json(conn, 503, body), request)
        outcomes = await run_checks(self.checks, self.config.timeout)
        show = self.config.show_errors
        passed = all(outcome.passed for outcome in outcomes)
        self._log_changes(outcomes)
        body = {
            "status": "pass" if passed else "fail",
            "checks": {outcome.name: outcome.as_json(show) for outcome in outcomes},
        }
        return _finish(_json(conn, 200 if passed else 503, body), request)

    def _log_changes(self, outcomes: list[Outcome]) -> None:
        """Log a check when it starts failing and when it recovers, not on every probe."""
        for outcome in outcomes:
            if not outcome.passed and outcome.name not in self._failing:
                self._failing.add(outcome.name)
                logger.warning("readiness check %r failed: %s", outcome.name, outcome.error)
            elif outcome.passed and outcome.name in self._failing:
                self._failing.discard(outcome.name)
                logger.info("readiness check %r passes again", outcome.name)


def _json(conn: wsroute.Connection, status: int, body: dict[str, Any]) -> wsroute.Response:
    response = conn.respond(status, json.dumps(body, separators=(",", ":")))
    del response.headers["Content-Type"]  # headers[k] = v appends: delete first to replace
    response.headers["Content-Type"] = "application/json"
    return response


def _finish(response: wsroute.Response, request: wsroute.Request) -> wsroute.Response:
    response.headers["Cache-Control"] = "no-store"
    if request.method == "HEAD":
        response.body = b""  # Content-Length still tells the size of the GET body
    return response
