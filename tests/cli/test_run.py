"""``wsroute run`` as a real process: serving, graceful shutdown, options."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import pytest
from clitest import Server, wsroute_env
from websockets.asyncio.client import connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

APP = "examples.cli_app:app"

pytestmark = pytest.mark.timeout(60)


async def open_client(server: Server, path: str) -> object:
    return await connect(server.url + path, open_timeout=5)


async def test_serves_the_example_app(start_server) -> None:
    """A started server answers a WebSocket client on the requested port."""
    server = start_server(APP)
    async with connect(server.url + "/echo", open_timeout=5) as ws:
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), 5) == "hi"


async def test_sigterm_closes_every_connection_with_1001_and_exits_0(start_server) -> None:
    """SIGTERM closes open connections with 1001, cancels a handler that never returns, and exits 0 in time."""
    server = start_server(APP, "--drain-timeout", "2")
    echoes = [await connect(server.url + "/echo", open_timeout=5) for _ in range(3)]
    stuck = await connect(server.url + "/stuck", open_timeout=5)
    assert await asyncio.wait_for(stuck.recv(), 5) == "stuck"
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    for ws in [*echoes, stuck]:
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1001
    assert await server.wait_exit(2 + 3) == 0
    elapsed = time.monotonic() - started
    assert 1.9 < elapsed < 2 + 1.5, elapsed
    log = server.log
    assert "stuck handler cancelled" in log
    assert "cancelling 1 handler(s) still running: /stuck" in log


async def test_sigterm_without_stragglers_exits_at_once(start_server) -> None:
    """When every handler ends on close, shutdown does not wait for the drain timeout."""
    server = start_server(APP, "--drain-timeout", "10")
    clients = [await connect(server.url + "/echo", open_timeout=5) for _ in range(5)]
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(5) == 0
    assert time.monotonic() - started < 2
    for ws in clients:
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1001


async def test_sigint_drains_like_sigterm(start_server) -> None:
    """SIGINT (Ctrl-C) drains too: clients get 1001 and the exit status is 0."""
    server = start_server(APP, "--drain-timeout", "2")
    ws = await connect(server.url + "/echo", open_timeout=5)
    server.signal(signal.SIGINT)
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1001
    assert await server.wait_exit(5) == 0


async def test_no_new_connections_while_draining(start_server) -> None:
    """Once draining has started, new connections are refused."""
    server = start_server(APP, "--drain-timeout", "3")
    stuck = await connect(server.url + "/stuck", open_timeout=5)
    server.signal(signal.SIGTERM)
    server.wait_log("SIGTERM: stopping")
    with pytest.raises((OSError, InvalidStatus)):
        async with connect(server.url + "/echo", open_timeout=2):
            pass
    await stuck.close()
    assert await server.wait_exit(6) == 0


async def test_second_signal_stops_at_once(start_server) -> None:
    """A second SIGTERM during a long drain exits immediately, with status 1."""
    server = start_server(APP, "--drain-timeout", "30")
    stuck = await connect(server.url + "/stuck", open_timeout=5)
    server.signal(signal.SIGTERM)
    server.wait_log("SIGTERM: stopping")
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(5) == 1
    assert time.monotonic() - started < 2
    assert "stopping now without draining" in server.log
    await stuck.close()


async def test_keep_connections_lets_clients_finish(start_server) -> None:
    """With --keep-connections an open client keeps working after SIGTERM and the server exits when it leaves."""
    server = start_server(APP, "--keep-connections", "--drain-timeout", "10")
    ws = await connect(server.url + "/echo", open_timeout=5)
    server.signal(signal.SIGTERM)
    server.wait_log("SIGTERM: stopping")
    await ws.send("still here")
    assert await asyncio.wait_for(ws.recv(), 5) == "still here"
    with pytest.raises((OSError, InvalidStatus)):
        async with connect(server.url + "/echo", open_timeout=2):
            pass
    started = time.monotonic()
    await ws.close()
    assert await server.wait_exit(5) == 0
    assert time.monotonic() - started < 2


async def test_keep_connections_closes_the_rest_with_1012(start_server) -> None:
    """With --keep-connections, clients still connected at the drain timeout get 1012 and the exit status is 0."""
    server = start_server(APP, "--keep-connections", "--drain-timeout", "1")
    ws = await connect(server.url + "/echo", open_timeout=5)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1012
    assert time.monotonic() - started > 0.9
    assert await server.wait_exit(5) == 0


async def test_options_from_environment_variables(start_server, tmp_path: Path) -> None:
    """WSROUTE_PORT, WSROUTE_HOST and WSROUTE_LOOP configure ``run`` like the options."""
    from clitest import free_port

    port = free_port()
    env = wsroute_env(WSROUTE_PORT=str(port), WSROUTE_HOST="127.0.0.1", WSROUTE_LOOP="asyncio")
    server = start_server(APP, port=0, env=env, ready=False)
    server.port = port
    server.wait_ready()
    async with connect(server.url + "/echo", open_timeout=5) as ws:
        await ws.send("env")
        assert await ws.recv() == "env"
    assert f"serving on 127.0.0.1:{port} (loop: asyncio)" in server.log


async def test_loop_auto_picks_uvloop(start_server) -> None:
    """--loop auto (the default) runs on uvloop when it is installed."""
    pytest.importorskip("uvloop")
    server = start_server(APP)
    assert "(loop: uvloop)" in server.log


async def test_factory_option(start_server) -> None:
    """--factory calls MODULE:ATTR to build the app."""
    server = start_server("examples.cli_app:create_app", "--factory")
    async with connect(server.url + "/rooms/blue", open_timeout=5) as ws:
        assert await ws.recv() == "hello blue 10"


async def test_unix_domain_socket(start_server, tmp_path: Path) -> None:
    """--uds serves on a Unix socket instead of a TCP port."""
    path = tmp_path / "ws.sock"
    server = start_server(APP, "--uds", str(path), ready=False)
    server.wait_log("serving on unix:")
    async with unix_connect(str(path), "ws://localhost/echo", open_timeout=5) as ws:
        await ws.send("unix")
        assert await ws.recv() == "unix"


async def test_proxy_headers_are_ignored_by_default(start_server) -> None:
    """Without --proxy-headers, X-Forwarded-For never changes ws.client_ip."""
    server = start_server(APP)
    async with connect(server.url + "/ip", open_timeout=5,
                       additional_headers={"X-Forwarded-For": "203.0.113.7"}) as ws:
        assert await ws.recv() == "127.0.0.1"


async def test_proxy_headers_from_trusted_proxy(start_server) -> None:
    """With --proxy-headers, X-Forwarded-For from an allowed proxy is the client IP."""
    server = start_server(APP, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    async with connect(server.url + "/ip", open_timeout=5,
                       additional_headers={"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}) as ws:
        assert await ws.recv() == "203.0.113.7"


async def test_proxy_headers_from_untrusted_proxy(start_server) -> None:
    """With --proxy-headers, X-Forwarded-For from a peer outside --forwarded-allow-ips is ignored."""
    server = start_server(APP, "--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8")
    async with connect(server.url + "/ip", open_timeout=5,
                       additional_headers={"X-Forwarded-For": "203.0.113.7"}) as ws:
        assert await ws.recv() == "127.0.0.1"


def ipv6_loopback_port() -> int | None:
    """A free port on ::1, or None when this machine cannot bind IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
            return int(sock.getsockname()[1])
    except OSError:
        return None


async def wait_for_ipv6(server: Server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.log}")
        try:
            _, writer = await asyncio.open_connection("::1", server.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listened on [::1]:{server.port} within {timeout} s:\n{server.log}")


async def test_proxy_headers_behind_a_local_ipv6_proxy(start_server) -> None:
    """``--host ::1 --proxy-headers`` trusts the ::1 proxy by default and drops the port from X-Forwarded-For."""
    port = ipv6_loopback_port()
    if port is None:
        pytest.skip("this machine cannot bind the IPv6 loopback address ::1")
    server = start_server(APP, "--host", "::1", "--port", str(port), "--proxy-headers", port=port, ready=False)
    await wait_for_ipv6(server)
    for forwarded in ("203.0.113.7:51234", "[2001:db8::1]:443"):
        async with connect(f"ws://[::1]:{port}/ip", open_timeout=5,
                           additional_headers={"X-Forwarded-For": forwarded}) as ws:
            assert await ws.recv() == forwarded.rpartition(":")[0].strip("[]")
    async with connect(f"ws://[::1]:{port}/ip", open_timeout=5,
                       additional_headers={"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}) as ws:
        assert await ws.recv() == "2001:db8::7"


async def test_proxy_headers_trust_the_ipv4_loopback_by_default(start_server) -> None:
    """Without --forwarded-allow-ips, a proxy on 127.0.0.1 is believed, with the port dropped."""
    server = start_server(APP, "--proxy-headers")
    async with connect(server.url + "/ip", open_timeout=5,
                       additional_headers={"X-Forwarded-For": "203.0.113.7:51234"}) as ws:
        assert await ws.recv() == "203.0.113.7"


async def test_broker_option_replaces_the_hub_broker(start_server) -> None:
    """--broker memory:// is used by the app's hub."""
    server = start_server(APP, "--broker", "memory://")
    async with connect(server.url + "/hub", open_timeout=5) as ws:
        assert await ws.recv() == "MemoryBroker"


async def test_debug_names_the_route_blocking_the_loop(start_server) -> None:
    """--debug warns while a handler blocks the event loop, naming its route and line."""
    server = start_server(APP, "--debug", "--lag-threshold", "0.1")
    async with connect(server.url + "/block", open_timeout=5) as ws:
        await ws.send("go")
        assert await asyncio.wait_for(ws.recv(), 5) == "done"
    server.wait_log("event loop was blocked for")
    log = server.log
    assert "event loop blocked for more than 0.100 s by route /block at " in log
    assert "cli_app.py" in log and "in block()" in log


async def test_connection_closed_by_client_is_not_an_error(start_server) -> None:
    """A client leaving normally logs no error."""
    server = start_server(APP)
    async with connect(server.url + "/echo", open_timeout=5) as ws:
        await ws.send("x")
        await ws.recv()
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(5) == 0
    assert "ERROR" not in server.log
