"""Redis Cluster topology: the broker URL, and which master owns which slot.

The cluster broker does not use redis-py's ``RedisCluster`` client: it asks
``CLUSTER SHARDS`` itself and holds plain connections to each master (see
:mod:`.cluster` for why). This module is the pure part of that: parsing
``redis+cluster://`` URLs and ``CLUSTER SHARDS`` replies, and one function
that asks the nodes it knows, in turn, for the current map.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .redisconn import FAULTS, Redis, client_options

__all__ = ["ClusterURL", "Shard", "Topology", "parse_cluster_url", "parse_shards", "fetch_topology", "node_client",
           "build_topology"]

SLOTS = 16384
SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


@attrs.frozen
class ClusterURL:
    """A parsed ``redis+cluster://`` / ``rediss+cluster://`` URL.

    Attributes:
        seeds: ``(host, port)`` of the nodes to ask first; any one is enough.
        tls: ``rediss+cluster://``: every connection uses TLS.
        username: ACL user name, or None.
        password: password, or None.
        partitions: the ``?partitions=N`` query value, or None.
    """

    seeds: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    partitions: int | None = None

    def redacted(self) -> str:
        """The URL for logs and messages, without the password."""
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        hosts = ",".join(_join(h, p) for h, p in self.seeds)
        return f"{scheme}://{auth}{hosts}/"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by every connection to a node."""
        options: dict[str, Any] = {"username": self.username, "password": self.password}
        if self.tls:
            options["ssl"] = True
        return options


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_cluster_url(url: str) -> ClusterURL:
    """Parse ``redis+cluster://[user:password@]host:port[,host:port…]/[?partitions=N]``.

    Raises:
        ValueError: wrong scheme, no host, a host without a valid port, a
            database other than 0 (Redis Cluster has only database 0), or an
            unknown query parameter; the message shows the expected form.
    """
    form = "expected redis+cluster://host:port[,host:port…]/ (or rediss+cluster:// for TLS)"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError(f"broker {url!r}: {form}")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts, userinfo = netloc, ""
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(secret) if colon else None
    if path.strip("/") not in ("", "0"):
        raise ValueError(f"broker {url!r}: Redis Cluster has only database 0; drop {'/' + path!r} ({form})")
    seeds = tuple(_parse_host(url, part, form) for part in hosts.split(",") if part.strip())
    if not seeds:
        raise ValueError(f"broker {url!r}: no host given; {form}")
    partitions = None
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key != "partitions":
            raise ValueError(f"broker {url!r}: unknown query parameter {key!r} (known: partitions)")
        if not value.isdigit() or not 1 <= int(value) <= SLOTS:
            raise ValueError(f"broker {url!r}: partitions must be an integer from 1 to {SLOTS} (got {value!r})")
        partitions = int(value)
    return ClusterURL(seeds, SCHEMES[scheme.lower()], username, password, partitions)


def _parse_host(url: str, part: str, form: str) -> tuple[str, int]:
    part = part.strip()
    if part.startswith("["):
        host, _, port = part[1:].partition("]:")
    else:
        host, _, port = part.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"broker {url!r}: {part!r} is not host:port; {form}")
    return host, int(port)


@attrs.frozen
class Shard:
    """One master and its replicas, as ``CLUSTER SHARDS`` reports them.

    Attributes:
        master: ``(host, port)`` of the master.
        nodes: ``(host, port)`` of every node of the shard, master first.
        ranges: inclusive ``(first, last)`` slot ranges it owns.
    """

    master: tuple[str, int]
    nodes: tuple[tuple[str, int], ...]
    ranges: tuple[tuple[int, int], ...]


@attrs.frozen
class Topology:
    """Which master owns each of the 16,384 slots.

    Attributes:
        owner: ``owner[slot]`` is the ``(host, port)`` of that slot's master.
        nodes: every node address seen (masters and replicas), to ask next time.
    """

    owner: tuple[tuple[str, int], ...]
    nodes: tuple[tuple[str, int], ...]

    @property
    def masters(self) -> set[tuple[str, int]]:
        """The masters that own at least one slot."""
        return set(self.owner)


def node_client(address: tuple[str, int], options: Mapping[str, Any], timeout: float) -> Redis:
    """A client of one node, set up as the single-Redis broker's (:func:`~.redisconn.client_options`).

    redis-py's retries are off: the broker decides when to retry.

    Args:
        options: :meth:`ClusterURL.client_options`.
        timeout: seconds for connecting and for each reply.
    """
    host, port = address
    settings = client_options(timeout)  # no retries, no maintenance notifications (see there)
    settings.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    return Redis(host=host, port=port, **settings, **options)


def _field(node: Any, name: str) -> Any:
    """A field of one ``CLUSTER SHARDS`` map, parsed (dict) or raw (flat list)."""
    if isinstance(node, Mapping):
        value = node.get(name.encode(), node.get(name))
    else:
        items = list(node)
        pairs = dict(zip(items[::2], items[1::2], strict=False))
        value = pairs.get(name.encode(), pairs.get(name))
    return value.decode() if isinstance(value, bytes) else value


def parse_shards(reply: Iterable[Any], tls: bool = False) -> list[Shard]:
    """Turn a ``CLUSTER SHARDS`` reply into :class:`Shard` values.

    A shard whose master is not ``health: online`` (failed, or loading) is
    left out, so its slots count as uncovered until a replica takes over.
    The node address is its ``endpoint`` (``cluster-preferred-endpoint-type``)
    or, when that is ``?`` or empty, its ``ip``; the port is ``tls-port``
    with TLS and ``port`` otherwise.
    """
    shards: list[Shard] = []
    for shard in reply:
        slots = [int(s) for s in _field(shard, "slots") or []]
        master: tuple[str, int] | None = None
        nodes: list[tuple[str, int]] = []
        for node in _field(shard, "nodes") or []:
            host = _field(node, "endpoint")
            if not host or host == "?":
                host = _field(node, "ip")
            port = _field(node, "tls-port" if tls else "port")
            if not host or port is None:
                continue
            address = (str(host), int(port))
            nodes.append(address)
            if _field(node, "role") == "master" and _field(node, "health") == "online":
                master = address
        if master is None or not slots:
            continue
        nodes.remove(master)
        ranges = tuple((slots[i], slots[i + 1]) for i in range(0, len(slots) - 1, 2))
        shards.append(Shard(master, (master, *nodes), ranges))
    return shards


def build_topology(shards: Sequence[Shard]) -> Topology | None:
    """The slot map of ``shards``, or None when some slot has no live master."""
    owner: list[tuple[str, int] | None] = [None] * SLOTS
    nodes: list[tuple[str, int]] = []
    for shard in shards:
        for first, last in shard.ranges:
            owner[first:last + 1] = [shard.master] * (last - first + 1)
        nodes.extend(n for n in shard.nodes if n not in nodes)
    if any(o is None for o in owner):
        return None
    return Topology(tuple(o for o in owner if o is not None), tuple(nodes))


async def fetch_topology(
    addresses: Sequence[tuple[str, int]], options: Mapping[str, Any], timeout: float,
) -> tuple[Topology | None, BaseException | None]:
    """Ask the nodes, in order, for ``CLUSTER SHARDS`` until one gives full coverage.

    Each node gets one short-lived connection and ``timeout`` seconds, so a
    dead node costs at most that. Returns the first complete map, or None
    and the last error (or None when nodes answered but some slot had no
    live master -- during a failover).
    """
    error: BaseException | None = None
    for host, port in addresses:
        client = node_client((host, port), options, timeout)
        try:
            reply = await client.execute_command("CLUSTER", "SHARDS")  # type: ignore[no-untyped-call]
        except FAULTS as exc:
            error = exc
            continue
        finally:
            await asyncio.shield(client.aclose())
        topology = build_topology(parse_shards(reply, bool(options.get("ssl"))))
        if topology is not None:
            return topology, None
    return None, error
