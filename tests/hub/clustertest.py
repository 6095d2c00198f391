"""A real Redis Cluster for tests and benchmarks: six redis-server processes.

:class:`RedisCluster` starts six ``redis-server`` processes on free
127.0.0.1 ports with ``--cluster-enabled yes`` and no persistence (each
with its cluster-config-file in a temporary directory), joins them with
``redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`` into
three masters with one replica each, and waits for ``cluster_state:ok`` on
every node. A short ``cluster-node-timeout`` (1 s by default) keeps
failover tests fast: a replica is promoted about one to two seconds after
its master dies.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["CLUSTER_TOOLS_MISSING", "ClusterNodeProcess", "RedisCluster", "free_ports"]

CLUSTER_TOOLS_MISSING = (
    "redis-server and redis-cli (7.0 or newer) must be on PATH for the Redis Cluster tests: "
    "install them with `apt-get install -y redis-server redis-tools` (Debian/Ubuntu) "
    "or `brew install redis`."
)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that were free a moment ago on ``host``.

    The cluster bus of a node listens on its port + 10000, so ports above
    55535 are skipped.
    """
    ports: list[int] = []
    socks: list[socket.socket] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            sock.bind((host, 0))
            socks.append(sock)
            port = int(sock.getsockname()[1])
            if port + 10000 <= 65535 and not _port_busy(host, port + 10000):
                ports.append(port)
    finally:
        for sock in socks:
            sock.close()
    return ports


def _port_busy(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def raw_command(host: str, port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one RESP command and return the raw reply (first read)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((host, port), timeout) as sock:
        sock.sendall(b"".join(parts))
        chunks = [sock.recv(65536)]
        return b"".join(chunks)


class ClusterNodeProcess:
    """One ``redis-server --cluster-enabled yes`` child process."""

    def __init__(self, binary: str, host: str, port: int, directory: Path, node_timeout_ms: int,
                 netns: str | None = None) -> None:
        self.binary = binary
        self.host = host
        self.port = port
        self.directory = directory
        self.node_timeout_ms = node_timeout_ms
        self.netns = netns
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start the process (no wait; :meth:`wait_ready` waits)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary, "--port", str(self.port), "--bind", self.host, "--save", "",
            "--appendonly", "no", "--dir", str(self.directory), "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(self.node_timeout_ms),
            "--protected-mode", "no", "--repl-diskless-sync-delay", "0",
            "--cluster-replica-validity-factor", "0",
        ]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def command(self, *args: str) -> str:
        """Run one command on the node; inside ``netns`` through ``redis-cli``."""
        if self.netns is None:
            return raw_command(self.host, self.port, *args).decode(errors="replace")
        out = subprocess.run(["ip", "netns", "exec", self.netns, "redis-cli", "-h", self.host,
                              "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return out.stdout

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the node answers PING."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if "PONG" in self.command("PING"):
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on {self.address}")

    def kill(self) -> None:
        """SIGKILL the node, like a crash, and reap it."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def info(self, section: str) -> str:
        """The text of ``INFO`` / ``CLUSTER INFO`` (``section`` = "cluster-info")."""
        args = ("CLUSTER", "INFO") if section == "cluster-info" else ("INFO", section)
        return self.command(*args)


class RedisCluster:
    """Three masters and three replicas on free ports of ``host``.

    Args:
        directory: where each node keeps its cluster-config-file.
        host: the address every node binds to and announces.
        node_timeout_ms: ``cluster-node-timeout``; failover starts after it.
        netns: run every node inside this network namespace.
    """

    def __init__(self, directory: str | Path, host: str = "127.0.0.1", node_timeout_ms: int = 1000,
                 netns: str | None = None) -> None:
        binary = shutil.which("redis-server")
        self.cli = shutil.which("redis-cli")
        if binary is None or self.cli is None:
            raise RuntimeError(CLUSTER_TOOLS_MISSING)
        self.host = host
        self.netns = netns
        ports = free_ports(6, "127.0.0.1" if netns is not None else host)
        self.nodes = [
            ClusterNodeProcess(binary, host, port, Path(directory) / str(port), node_timeout_ms, netns)
            for port in ports
        ]

    def url(self, seeds: int = 2, scheme: str = "redis+cluster") -> str:
        """The broker URL listing the first ``seeds`` nodes."""
        return f"{scheme}://" + ",".join(n.address for n in self.nodes[:seeds]) + "/"

    def start(self, timeout: float = 30.0) -> None:
        """Start six nodes, create the cluster, wait for ``cluster_state:ok`` everywhere."""
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        argv = [self.cli, "--cluster", "create", *[n.address for n in self.nodes],
                "--cluster-replicas", "1", "--cluster-yes"]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout}{out.stderr}")
        self.wait_ok(timeout)
        self.wait_replicas(timeout)

    def wait_replicas(self, timeout: float = 30.0) -> None:
        """Wait until every live replica's link to its master is up (so it can fail over)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                infos = [n.info("replication") for n in self.nodes if n.proc is not None]
                if all("role:master" in i or "master_link_status:up" in i for i in infos):
                    return
            time.sleep(0.05)
        raise RuntimeError("the Redis Cluster replicas did not finish their first sync")

    def wait_ok(self, timeout: float = 30.0, nodes: list[ClusterNodeProcess] | None = None) -> None:
        """Wait until the live nodes report ``cluster_state:ok`` and agree on 3 masters."""
        deadline = time.monotonic() + timeout
        live = nodes or [n for n in self.nodes if n.proc is not None]
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if all("cluster_state:ok" in n.info("cluster-info") for n in live):
                    return
            time.sleep(0.05)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def masters(self) -> list[ClusterNodeProcess]:
        """The live nodes whose ``INFO replication`` says ``role:master``."""
        return [n for n in self.nodes if n.proc is not None and "role:master" in n.info("replication")]

    def flushall(self) -> None:
        """Empty every master (``FLUSHALL``)."""
        for node in self.masters():
            node.command("FLUSHALL")

    def stop(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.kill()
