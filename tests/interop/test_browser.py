"""A browser is a plain WebSocket client: headless Chromium runs a page against a wsroute app.

The app serves the page itself (``GET /page`` through a test plugin's
``wsroute_process_request``), so the page's WebSockets are same-origin. The
page's JavaScript uses nothing but the browser's ``WebSocket``; the test drives
Chromium through the DevTools protocol (``--remote-debugging-port=0``) with a
websockets client, awaits the page's outcome and reads the console, where
Chromium reports the HTTP status of a refused handshake (JavaScript only sees
close code 1006).

``--dump-dom`` is not enough: it returns before the page's sockets finish, and
``--virtual-time-budget`` fires the page's timers in virtual time while the
sockets run in real time.

When Chromium is not installed the test FAILS, saying what to install: CI
installs it (``.ci/run``, ``scripts/test``), so a skip would hide a broken setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from interoptest import BAD_FIRST_REASON, PagePlugin, make_app
from websockets.asyncio.client import ClientConnection, connect

import wsroute
from wsroute.testing import serve_app

CHROMIUM_MISSING = (
    "headless Chromium is needed for the browser interop test and was not found "
    "(looked for $CHROMIUM, chromium, chromium-browser): install it with "
    "`apt-get install chromium` (scripts/test does this when run as root)"
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-port=0",  # the port chosen is written to DevToolsActivePort
)
START_TIMEOUT = 30.0  # Chromium's first start on a cold machine
STEP_TIMEOUT = 10.0  # one DevTools command
SCENARIO_TIMEOUT = 30.0  # the whole page (each of its steps is cut at 5 s)


def chromium_binary() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    pytest.fail(CHROMIUM_MISSING, pytrace=False)


class DevTools:
    """A minimal DevTools protocol client: commands (optionally on a session) and collected events."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.event_arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            future = self.pending.pop(message.get("id", -1), None)
            if future is not None:
                if not future.done():
                    future.set_result(message)
            else:
                self.events.append(message)
                self.event_arrived.set()

    async def send(self, method: str, session: str | None = None, timeout: float = STEP_TIMEOUT, **params: Any) -> Any:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        command: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        await self.ws.send(json.dumps(command))
        async with asyncio.timeout(timeout):
            answer = await future
        if "error" in answer:
            raise AssertionError(f"DevTools {method} failed: {answer['error']}")
        return answer["result"]

    async def wait_event(self, method: str, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["method"] == method:
                        return event
                self.event_arrived.clear()
                await self.event_arrived.wait()

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
        await self.ws.close()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[DevTools]:
    """Start headless Chromium with a fresh profile; yield a DevTools client; stop it."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="wsroute-chromium-") as tmp:
        profile = Path(tmp, "profile")
        log_path = Path(tmp, "chromium.log")
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the wrapper script and its children
            )
        devtools = None
        try:
            port_file = profile / "DevToolsActivePort"
            async with asyncio.timeout(START_TIMEOUT):
                while not (port_file.exists() and len(port_file.read_text().split()) == 2):
                    if proc.poll() is not None:
                        raise AssertionError(f"chromium exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                    await asyncio.sleep(0.05)
            port, path = port_file.read_text().split()
            ws = await connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=STEP_TIMEOUT)
            devtools = DevTools(ws)
            yield devtools
        finally:
            if devtools is not None:
                with contextlib.suppress(Exception):
                    await devtools.send("Browser.close", timeout=5)
                await devtools.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group we started, whatever is left of it
            await asyncio.to_thread(proc.wait, 10)


async def run_page(devtools: DevTools, url: str) -> tuple[dict[str, Any], list[str]]:
    """Load ``url`` in a new tab; return the page's outcome and the console's log entries."""
    target = await devtools.send("Target.createTarget", url="about:blank")
    attached = await devtools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
    session = attached["sessionId"]
    await devtools.send("Log.enable", session)
    await devtools.send("Page.enable", session)
    navigated = await devtools.send("Page.navigate", session, url=url)
    assert "errorText" not in navigated, navigated
    await devtools.wait_event("Page.loadEventFired")
    evaluated = await devtools.send(
        "Runtime.evaluate",
        session,
        timeout=SCENARIO_TIMEOUT,
        expression="window.outcome",
        awaitPromise=True,
        returnByValue=True,
    )
    assert "exceptionDetails" not in evaluated, evaluated
    logs = [e["params"]["entry"]["text"] for e in devtools.events if e["method"] == "Log.entryAdded"]
    return evaluated["result"]["value"], logs


async def test_chromium_routes_auth_first_message_and_binary() -> None:
    """Chromium's WebSocket reaches int-converted path routes, is refused on a bad value (404) or a missing
    token (401), routes by first message with @on dispatch, sees a bad first message close with 1008 and its
    reason, and round-trips binary messages byte for byte."""
    pages = PagePlugin({"/page": ("page.html", "text/html; charset=utf-8")})
    async with serve_app(make_app(pages)) as server, chromium() as devtools:
        port = server.port
        outcome, logs = await run_page(devtools, f"http://127.0.0.1:{port}/page")

    assert outcome["ok"], outcome.get("error")
    assert outcome["items"] == {
        "opened": True,
        "text": "7:hello",
        "small": {"type": "ArrayBuffer", "length": 256, "equal": True},
        "large": {"type": "ArrayBuffer", "length": 100000, "equal": True},
        "closed": {"code": 1000, "reason": "bye", "wasClean": True},
    }
    # What JavaScript sees of a refused handshake: an error, then close 1006, never open.
    refused = {"opened": False, "sawError": True, "code": 1006, "reason": "", "wasClean": False}
    assert outcome["badItem"] == refused
    assert outcome["noToken"] == refused
    assert outcome["play"] == {
        "opened": True,
        "joined": {"type": "joined", "user": "ann"},
        "moved": {"type": "moved", "to": "e4"},
        "closed": {"code": 1005, "reason": "", "wasClean": True},  # close() without a code
    }
    assert outcome["badFirst"] == {"opened": True, "code": 1008, "reason": BAD_FIRST_REASON, "wasClean": True}

    # The status behind each 1006, as Chromium's console reports it, and as the server sent it.
    for path, status, reported in (
        ("/items/x?token=t1", 404, "Error during WebSocket handshake: Unexpected response code: 404"),
        ("/items/1", 401, "HTTP Authentication failed; no valid credentials available"),
    ):
        assert f"WebSocket connection to 'ws://127.0.0.1:{port}{path}' failed: {reported}" in logs, logs
        assert (path, status) in pages.statuses


OPEN_WITH_PROTOCOLS = """new Promise(resolve => {
  const ws = new WebSocket(%s, %s), seen = {};
  ws.onopen = () => { seen.protocol = ws.protocol; };
  ws.onmessage = event => { seen.message = event.data; ws.close(); };
  ws.onclose = event => { seen.code = event.code; resolve(seen); };
  setTimeout(() => resolve({timeout: true}), 5000);
})"""


async def test_chromium_negotiates_subprotocols_per_route() -> None:
    """Chromium gets the route's subprotocol in the server's order, and fails a route without a list
    (or with no shared one) when it offered some, as the guide documents."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/mqtt", subprotocols=["mqtt", "mqttv3.1"])
    async def mqtt(ws: wsroute.Connection) -> None:
        await ws.send(f"{ws.subprotocol}")

    @app.route("/plain")
    async def plain(ws: wsroute.Connection) -> None:
        await ws.send(f"{ws.subprotocol}")

    cases = {
        "shared": ("/mqtt", ["mqttv3.1", "mqtt"]),
        "none offered, no list": ("/plain", []),
        "offered, no list": ("/plain", ["chat"]),
        "nothing shared": ("/mqtt", ["chat"]),
    }
    async with serve_app(app) as server, chromium() as devtools:
        target = await devtools.send("Target.createTarget", url="about:blank")
        attached = await devtools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        results = {}
        for name, (path, offered) in cases.items():
            expression = OPEN_WITH_PROTOCOLS % (json.dumps(server.url(path)), json.dumps(offered))
            evaluated = await devtools.send(
                "Runtime.evaluate", attached["sessionId"], expression=expression, awaitPromise=True, returnByValue=True
            )
            results[name] = evaluated["result"]["value"]
    assert results == {
        "shared": {"protocol": "mqtt", "message": "mqtt", "code": 1000},
        "none offered, no list": {"protocol": "", "message": "None", "code": 1000},
        "offered, no list": {"code": 1006},
        "nothing shared": {"code": 1006},
    }


OPEN_AND_READ = """new Promise(resolve => {
  const ws = new WebSocket(%s), seen = {};
  ws.onmessage = event => { seen.message = JSON.parse(event.data); };
  ws.onclose = () => resolve(seen);
  setTimeout(() => resolve({timeout: true}), 5000);
})"""


async def test_chromium_paths_reach_routes_decoded_composed_and_resolved() -> None:
    """What Chromium sends for a decomposed é, dot segments (raw or %2e) and a space reaches the documented
    route: composed (NFC) for /café, resolved before sending so the server's 400 for dot segments never
    meets a browser."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/caf\u00e9/{dish}")
    async def cafe(ws: wsroute.Connection, dish: str) -> None:
        await ws.send_json({"dish": dish, "path": ws.path})

    @app.route("/files/{rest:path}")
    async def files(ws: wsroute.Connection, rest: str) -> None:
        await ws.send_json({"rest": rest, "path": ws.path})

    cases = {
        "decomposed": "/cafe\u0301/the\u0301",
        "composed": "/caf\u00e9/th\u00e9",
        "dots": "/files/a/../b/./c",
        "encoded dots": "/files/a/%2e%2E/b",
        "space": "/files/a b",
    }
    async with serve_app(app) as server, chromium() as devtools:
        target = await devtools.send("Target.createTarget", url="about:blank")
        attached = await devtools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        results = {}
        for name, path in cases.items():
            expression = OPEN_AND_READ % json.dumps(server.url(path))
            evaluated = await devtools.send(
                "Runtime.evaluate", attached["sessionId"], expression=expression, awaitPromise=True, returnByValue=True
            )
            results[name] = evaluated["result"]["value"]
    assert results == {
        "decomposed": {"message": {"dish": "th\u00e9", "path": "/cafe%CC%81/the%CC%81"}},
        "composed": {"message": {"dish": "th\u00e9", "path": "/caf%C3%A9/th%C3%A9"}},
        "dots": {"message": {"rest": "b/c", "path": "/files/b/c"}},
        "encoded dots": {"message": {"rest": "b", "path": "/files/b"}},
        "space": {"message": {"rest": "a b", "path": "/files/a%20b"}},
    }
