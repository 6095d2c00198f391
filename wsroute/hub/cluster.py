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
import contextlib
import logging
import uuid

from redis.crc import key_slot
from redis.exceptions import MovedError

from ..errors import BrokerUnavailable
from .broker import Broker, HealthCheck, Sink
from .channelrefs import add_ref, drop_ref, wait_for_ack
from .clusterpresence import ClusterPresence
from .history import HistoryConfig, HistoryPage, Position
from .redisconn import FAULTS, Redis, idempotent
from .redishistory import RedisHistory
from .shardlink import ShardLink
from .tasks import cancel_and_wait
from .topology import ClusterURL, Topology, fetch_topology, node_client, parse_cluster_url
from .wire import (
    DEFAULT_PARTITIONS,
    HISTORY,
    PRESENCE,
    ClusterChannels,
    decode_frame,
    decode_history_frame,
    decode_presence,
    decode_user_frame,
    encode_frame,
    encode_user_frame,
)

__all__ = ["ClusterBroker"]

logger = logging.getLogger("wsroute.hub.cluster")

Address = tuple[str, int]


class ClusterBroker(Broker):
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
        self.url = url
        self.config: ClusterURL = parse_cluster_url(url)
        self.channels = ClusterChannels(prefix, self.config.partitions or partitions)
        self.process_id = uuid.uuid4().hex
        self.wait = wait
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self.presence_ttl = presence_ttl
        self.node_timeout = node_timeout
        self.ping_interval = ping_interval
        self._options = self.config.client_options()
        self._sink: Sink | None = None
        self._topology: Topology | None = None
        self._known: list[Address] = list(self.config.seeds)
        self._clients: dict[Address, Redis] = {}
        self._links: dict[Address, ShardLink] = {}
        self._presence: ClusterPresence | None = None
        self._history: RedisHistory | None = None
        self._base = frozenset([self.channels.all, *self.channels.users])
        self._users = frozenset(self.channels.users)
        self._refs: dict[str, int] = {}
        self._topic_of: dict[str, str] = {}
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._stale = True
        self._down: set[Address] = set()  # masters whose link failed, until a link there is up again
        self._requested = 0  # changes recorded (subscriptions, presence)
        self._applied = 0  # changes known to be in Redis
        self._settling: list[tuple[int, asyncio.Future[None]]] = []
        self._delay = 0.0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._online = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None
        self._last_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"ClusterBroker({self.config.redacted()!r})"

    # Lifecycle

    async def start(self, sink: Sink) -> None:
        """Read the cluster map from a seed, subscribe, start background tasks.

        Raises:
            BrokerUnavailable: no seed answered with a complete map (names
                the URL), or the subscriptions were not acknowledged in
                ``connect_timeout`` seconds.
        """
        self._sink = sink
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while True:
            topology, error = await fetch_topology(self.config.seeds, self._options, self.node_timeout)
            if topology is not None:
                break
            if not self.wait or loop.time() >= deadline:
                raise self._unavailable(error, "reading the cluster map")
            await asyncio.sleep(0.2)
        self._set_topology(topology)
        self._presence = ClusterPresence(self.client_for, self.channels, self.process_id,
                                         self.presence_ttl)
        self._history = RedisHistory(self._client(topology.owner[0]), self.channels, "SPUBLISH")
        self._tasks = [loop.create_task(self._reconciler()), loop.create_task(self._heartbeat())]
        self._changed()
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time()) + self.node_timeout):
                await self._online.wait()
        except TimeoutError as exc:
            await self.stop()
            raise self._unavailable(self._last_error or exc, "subscribing") from exc

    async def stop(self) -> None:
        """Apply pending changes for up to 2 s, then disconnect everything."""
        if self._presence is None:
            return
        if self._online.is_set():
            await self.flush(timeout=2.0)
        self._settled(None)
        await cancel_and_wait(self._tasks)  # a plain cancel + gather could hang (see .tasks)
        self._tasks = []
        with contextlib.suppress(*FAULTS, TimeoutError):
            async with asyncio.timeout(2.0):
                await idempotent(self._presence.forget_process)
        self._presence = None
        self._history = None
        await asyncio.gather(*[link.close() for link in self._links.values()])
        self._links.clear()
        await asyncio.gather(*[client.aclose() for client in self._clients.values()],
                             return_exceptions=True)
        self._clients.clear()
        self._online.clear()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until Redis reflects local subscriptions and presence."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._idle.wait()
                    await self._online.wait()
                    if self._idle.is_set():
                        return
        except TimeoutError:
            logger.debug("flush timed out; changes will be applied later")

    async def settle(self) -> None:
        """Wait until the changes recorded so far are in Redis (as :meth:`RedisBroker.settle`).

        ``Hub.subscribe``/``unsubscribe`` await it so that, when they return,
        every process's ``presence()`` reflects the change. Returns at once
        during an outage, and after ``connect_timeout`` seconds at most.
        """
        target = self._requested
        if self._applied >= target or not self._online.is_set():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._settling.append((target, waiter))
        try:
            async with asyncio.timeout(self.connect_timeout):
                await waiter
        except TimeoutError:
            logger.debug("changes not in Redis after %.1f s; they will apply later", self.connect_timeout)

    def _settled(self, applied: int | None) -> None:
        """Wake :meth:`settle` callers whose changes are applied (all if None)."""
        if applied is not None:
            self._applied = applied
        keep = []
        for target, waiter in self._settling:
            if applied is None or target <= applied:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((target, waiter))
        self._settling = keep

    def health_checks(self) -> dict[str, HealthCheck]:
        """One check, ``"redis-cluster"``: every master answers PING and all subscriptions hold."""
        return {"redis-cluster": self._check}

    async def _check(self) -> None:
        if self._presence is None:
            raise BrokerUnavailable(f"Redis Cluster broker {self.config.redacted()} is not started")
        if not self._online.is_set():
            raise BrokerUnavailable(
                f"Redis Cluster {self.config.redacted()}: a shard is unreachable or failing over "
                f"({self._last_error or 'resubscribing'}); waiting for its replica to take over"
            )
        clients = list(self._clients.items())
        results = await asyncio.gather(*[idempotent(c.ping) for _, c in clients], return_exceptions=True)
        for (address, _), result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                raise self._unavailable(result, f"health check of {address[0]}:{address[1]}")

    def _unavailable(self, exc: BaseException | None, doing: str) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"Redis Cluster at {self.config.redacted()} is unavailable "
            f"({doing}: {exc or 'some hash slot has no live master'}); "
            "start the cluster (cluster_state:ok) or pass the right --broker URL"
        )

    # Topology and clients

    def _set_topology(self, topology: Topology) -> None:
        self._topology = topology
        self._stale = False
        self._down &= topology.masters
        known = list(topology.nodes)
        known += [a for a in self.config.seeds if a not in known]  # seeds last, only as a fallback
        self._known = known

    def _ask_order(self) -> list[Address]:
        """Nodes to ask for the map: those with a live link first, the URL's seeds last."""
        live = [address for address, link in self._links.items() if link.up and not link.dead]
        return live + [address for address in self._known if address not in live]

    def _owner(self, name: str) -> Address:
        if self._topology is None:
            raise BrokerUnavailable(f"Redis Cluster broker {self.config.redacted()} is not started")
        return self._topology.owner[key_slot(name.encode())]

    def _client(self, address: Address) -> Redis:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = node_client(address, self._options, self.node_timeout)
        return client

    def client_for(self, name: str) -> Redis:
        """The command client of the master that owns key or channel ``name``."""
        return self._client(self._owner(name))

    # Publishing

    async def _publish(self, channel: str, data: bytes) -> None:
        """SPUBLISH on the owner; follow one MOVED; a failure raises and triggers a map refresh.

        Never retried otherwise: a retry after a lost reply could deliver
        twice. While the owner is known to be down (its link failed and no
        new owner is known yet) this fails at once instead of waiting for a
        connect timeout; publishes to other masters go on unaffected.
        """
        address = self._owner(channel)
        if address in self._down:
            lost = ConnectionError(f"{address[0]}:{address[1]} is down; waiting for the failover")
            raise self._unavailable(lost, "publishing")
        try:
            try:
                await self._client(address).spublish(channel, data)
            except MovedError as moved:
                self._moved(moved)
                await self._client(self._owner(channel)).spublish(channel, data)
        except FAULTS as exc:
            self._refresh()
            raise self._unavailable(exc, f"publishing to {address[0]}:{address[1]}") from exc

    def _moved(self, moved: MovedError) -> None:
        """Patch the slot map from a MOVED reply, and refresh it in the background."""
        if self._topology is not None:
            owner = list(self._topology.owner)
            owner[moved.slot_id] = (str(moved.host), int(moved.port))
            self._topology = Topology(tuple(owner), self._topology.nodes)
        self._refresh()

    async def publish_all(self, text: bool, payload: bytes) -> None:
        """SPUBLISH on the broadcast channel."""
        await self._publish(self.channels.all, encode_frame(text, payload))

    async def publish_user(self, user_id: str, text: bool, payload: bytes) -> None:
        """SPUBLISH on the user's partition channel, tagged with the user id."""
        await self._publish(self.channels.user(user_id), encode_user_frame(user_id, text, payload))

    async def publish_topic(self, topic: str, text: bool, payload: bytes) -> None:
        """SPUBLISH on the topic's channel."""
        await self._publish(self.channels.topic(topic), encode_frame(text, payload))

    # History (docs/history.md): one Lua script on the master of the topic's slot,
    # which holds the Stream, its meta Hash and the topic's sharded channel.

    def _require_history(self) -> RedisHistory:
        if self._history is None:
            raise BrokerUnavailable(f"Redis Cluster broker {self.config.redacted()} is not started")
        return self._history

    async def publish_history(self, topic: str, data: bytes, config: HistoryConfig) -> Position:
        """Run the publish script on the topic's owner; follow one MOVED (nothing ran); never retried otherwise."""
        history = self._require_history()
        channel = self.channels.topic(topic)
        address = self._owner(channel)
        if address in self._down:
            lost = ConnectionError(f"{address[0]}:{address[1]} is down; waiting for the failover")
            raise self._unavailable(lost, "publishing")
        try:
            try:
                return (await history.publish(topic, data, config, self._client(address)))[0]
            except MovedError as moved:
                self._moved(moved)
                return (await history.publish(topic, data, config, self.client_for(channel)))[0]
        except FAULTS as exc:
            self._refresh()
            raise self._unavailable(exc, f"publishing to {address[0]}:{address[1]}") from exc

    async def read_history(self, topic: str, since: int | None, limit: int, config: HistoryConfig) -> HistoryPage:
        """Run the read script on the topic's owner (safe to repeat: retried once, MOVED followed)."""
        history = self._require_history()
        channel = self.channels.topic(topic)

        async def read() -> HistoryPage:
            try:
                return await history.read(topic, since, limit, config, self.client_for(channel))
            except MovedError as moved:
                self._moved(moved)
                return await history.read(topic, since, limit, config, self.client_for(channel))

        try:
            return await idempotent(read)
        except FAULTS as exc:
            self._refresh()
            raise self._unavailable(exc, "reading history") from exc

    # Subscriptions and presence

    async def subscribe(self, topic: str) -> None:
        """Count a subscriber; on the first, SSUBSCRIBE and wait for the ack.

        While a shard is unreachable this returns at once: the channel is
        subscribed when its shard is back.
        """
        channel = self.channels.topic(topic)
        if add_ref(self._refs, channel):
            self._topic_of[channel] = topic
            self._changed()
        link = self._links.get(self._owner(channel))
        if (link is not None and channel in link.confirmed) or not self._online.is_set():
            return
        await wait_for_ack(self._waiters, channel, self.connect_timeout, "SSUBSCRIBE", logger)

    def unsubscribe(self, topic: str) -> None:
        """Count one subscriber less; on the last, SUNSUBSCRIBE (later)."""
        channel = self.channels.topic(topic)
        if drop_ref(self._refs, channel):
            self._topic_of.pop(channel, None)
            self._changed()

    def set_presence(self, topic: str, user_id: str, present: bool) -> None:
        """Record a local join/leave; Redis is updated in the background."""
        if self._presence is None:
            raise RuntimeError("ClusterBroker used before Hub.start()")
        self._presence.set_local(topic, user_id, present)
        self._changed()

    async def presence(self, topic: str) -> set[str]:
        """User ids in ``topic`` across live processes."""
        if self._presence is None:
            raise BrokerUnavailable(f"Redis Cluster broker {self.config.redacted()} is not started")
        presence = self._presence
        try:
            return await idempotent(lambda: presence.read(topic))
        except FAULTS as exc:
            self._refresh()
            raise self._unavailable(exc, "reading presence") from exc

    def _changed(self) -> None:
        self._requested += 1
        self._idle.clear()
        self._wake.set()

    def _refresh(self) -> None:
        self._stale = True
        self._changed()

    # Background tasks

    async def _reconciler(self) -> None:
        """Keep links, subscriptions and presence matching the wanted state and the map."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._delay:
                await asyncio.sleep(self._delay)
            target = self._requested
            try:
                await self._reconcile()
            except Exception as exc:  # any failure: back off, retry, never die
                if not isinstance(exc, FAULTS):
                    logger.exception("unexpected error while updating the Redis Cluster; retrying")
                self._trouble(exc)
                self._wake.set()
                continue
            self._check_online()
            if self._online.is_set():
                self._settled(target)
            if not self._wake.is_set():
                self._idle.set()

    async def _reconcile(self) -> None:
        if self._stale:
            topology, error = await fetch_topology(self._ask_order(), self._options, self.node_timeout)
            if topology is None:
                raise ConnectionError(str(error or "some hash slot has no live master yet"))
            self._set_topology(topology)
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
                current = self._links[address] = ShardLink(address, self._client(address), self,
                                                           self.ping_interval)
                current.want = channels
                current.start()
            else:
                current.want = channels
        for address in set(self._clients) - set(wanted) - self._topology_masters():
            with contextlib.suppress(*FAULTS):
                await self._clients.pop(address).aclose()
        await asyncio.gather(*[link.apply() for link in self._links.values()])
        if self._online.is_set() and self._presence is not None:
            await idempotent(self._presence.sync)

    def _topology_masters(self) -> set[Address]:
        return self._topology.masters if self._topology is not None else set()

    async def _heartbeat(self) -> None:
        """Keep this process's presence alive while it runs."""
        while self._presence is not None:
            try:
                if await idempotent(self._presence.heartbeat):
                    logger.debug("presence of this process had expired in Redis; rewriting it")
                    self._changed()
            except FAULTS as exc:
                logger.debug("presence heartbeat failed: %r", exc)
            await asyncio.sleep(self.presence_ttl / 3)

    # Link callbacks (synchronous, from the links' reading tasks)

    def link_message(self, channel: str, data: bytes) -> None:
        """Deliver one message to local connections."""
        sink = self._sink
        if sink is None:
            return
        try:
            if channel in self._users:
                sink.deliver_user(*decode_user_frame(data))
            elif channel == self.channels.all:
                sink.deliver_all(*decode_frame(data))
            else:
                topic = self._topic_of.get(channel)
                if topic is None:
                    return  # unsubscribed meanwhile
                if data[0] == HISTORY:
                    sink.deliver_history(topic, *decode_history_frame(data))
                elif data[0] == PRESENCE:
                    sink.presence_event(*decode_presence(data[1:]))
                else:
                    sink.deliver_topic(topic, *decode_frame(data))
        except Exception:
            logger.exception("cannot deliver a message from %s", channel)

    def link_confirmed(self, link: ShardLink, channel: str) -> None:
        """Wake a subscriber waiting for this ack; maybe come back online."""
        self._down.discard(link.address)
        waiter = self._waiters.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._online.is_set():
            self._changed()  # the reconciler checks once per batch of acks

    def link_evicted(self, link: ShardLink, channel: str) -> None:
        """A slot moved: refresh the map and resubscribe on its new owner."""
        logger.info("Redis unsubscribed %s on %s:%s (its slot moved); following it", channel, *link.address)
        self._refresh()

    def link_lost(self, link: ShardLink, exc: BaseException) -> None:
        """A subscription connection failed: go offline (log once), refresh the map."""
        if self._links.get(link.address) is link:
            del self._links[link.address]
        self._down.add(link.address)
        self._trouble(exc, link.address)
        self._refresh()

    # Online / offline

    @property
    def online(self) -> bool:
        """True while every wanted channel is acknowledged on a live link (read by metrics)."""
        return self._online.is_set()

    def _trouble(self, exc: BaseException, address: Address | None = None) -> None:
        """Log once per outage, back off, stay quiet until recovery."""
        self._last_error = exc
        self._delay = min(max(self._delay * 2, 0.05), self.backoff_max)
        self._online.clear()
        self._settled(None)  # nobody waits for Redis during an outage
        if self._down_since is None and self._presence is not None:
            self._down_since = asyncio.get_running_loop().time()
            where = f" ({address[0]}:{address[1]})" if address else ""
            logger.warning(
                "lost a Redis Cluster shard%s of %s (%s); connections stay open, publishes to "
                "that shard fail, following the failover with backoff up to %.1f s",
                where, self.config.redacted(), exc or type(exc).__name__, self.backoff_max,
            )

    def _check_online(self) -> None:
        """Online when every wanted channel is acknowledged on a live link."""
        if self._online.is_set() or self._stale or self._topology is None:
            return
        for channel in (*self._base, *self._refs):
            link = self._links.get(self._owner(channel))
            if link is None or not link.up or channel not in link.confirmed:
                return
        self._delay = 0.0
        self._last_error = None
        if self._down_since is not None:
            outage = asyncio.get_running_loop().time() - self._down_since
            self._down_since = None
            self.reconnects += 1
            logger.warning("Redis Cluster %s is whole again after %.1f s; resubscribed",
                           self.config.redacted(), outage)
            if self._presence is not None:
                self._presence.rewrite()
        self._online.set()
        self._changed()

