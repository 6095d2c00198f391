"""The accept-error throttle and the descriptor limit, without exhausting anything."""

from __future__ import annotations

import asyncio
import logging
import resource

import wsroute
from wsroute.descriptors import ACCEPT_MESSAGE, AcceptErrorThrottle, install_accept_throttle, raise_nofile_limit
from wsroute.logs import REDACTOR, configure_logging
from wsroute.testing import serve_app


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_accept_errors_log_one_line_per_interval_with_the_count(caplog) -> None:
    """1,000 accept errors within an interval give one line; the next line counts those suppressed."""
    clock = Clock()
    others: list[dict[str, object]] = []
    throttle = AcceptErrorThrottle(lambda loop, context: others.append(context), interval=10, clock=clock)
    loop = asyncio.new_event_loop()
    try:
        error = {"message": ACCEPT_MESSAGE, "exception": OSError(24, "Too many open files")}
        with caplog.at_level(logging.ERROR, logger="wsroute.server"):
            for _ in range(1000):
                throttle(loop, error)
            clock.now += 10
            throttle(loop, error)
            throttle(loop, {"message": "something else"})
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "wsroute.server"]
    assert len(lines) == 2
    assert lines[0].startswith("accept() failed: [Errno 24] Too many open files; new connections wait")
    assert "(999 more since the last line)" in lines[1]
    assert all(r.exc_info is None for r in caplog.records)
    assert others == [{"message": "something else"}]


async def test_serving_installs_the_throttle_once_keeping_the_previous_handler() -> None:
    """app.serve() wraps the loop's exception handler once; a user's handler still gets other errors."""
    loop = asyncio.get_running_loop()
    seen: list[object] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda loop, context: seen.append(context["message"]))
    try:
        app = wsroute.App(load_entrypoints=False)

        @app.route("/x")
        async def x(ws):
            pass

        async with serve_app(app):
            handler = loop.get_exception_handler()
            assert isinstance(handler, AcceptErrorThrottle)
            install_accept_throttle(loop)
            assert loop.get_exception_handler() is handler
            loop.call_exception_handler({"message": "other"})
        assert seen == ["other"]
    finally:
        loop.set_exception_handler(previous)


def test_raise_nofile_limit_sets_soft_to_hard(caplog) -> None:
    """The soft descriptor limit is raised to the hard one (capped), and both are logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with caplog.at_level(logging.INFO, logger="wsroute.server"):
        before, now, reported_hard = raise_nofile_limit()
    assert (before, reported_hard) == (soft, hard)
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now >= soft
    assert f"soft limit {now} (was {soft})" in caplog.text


def test_configure_logging_redacts_every_handler_line(capsys) -> None:
    """configure_logging puts the redactor on its handler: headers and query tokens never reach stderr."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("debug")
        logging.getLogger("websockets.server").debug("< GET /feed?token=%s HTTP/1.1", "s3cret")
        logging.getLogger("app").info("< Authorization: Bearer s3cret")
        for handler in root.handlers:
            handler.flush()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "token=[redacted]" in err and "Authorization: [redacted]" in err
    assert "s3cret" not in err


async def test_query_token_auth_param_and_app_redact_are_added_at_start() -> None:
    """Starting an app adds each query_token_auth parameter and App(redact=...) names to the redactor."""
    app = wsroute.App(load_entrypoints=False, redact=["X-Tenant-Key"])

    async def verify(token):
        return None

    @app.route("/q", middleware=[wsroute.query_token_auth(verify, param="sig")])
    async def q(ws):
        pass

    async with serve_app(app):
        pass
    assert REDACTOR.redact("GET /q?sig=abc&x=1") == "GET /q?sig=[redacted]&x=1"
    assert REDACTOR.redact("< X-Tenant-Key: abc") == "< X-Tenant-Key: [redacted]"
