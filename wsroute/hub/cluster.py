"""The Redis Cluster broker: sharded pub/sub, partitions, failover.

``redis+cluster://host:port[,host:port…]/`` (``rediss+cluster://`` for TLS)
selects this broker. It keeps every promise of the single-Redis broker
(:mod:`.redis`) -- exactly once per connection, in order per publisher,
presence across processes, reconnection, a readiness check, publish
failures counted -- on a Redis Cluster (Redis 7 or newer), using sharded
pub/sub (``SSUBSCRIBE`` / ``SPUBLISH``) so each message stays on the shard
that owns its channel instead of being copied to every node.

Channels (names in :class:`~.wire.ClusterChannels`): one channel per
topic, hash-tagged with the topic's partition (``wsroute:{p17}:topic:room``);
the users are spread over one channel per partition; broadcast is one
channel. Redis filters by topic, so a process receives only topics it has
subscribers for (as with one Redis); the partition tag bounds the number of
slots in use, so subscribing many topics costs one ``SSUBSCRIBE`` per slot,
and a process holds one subscription connection per master whatever the
number of topics.

Connections: this broker does not use redis-py's ``RedisCluster``. It asks
``CLUSTER SHARDS`` itself (:mod:`.topology`) and holds, per master, one
small command pool (``SPUBLISH``, presence) and one sharded subscription
connection (:class:`~.shardlink.ShardLink`). Why: with ``RedisCluster`` one
connection error makes the *next command to any shard* re-initialise the
whole map under a lock, and ``CLUSTERDOWN`` closes every connection, so a
dead shard delays healthy ones; its ``ClusterPubSub`` polls each node in
turn and only learns about a failover when some command sees ``MOVED``.
Here a publish touches only its master's pool, and a failed link triggers
one map refresh from any known node (not only the URL's seeds).

Failover: when a link fails (the master died, or stopped answering PING),
the broker logs one warning, reports the outage to the readiness check,
and asks the known nodes for the map with capped exponential backoff until
every slot has a live master again (a replica is promoted after the
cluster's ``cluster-node-timeout``); then it resubscribes every channel on
its current owner, rewrites this process's presence, and logs one line. A
slot that moves (resharding) makes Redis unsubscribe its channels; the
broker notices, refreshes the map and resubscribes on the new owner.
Messages published during the gap are lost (pub/sub is at-most-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import BrokerUnavailable
from .broker import HealthCheck, Sink
from .clusternodes import Address, ClusterNodes, cluster_unavailable
from .redisbase import Backend, RedisBrokerBase, Timing
from .redisconn import Redis, idempotent
from .shardlink import ShardLink
from .topology import ClusterURL, parse_cluster_url
from .wire import DEFAULT_PARTITIONS, ClusterChannels

__all__ = ["ClusterBroker"]

logger = logging.getLogger("wsroute.hub.cluster")

CLUSTER = Backend(
    "Redis Cluster", logger,
    lost="lost a Redis Cluster shard%s of %s (%s); connections stay open, publishes to that shard fail, "
    "following the failover with backoff up to %.1f s",
    back="Redis Cluster %s is whole again after %.1f s; resubscribed",
)

T = TypeVar("T")


class ClusterBroker(RedisBrokerBase):
    """A broker backed by Redis Cluster sharded pub/sub.

    Args:
        url: ``redis+cluster://[user:password@]host:port[,host:port…]/[?partitions=N]``
            (``rediss+cluster://`` for TLS); the hosts are seeds, any one
            reachable node is enough to start.
        prefix: prefix of every channel and key (no ``{`` or ``}``).
        partitions: number of hash-tag partitions (default 64; ``?partitions=``
            in the URL wins); every process of a deployment must agree.
        wait: at start, retry for ``connect_timeout`` seconds instead of
            failing at once.
        connect_timeout: seconds ``wait`` keeps trying, and the bound on
            waiting for the first subscriptions.
        backoff_max: cap, in seconds, of the backoff between map refreshes
            while some slot has no reachable master (default 0.5).
        presence_ttl: seconds after which a dead process's presence entries
            stop counting; live processes refresh theirs every third of it.
        node_timeout: seconds for connecting to a node and for each reply.
        ping_interval: seconds without traffic before a subscription
            connection is PINGed; no reply in two intervals is a failure.

    Raises:
        ValueError: a malformed URL, a prefix with braces, a partition count
            out of 1..16384.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "wsroute",
        partitions: int = DEFAULT_PARTITIONS,
        wait: bool = False,
        connect_timeout: float = 10.0,
        backoff_max: float = 0.5,
        presence_ttl: float = 30.0,
        node_timeout: float = 2.0,
        ping_interval: float = 5.0,
    ) -> None:
        self.config: ClusterURL = parse_cluster_url(url)
        channels = ClusterChannels(prefix, self.config.partitions or partitions)
        super().__init__(url, CLUSTER, Timing(wait, connect_timeout, backoff_max, presence_ttl),
                         shown_url=self.config.redacted(), channels=channels,
                         base_channels=frozenset([channels.all, *channels.users]))
        self.node_timeout = node_timeout
        self.ping_interval = ping_interval
        self._nodes = ClusterNodes(self.config, node_timeout, self._changed)
        self._links: dict[Address, ShardLink] = {}
        self._down: set[Address] = set()  # masters whose link failed, until a link there is up again
        self._delay = 0.0

    def __repr__(self) -> str:
        return f"ClusterBroker({self.shown_url!r})"

    # Lifecycle

    async def start(self, sink: Sink) -> None:
        """Read the cluster map from a seed, subscribe, start background tasks.

        Raises:
            BrokerUnavailable: no seed answered with a complete map (names
                the URL), or the subscriptions were not acknowledged in
                ``connect_timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timing.connect_timeout
        await self._nodes.connect(timeout=self.timing.connect_timeout, wait=self.timing.wait)
        self._begin(sink, [])
        self._changed()
        await self._wait_online(max(0.0, deadline - loop.time()) + self.node_timeout)

    async def _disconnect(self) -> None:
        await asyncio.gather(*[link.close() for link in self._links.values()])
        self._links.clear()
        await self._nodes.close()

    def health_checks(self) -> dict[str, HealthCheck]:
        """One check, ``"redis-cluster"``: every master answers PING and all subscriptions hold."""
        return {"redis-cluster": self._check}

    async def _check(self) -> None:
        if not self._started:
            raise self._not_started()
        if not self._online.is_set():
            raise BrokerUnavailable(
                f"Redis Cluster {self.shown_url}: a shard is unreachable or failing over "
                f"({self._last_error or 'resubscribing'}); waiting for its replica to take over"
            )
        clients = self._nodes.clients()
        results = await asyncio.gather(*[idempotent(c.ping) for _, c in clients], return_exceptions=True)
        for (address, _), result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                raise self._unavailable(result, f"health check of {address[0]}:{address[1]}")

    def _unavailable(self, exc: BaseException | None, doing: str) -> BrokerUnavailable:
        return cluster_unavailable(self.config, exc, doing)

    # The map and the clients (.clusternodes)

    def _ask_order(self) -> list[Address]:
        """Nodes to ask for the map: those with a live link first, then the known ones, seeds last."""
        live = [address for address, link in self._links.items() if link.up and not link.dead]
        return live + [address for address in self._nodes.known if address not in live]

    def _owner(self, name: str) -> Address:
        if self._nodes.topology is None:
            raise self._not_started()
        return self._nodes.owner(name)

    def client_for(self, name: str) -> Redis:
        """The command client of the master that owns key or channel ``name``."""
        return self._nodes.client(self._owner(name))

    # Commands: on the owner of the key or channel

    def _reachable(self, name: str, doing: str) -> None:
        """Raise at once when not started, or while ``name``'s master is known to be down.

        A master is down from the failure of its link until a new map (or a
        new link there) says otherwise; failing at once then, instead of
        waiting for a connect timeout, leaves the other masters unaffected.
        """
        super()._reachable(name, doing)
        address = self._owner(name)
        if address in self._down:
            lost = ConnectionError(f"{address[0]}:{address[1]} is down; waiting for the failover")
            raise self._unavailable(lost, doing)

    async def _on_owner(self, name: str, run: Callable[[Redis], Awaitable[T]]) -> T:
        """Run on the owner of ``name``; after a MOVED reply (nothing ran) once more on the new owner."""
        self._owner(name)  # "not started" before any map
        return await self._nodes.on_owner(name, run)

    def _failed(self, exc: BaseException, name: str, doing: str) -> BrokerUnavailable:
        """Refresh the map (the owner may have changed), and name the master that failed."""
        address = self._owner(name)
        self._nodes.mark_stale()
        return self._unavailable(exc, f"{doing} on {address[0]}:{address[1]}")

    # Subscriptions: one link per master

    def _acknowledged(self, channel: str) -> bool:
        link = self._links.get(self._owner(channel))
        return link is not None and channel in link.confirmed

    async def _before_reconcile(self) -> None:
        if self._delay:
            await asyncio.sleep(self._delay)

    async def _reconcile_failed(self, exc: BaseException) -> None:
        self._trouble(exc)

    def _reconciled(self) -> None:
        self._check_online()

    async def _apply_subscriptions(self) -> None:
        """Refresh the map if stale; one link per master that owns a wanted channel."""
        if self._nodes.stale:
            error = await self._nodes.fetch(self._ask_order())
            if error is not None:
                raise error
            self._down &= self._nodes.masters
        wanted: dict[Address, set[str]] = {}
        for channel in (*self._base, *self._refs):
            wanted.setdefault(self._owner(channel), set()).add(channel)
        for address, link in list(self._links.items()):
            if link.dead or address not in wanted:
                del self._links[address]
                await link.close()
        for address, channels in wanted.items():
            current = self._links.get(address)
            if current is None:
                current = self._links[address] = ShardLink(address, self._nodes.client(address), self,
                                                           self.ping_interval)
                current.want = channels
                current.start()
            else:
                current.want = channels
        await self._nodes.close(keep=set(wanted) | self._nodes.masters)
        await asyncio.gather(*[link.apply() for link in self._links.values()])

    # Link callbacks (synchronous, from the links' reading tasks)

    def link_message(self, channel: str, data: bytes) -> None:
        """Deliver one message to local connections."""
        self._deliver(channel, data)

    def link_confirmed(self, link: ShardLink, channel: str) -> None:
        """Wake a subscriber waiting for this ack; maybe come back online."""
        self._down.discard(link.address)
        self._ack(channel)
        if not self._online.is_set():
            self._changed()  # the reconciler checks once per batch of acks

    def link_evicted(self, link: ShardLink, channel: str) -> None:
        """A slot moved: refresh the map and resubscribe on its new owner."""
        logger.info("Redis unsubscribed %s on %s:%s (its slot moved); following it", channel, *link.address)
        self._nodes.mark_stale()

    def link_lost(self, link: ShardLink, exc: BaseException) -> None:
        """A subscription connection failed: go offline (log once), refresh the map."""
        if self._links.get(link.address) is link:
            del self._links[link.address]
        self._down.add(link.address)
        self._trouble(exc, link.address)
        self._nodes.mark_stale()

    # Online / offline

    def _trouble(self, exc: BaseException, address: Address | None = None) -> None:
        """Back off the map refreshes; log once per outage."""
        self._delay = min(max(self._delay * 2, 0.05), self.timing.backoff_max)
        self._went_offline(exc, f" ({address[0]}:{address[1]})" if address else "")

    def _check_online(self) -> None:
        """Online when every wanted channel is acknowledged on a live link."""
        if self._online.is_set() or self._nodes.stale or self._nodes.topology is None:
            return
        for channel in (*self._base, *self._refs):
            link = self._links.get(self._owner(channel))
            if link is None or not link.up or channel not in link.confirmed:
                return
        self._delay = 0.0
        self._came_back()
