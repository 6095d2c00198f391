"""Sending a command to the master that owns its key: the slot map and one client per master.

Shared by :class:`~.cluster.ClusterBroker` and :class:`~.publisher.Publisher`
on a Redis Cluster. :class:`ClusterNodes` holds the current
:class:`~.topology.Topology` (read with ``CLUSTER SHARDS``, see
:mod:`.topology`), one command client per master, made when first needed,
and the nodes to ask for the next map. :meth:`ClusterNodes.on_owner` runs a
command on the owner of a key or channel and follows one ``MOVED`` reply:
Redis answers ``MOVED`` *instead of* running the command, so sending it once
more to the new owner can never run it twice -- a publication stays
at-most-once. The map is then patched for that slot at once and marked
stale, so that its owner (the broker's reconciler, or the publisher's next
call) reads a whole new map.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.crc import key_slot
from redis.exceptions import MovedError

from ..errors import BrokerUnavailable
from .redisconn import FAULTS, Redis
from .topology import ClusterURL, Topology, fetch_topology, node_client

__all__ = ["Address", "ClusterNodes", "cluster_unavailable"]

Address = tuple[str, int]
T = TypeVar("T")


def cluster_unavailable(config: ClusterURL, exc: BaseException | None, doing: str) -> BrokerUnavailable:
    """A :class:`BrokerUnavailable` that names the cluster URL (no password), what failed and the fix."""
    return BrokerUnavailable(
        f"Redis Cluster at {config.redacted()} is unavailable "
        f"({doing}: {exc or 'some hash slot has no live master'}); "
        "start the cluster (cluster_state:ok) or pass the right --broker URL"
    )


class ClusterNodes:
    """The slot map of a Redis Cluster and a command client per master.

    Args:
        config: the parsed ``redis+cluster://`` URL (seeds, TLS, credentials).
        node_timeout: seconds for connecting to a node and for each reply.
        on_stale: called (synchronously) whenever the map is marked stale,
            so that its owner can schedule a refresh.
    """

    def __init__(self, config: ClusterURL, node_timeout: float,
                 on_stale: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.node_timeout = node_timeout
        self.topology: Topology | None = None
        #: True when the map may be wrong (a failure, a MOVED): read a new one.
        self.stale = True
        #: Nodes to ask for the map: those of the last map, then the URL's seeds.
        self.known: list[Address] = list(config.seeds)
        self._options = config.client_options()
        self._on_stale = on_stale
        self._clients: dict[Address, Redis] = {}

    async def connect(self, *, timeout: float, wait: bool) -> None:
        """Read the first map from the URL's seeds; any one reachable node is enough.

        Args:
            timeout: seconds to keep trying when ``wait`` is true.
            wait: retry (every 0.2 s) until ``timeout`` instead of failing at once.

        Raises:
            BrokerUnavailable: no seed answered with a whole map (names the URL).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (error := await self.fetch(self.config.seeds)) is not None:
            if not wait or loop.time() >= deadline:
                raise cluster_unavailable(self.config, error, "reading the cluster map")
            await asyncio.sleep(0.2)

    async def fetch(self, order: Sequence[Address] | None = None) -> BaseException | None:
        """Ask nodes (``order``, else :attr:`known`) for the map and use the first whole one.

        Returns:
            None on success; else why not (the last error, or a
            ``ConnectionError`` when some slot has no live master, as during
            a failover). The map is left as it was.
        """
        topology, error = await fetch_topology(self.known if order is None else order, self._options,
                                               self.node_timeout)
        if topology is None:
            return error or ConnectionError("some hash slot has no live master yet")
        self.topology = topology
        self.stale = False
        known = list(topology.nodes)
        known += [a for a in self.config.seeds if a not in known]  # seeds last, only as a fallback
        self.known = known
        return None

    @property
    def masters(self) -> set[Address]:
        """The masters of the current map (empty before the first)."""
        return self.topology.masters if self.topology is not None else set()

    def owner(self, name: str) -> Address:
        """The master that owns key or channel ``name`` (a map must have been fetched)."""
        if self.topology is None:
            raise RuntimeError("ClusterNodes.owner() before the first fetch()")
        return self.topology.owner[key_slot(name.encode())]

    def client(self, address: Address) -> Redis:
        """The command client of ``address``, made on first use."""
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = node_client(address, self._options, self.node_timeout)
        return client

    def client_for(self, name: str) -> Redis:
        """The command client of the master that owns key or channel ``name``."""
        return self.client(self.owner(name))

    def clients(self) -> list[tuple[Address, Redis]]:
        """Every client made so far, with its address."""
        return list(self._clients.items())

    def mark_stale(self) -> None:
        """The map may be wrong: say so, and tell the owner."""
        self.stale = True
        self._on_stale()

    async def on_owner(self, name: str, run: Callable[[Redis], Awaitable[T]]) -> T:
        """``run(client)`` on the owner of ``name``; after a ``MOVED`` reply (nothing ran), once more on the new owner.

        Raises:
            whatever ``run`` raises (one of :data:`~.redisconn.FAULTS` when a
            node fails); a second ``MOVED`` is raised too.
        """
        try:
            return await run(self.client_for(name))
        except MovedError as moved:
            self.moved(moved)
            return await run(self.client_for(name))

    def moved(self, moved: MovedError) -> None:
        """Patch the slot map from a ``MOVED`` reply, and mark it stale."""
        if self.topology is not None:
            owner = list(self.topology.owner)
            owner[moved.slot_id] = (str(moved.host), int(moved.port))
            self.topology = Topology(tuple(owner), self.topology.nodes)
        self.mark_stale()

    async def close(self, keep: set[Address] | None = None) -> None:
        """Close the clients of every address not in ``keep`` (all when None)."""
        for address in [a for a in self._clients if keep is None or a not in keep]:
            with contextlib.suppress(*FAULTS):
                await self._clients.pop(address).aclose()
