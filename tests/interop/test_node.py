"""Node's ``ws`` package is a plain WebSocket client: ``node/client.mjs`` against a wsroute app.

``ws`` is pinned by ``node/package-lock.json`` and installed with
``npm ci --no-audit --no-fund`` in ``tests/interop/node`` (``scripts/test`` does
it). When ``node`` or the installed ``ws`` is missing the test FAILS, saying
what to install: CI installs both, so a skip would hide a broken setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from interoptest import BAD_FIRST_REASON, NODE_DIR, make_app, node_binary

from wsroute.testing import serve_app

CLIENT_TIMEOUT = 40.0  # client.mjs gives up by itself after 30 s


async def run_client(node: str, base: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        node,
        "client.mjs",
        base,
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert out.strip(), f"client.mjs printed nothing (exit {proc.returncode}):\n{err.decode()}"
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    assert result["ok"], f"{result['error']}\n{err.decode()}"
    assert proc.returncode == 0, err.decode()
    return result


async def test_node_ws_routes_auth_first_message_and_binary() -> None:
    """Node's ws reaches int-converted path routes, gets unexpected-response 404 for a bad value and 401 without a
    token, routes by first message with @on dispatch, sees a bad first message close with 1008 and its reason, and
    round-trips binary messages byte for byte."""
    node = node_binary()
    async with serve_app(make_app()) as server:
        result = await run_client(node, f"ws://127.0.0.1:{server.port}")

    assert str(result["ws"]).startswith("8."), result["ws"]
    assert result["items"] == {
        "text": "7:hello",
        "textIsBinary": False,
        "small": {"isBinary": True, "length": 256, "equal": True},
        "large": {"isBinary": True, "length": 100000, "equal": True},
        "closed": {"code": 1000, "reason": "bye"},
    }
    assert result["badItem"] == {"status": 404, "body": "Not Found\n"}
    assert result["noToken"] == {"status": 401, "body": "Missing 'token' query parameter.\n"}
    assert result["play"] == {
        "joined": {"type": "joined", "user": "ann"},
        "moved": {"type": "moved", "to": "e4"},
        "closed": {"code": 1005, "reason": ""},  # close() without a code
    }
    assert result["badFirst"] == {"code": 1008, "reason": BAD_FIRST_REASON}
