"""The hub on a real Redis Cluster (three masters, three replicas) with sharded pub/sub."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clustertest import RedisCluster, raw_command
from hubtest import ServerProcess, eventually, free_port, open_client, receive, running_hub, server_processes_on
from redis.crc import key_slot
from websockets.asyncio.client import ClientConnection

from wsroute.errors import BrokerUnavailable
from wsroute.hub import Hub, Publisher, make_broker
from wsroute.hub.cluster import ClusterBroker
from wsroute.hub.topology import ClusterURL, parse_cluster_url
from wsroute.hub.wire import ClusterChannels

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One 3-master / 3-replica cluster shared by the tests that do not kill nodes."""
    try:
        proc = RedisCluster(tmp_path_factory.mktemp("cluster"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def cluster_url(cluster: RedisCluster) -> str:
    """The URL of the shared cluster, emptied."""
    cluster.flushall()
    return cluster.url()


@pytest.fixture
def cluster_servers(cluster_url: str) -> Iterator[Callable[[], ServerProcess]]:
    """A factory of wsroute server processes on the cluster, all stopped at the end."""
    with server_processes_on(cluster_url) as start:
        yield start


async def assert_silent(ws: ClientConnection) -> None:
    """Nothing else arrives in the next 200 ms (no duplicate delivery)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await ws.recv()


async def commandstat(cluster: RedisCluster, command: str) -> int:
    """Sum of ``calls`` of ``command`` over the live masters (``INFO commandstats``)."""
    total = 0
    for node in cluster.masters():
        for line in node.info("commandstats").splitlines():
            if line.startswith(f"cmdstat_{command}:"):
                total += int(line.split("calls=")[1].split(",")[0])
    return total


def test_url_forms_and_mistakes() -> None:
    """redis+cluster:// URLs parse into seeds, TLS, credentials and partitions; mistakes name the expected form."""
    assert parse_cluster_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/") == ClusterURL(
        (("127.0.0.1", 7000), ("127.0.0.1", 7001)))
    parsed = parse_cluster_url("rediss+cluster://app:s%40cret@[::1]:7000,h2:7001/0?partitions=16")
    assert parsed == ClusterURL((("::1", 7000), ("h2", 7001)), True, "app", "s@cret", 16)
    assert parsed.redacted() == "rediss+cluster://app:***@[::1]:7000,h2:7001/"
    assert parsed.client_options() == {"username": "app", "password": "s@cret", "ssl": True}
    for bad, match in [
        ("redis+cluster:///", "no host given"),
        ("redis+cluster://h1/", "'h1' is not host:port"),
        ("redis+cluster://h1:7000/3", "only database 0"),
        ("redis+cluster://h1:7000/?db=1", "unknown query parameter 'db'"),
        ("redis+cluster://h1:7000/?partitions=0", "from 1 to 16384"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_cluster_url(bad)
    broker = make_broker("redis+cluster://127.0.0.1:7000/", {"partitions": 8, "prefix": "app2"})
    assert isinstance(broker, ClusterBroker)
    assert broker.channels.partitions == 8
    assert repr(broker) == "ClusterBroker('redis+cluster://127.0.0.1:7000/')"
    with pytest.raises(ValueError, match="must not contain"):
        make_broker("redis+cluster://127.0.0.1:7000/", {"prefix": "a{b}"})


def test_partition_names_share_a_slot() -> None:
    """A topic's channel and presence hash carry its partition's hash tag, so they live in one slot."""
    names = ClusterChannels("wsroute", 64)
    assert names.topic("room") == f"wsroute:{{p{names.partition('room')}}}:topic:room"
    for topic in ("room", "a:b", "{x}", "ü"):
        assert key_slot(names.topic(topic).encode()) == key_slot(names.presence_key(topic).encode())
    assert len({key_slot(c.encode()) for c in names.users}) == 64
    assert key_slot(names.alive_key("p1").encode()) == key_slot(names.alive_key("p2").encode())
    assert names.user("alice") in names.users


@pytest.mark.asyncio
async def test_start_fails_fast_when_no_seed_answers() -> None:
    """Starting on seeds where nothing listens raises BrokerUnavailable naming the URL and the fix."""
    hub = Hub(broker=f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/")
    with pytest.raises(BrokerUnavailable, match=r"Redis Cluster at redis\+cluster://127\.0\.0\.1.*--broker URL"):
        await hub.start()


@pytest.mark.asyncio
async def test_start_on_a_plain_redis_says_it_is_not_a_cluster(redis_url: str) -> None:
    """A redis+cluster:// URL pointing at a non-cluster Redis fails at start with Redis's own reason."""
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    hub = Hub(broker=f"redis+cluster://127.0.0.1:{port}/")
    with pytest.raises(BrokerUnavailable, match="cluster support disabled"):
        await hub.start()


@pytest.mark.asyncio
async def test_two_hubs_share_topics_exactly_once_in_order(cluster_url: str) -> None:
    """Publishes to 12 topics spread over the shards reach subscribers of both hubs once each, in order."""
    hub1, hub2 = Hub(broker=cluster_url), Hub(broker=cluster_url)
    topics = [f"room{i}" for i in range(12)]
    async with running_hub(hub1) as url1, running_hub(hub2) as url2:
        assert isinstance(hub1.broker, ClusterBroker)
        owners = {hub1.broker.client_for(hub1.broker.channels.topic(t)) for t in topics}
        assert len(owners) == 3  # the topics really are on every shard
        local = await open_client(url1, "?topics=" + ",".join(topics))
        remote = await open_client(url2, "?topics=" + ",".join(topics))
        for i in range(20):
            for topic in topics:
                await hub1.publish(topic, f"{topic}:{i}")
        expected = [f"{t}:{i}" for i in range(20) for t in topics]
        for ws in (local, remote):
            got = await receive(ws, len(expected))
            assert sorted(got) == sorted(expected)
            for topic in topics:  # per topic (per channel), publisher order is kept
                assert [m for m in got if str(m).startswith(f"{topic}:")] == [f"{topic}:{i}" for i in range(20)]
            await assert_silent(ws)
            await ws.close()


@pytest.mark.asyncio
async def test_two_server_processes_share_a_topic(cluster_servers) -> None:  # type: ignore[no-untyped-def]
    """A publish in one server process reaches a client of the other exactly once and in order."""
    a, b = cluster_servers(), cluster_servers()
    sender = await open_client(a.url, "?topics=room")
    listener = await open_client(b.url, "?topics=room")
    for i in range(200):
        await sender.send(f"pub room m{i}")
    expected = [f"m{i}" for i in range(200)]
    assert await receive(listener, 200) == expected
    assert await receive(sender, 200) == expected
    await assert_silent(listener)
    for ws in (sender, listener):
        await ws.close()


@pytest.mark.asyncio
async def test_send_to_user_and_broadcast_across_processes(cluster_servers) -> None:  # type: ignore[no-untyped-def]
    """send_to_user reaches the user's sockets on two processes once each; broadcast reaches everyone once."""
    a, b = cluster_servers(), cluster_servers()
    alice_a = await open_client(a.url, "?user=alice")
    alice_b = await open_client(b.url, "?user=alice")
    bob = await open_client(b.url, "?user=bob")
    await bob.send("user alice hello")
    assert await receive(alice_a, 1) == ["hello"]
    assert await receive(alice_b, 1) == ["hello"]
    await assert_silent(alice_a)
    await assert_silent(bob)
    await alice_a.send("all everyone")
    for ws in (alice_a, alice_b, bob):
        assert await receive(ws, 1) == ["everyone"]
        await assert_silent(ws)
        await ws.close()


@pytest.mark.asyncio
async def test_presence_across_processes(cluster_servers) -> None:  # type: ignore[no-untyped-def]
    """presence() in one process lists users of another once their subscribe returned; leaving removes them."""
    a, b = cluster_servers(), cluster_servers()
    alice = await open_client(a.url, "?user=alice&topics=lobby")
    bob = await open_client(b.url, "?user=bob&topics=lobby")
    asker = await open_client(a.url)

    async def is_(value: str) -> bool:
        await asker.send("presence lobby")
        return str(await asker.recv()) == value

    assert await is_("alice,bob")  # subscribe returned after the join reached Redis (settle)
    await bob.close()
    await eventually(lambda: is_("alice"))
    for ws in (alice, asker):
        await ws.close()


@pytest.mark.asyncio
async def test_presence_events_reach_listeners_in_another_hub(cluster_url: str) -> None:
    """A join in one hub is announced to an on_presence listener of the topic in another hub."""
    hub1, hub2 = Hub(broker=cluster_url), Hub(broker=cluster_url)
    events: list[tuple[str, str, str]] = []

    async def listener(topic: str, event: str, user_id: str) -> None:
        events.append((topic, event, user_id))

    async with running_hub(hub1) as url1, running_hub(hub2):
        watcher = await open_client(url1)
        conn = next(iter(hub1._registry.conns))
        await hub1.subscribe(conn, "lobby", on_presence=listener)
        hub2.broker.set_presence("lobby", "zoe", True)
        await eventually(lambda: ("lobby", "join", "zoe") in events)
        hub2.broker.set_presence("lobby", "zoe", False)
        await eventually(lambda: ("lobby", "leave", "zoe") in events)
        assert events == [("lobby", "join", "zoe"), ("lobby", "leave", "zoe")]
        await watcher.close()


@pytest.mark.asyncio
async def test_publisher_reaches_clients_and_numbers_history_on_the_cluster(cluster_url: str) -> None:
    """A cluster-URL Publisher reaches topic, user and broadcast clients; its history shares the hub's offsets."""
    hub = Hub(broker=cluster_url)
    hub.history("h:*", size=100)
    async with running_hub(hub) as url:
        ws = await open_client(url, "?user=carol&topics=news")
        async with Publisher(cluster_url) as pub:
            pub.history("h:*", size=100)
            assert await pub.publish("news", "n1") == 1
            assert await pub.send_json_to_user("carol", {"x": 1}) == 1
            assert await pub.broadcast(b"\x01") == 1
            assert await receive(ws, 3) == ["n1", '{"x":1}', b"\x01"]
            await hub.publish("h:log", "from the hub")
            assert await pub.publish_json("h:log", {"n": 2}) == 0  # nobody subscribes h:log
        envelopes, position = await hub.read_history("h:log")
        assert [(e["offset"], e["data"]) for e in envelopes] == [(1, "from the hub"), (2, {"n": 2})]
        assert position.offset == 2
        await ws.close()


@pytest.mark.asyncio
async def test_publisher_fails_fast_when_no_seed_answers() -> None:
    """A Publisher on cluster seeds where nothing listens raises BrokerUnavailable naming the URL and the fix."""
    pub = Publisher(f"redis+cluster://127.0.0.1:{free_port()}/")
    with pytest.raises(BrokerUnavailable, match=r"Redis Cluster at redis\+cluster://127\.0\.0\.1.*--broker URL"):
        await pub.connect()
    with pytest.raises(BrokerUnavailable, match="Publisher is not connected"):
        await pub.publish("t", "x")


@pytest.mark.asyncio
async def test_one_connection_per_master_and_one_ssubscribe_per_slot(cluster: RedisCluster, cluster_url: str) -> None:
    """500 topics subscribed at once use one subscription connection per master and at most one SSUBSCRIBE per slot."""
    hub = Hub(broker=cluster_url)
    async with running_hub(hub) as url:
        ws = await open_client(url)
        conn = next(iter(hub._registry.conns))
        before = await commandstat(cluster, "ssubscribe")
        topics = [f"t{i}" for i in range(500)]
        await asyncio.gather(*[hub.subscribe(conn, t) for t in topics])
        calls = await commandstat(cluster, "ssubscribe") - before
        broker = hub.broker
        assert isinstance(broker, ClusterBroker)
        slots = {key_slot(broker.channels.topic(t).encode()) for t in topics}
        assert len(slots) == 64
        assert 1 <= calls <= len(slots)
        assert len(broker._links) == 3
        for node in cluster.masters():
            clients = raw_command(node.host, node.port, "CLIENT", "LIST", "TYPE", "pubsub").decode()
            assert clients.count(" fd=") == 1, clients
        await hub.publish("t499", "last")
        assert await receive(ws, 1) == ["last"]
        await ws.close()


@pytest.mark.asyncio
async def test_cycles_leave_nothing_in_the_cluster(cluster: RedisCluster, cluster_url: str) -> None:
    """300 connect/subscribe/disconnect cycles leave only the base shard channels and, after stop, no keys."""
    hub = Hub(broker=cluster_url)
    async with running_hub(hub) as url:
        for i in range(300):
            ws = await open_client(url, f"?user=u{i % 5}&topics=t{i % 17},shared")
            await ws.close()
        await eventually(lambda: hub.connections == 0)
        await hub.broker.flush()
        broker = hub.broker
        assert isinstance(broker, ClusterBroker)
        assert broker._refs == {} and broker._topic_of == {}
        channels: set[str] = set()
        keys: set[str] = set()
        for node in cluster.masters():
            channels.update(shard_channels(node))
            keys.update(k for k in node.command("KEYS", "wsroute:*").split("\r\n") if k.startswith("wsroute:"))
        assert channels == {broker.channels.all, *broker.channels.users}
        assert keys == {broker.channels.alive_key(broker.process_id)}
    for node in cluster.masters():
        assert "wsroute:" not in node.command("KEYS", "wsroute:*")


def shard_channels(node) -> set[str]:  # type: ignore[no-untyped-def]
    """The sharded channels with subscribers on one node (``PUBSUB SHARDCHANNELS``)."""
    reply = node.command("PUBSUB", "SHARDCHANNELS")
    return {line for line in reply.split("\r\n") if line.startswith("wsroute:")}


@pytest.mark.asyncio
async def test_readiness_check_and_publish_failures(cluster_url: str) -> None:
    """The "redis-cluster" check passes while every master answers and fails once the broker is stopped."""
    hub = Hub(broker=cluster_url)
    await hub.start()
    checks = hub.health_checks()
    assert list(checks) == ["redis-cluster"]
    await checks["redis-cluster"]()
    await hub.stop()
    with pytest.raises(BrokerUnavailable, match="not started"):
        await checks["redis-cluster"]()


@pytest.mark.asyncio
async def test_a_moved_slot_is_followed(cluster: RedisCluster, cluster_url: str, caplog) -> None:  # type: ignore[no-untyped-def]
    """When the slot of a subscribed topic moves to another master, delivery continues there, also from a Publisher."""
    hub1, hub2 = Hub(broker=cluster_url), Hub(broker=cluster_url)
    async with running_hub(hub1) as url1, running_hub(hub2), Publisher(cluster_url) as pub:
        ws = await open_client(url1, "?topics=moving")
        await hub2.publish("moving", "before")
        assert await receive(ws, 1) == ["before"]
        broker = hub1.broker
        assert isinstance(broker, ClusterBroker)
        channel = broker.channels.topic("moving")
        slot = key_slot(channel.encode())
        source = next(n for n in cluster.masters() if (n.host, n.port) == broker._owner(channel))
        target = next(n for n in cluster.masters() if n is not source)
        with caplog.at_level(logging.INFO, "wsroute.hub.cluster"):
            await asyncio.to_thread(move_slot, slot, source, target, cluster)
            await eventually(lambda: broker._owner(channel) == (target.host, target.port))
            await eventually(lambda: channel in broker._links[(target.host, target.port)].confirmed)
        assert "its slot moved" in caplog.text
        for i in range(5):  # hub2's map may be stale: its publish follows MOVED
            await hub2.publish("moving", f"after{i}")
        assert await receive(ws, 5) == [f"after{i}" for i in range(5)]
        assert await pub.publish("moving", "from a script") == 1  # its map predates the move: MOVED followed
        assert await receive(ws, 1) == ["from a script"]
        await assert_silent(ws)
        await ws.close()


def move_slot(slot: int, source, target, cluster: RedisCluster) -> None:  # type: ignore[no-untyped-def]
    """Move an empty ``slot`` from ``source`` to ``target`` with CLUSTER SETSLOT, as resharding does."""
    def node_id(node) -> str:  # type: ignore[no-untyped-def]
        return raw_command(node.host, node.port, "CLUSTER", "MYID").decode().split("\r\n")[1]

    source_id, target_id = node_id(source), node_id(target)
    raw_command(target.host, target.port, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
    raw_command(source.host, source.port, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
    raw_command(target.host, target.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
    raw_command(source.host, source.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
    cluster.wait_ok()


@pytest.mark.asyncio
async def test_readyz_reports_the_cluster_through_the_health_plugin(cluster_url: str) -> None:
    """With the health plugin, /readyz lists the "redis-cluster" check as passing."""
    import wsroute_health

    import wsroute
    from wsroute.testing import serve_app

    app = wsroute.App(load_entrypoints=False, plugins=[wsroute_health], broker=cluster_url)
    async with serve_app(app) as server:
        ready = await server.http_get("/readyz")
        assert ready.status == 200, ready.text
        assert json.loads(ready.body)["checks"]["redis-cluster"]["status"] == "pass"


@pytest.mark.asyncio
async def test_master_killed_during_publishing(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL a master while publishing: its topics resume on the promoted replica, without duplicates or disorder.

    Topics on healthy shards lose nothing; publishes to the dead shard fail
    (and are counted) until the failover; each hub logs the outage once and
    the recovery once; the readiness check fails during the outage. The
    measured gap is logged (docs/cluster.md quotes the benchmark's figure).
    """
    cluster = RedisCluster(tmp_path)
    await asyncio.to_thread(cluster.start)
    try:
        await _kill_a_master(cluster, caplog)
    finally:
        cluster.stop()


async def _kill_a_master(cluster: RedisCluster, caplog) -> None:  # type: ignore[no-untyped-def]
    publisher, subscriber = Hub(broker=cluster.url(3)), Hub(broker=cluster.url(3))
    topics = [f"t{i}" for i in range(12)]
    async with running_hub(publisher), running_hub(subscriber) as url:
        ws = await open_client(url, "?topics=" + ",".join(topics))
        broker = publisher.broker
        assert isinstance(broker, ClusterBroker)
        owner = {t: broker._owner(broker.channels.topic(t)) for t in topics}
        victim_address = owner["t0"]
        victim = next(n for n in cluster.nodes if (n.host, n.port) == victim_address)
        on_victim = {t for t in topics if owner[t] == victim_address}
        assert 0 < len(on_victim) < len(topics)
        got: dict[str, list[int]] = {t: [] for t in topics}
        arrival: dict[str, list[float]] = {t: [] for t in topics}
        sent: dict[str, list[int]] = {t: [] for t in topics}

        async def read() -> None:
            async for message in ws:
                topic, _, number = str(message).partition(":")
                got[topic].append(int(number))
                arrival[topic].append(time.monotonic())

        reader = asyncio.create_task(read())
        seen_outage = False
        with caplog.at_level(logging.WARNING, "wsroute.hub.cluster"):
            killed_at = resumed_at = None
            for i in range(100_000):  # bounded; the loop ends a second after recovery
                if i == 50:
                    victim.kill()
                    killed_at = time.monotonic()
                for topic in topics:
                    try:
                        await publisher.publish(topic, f"{topic}:{i}")
                        sent[topic].append(i)
                    except BrokerUnavailable:
                        pass
                both_online = broker._online.is_set() and subscriber.broker._online.is_set()  # type: ignore[attr-defined]
                if seen_outage and resumed_at is None and both_online:
                    resumed_at = time.monotonic()
                if killed_at and not seen_outage and not broker._online.is_set():
                    with pytest.raises(BrokerUnavailable, match="failing over"):
                        await publisher.health_checks()["redis-cluster"]()
                    seen_outage = True
                if resumed_at and time.monotonic() - resumed_at > 1:
                    break
                if killed_at and time.monotonic() - killed_at > 30:
                    raise AssertionError("no failover within 30 s")
                await asyncio.sleep(0.005)
            await eventually(lambda: all(got[t] and got[t][-1] == sent[t][-1] for t in topics))
            reader.cancel()
        assert seen_outage
        assert publisher.stats.publish_failures > 0
        for topic in topics:
            assert got[topic] == sorted(set(got[topic])), f"{topic}: duplicates or disorder"
            if topic in on_victim:
                assert got[topic][-1] > 50 and set(got[topic]) <= set(sent[topic])
            else:
                assert got[topic] == sent[topic], f"{topic} on a healthy shard lost messages"
        gaps = [max(b - a for a, b in zip(arrival[t], arrival[t][1:], strict=False)) for t in on_victim]
        logger.warning("failover gap for topics on the killed master: %.2f s", max(gaps))
        assert caplog.text.count("lost a Redis Cluster shard") == 2  # once per hub
        assert caplog.text.count("is whole again") == 2
        await publisher.health_checks()["redis-cluster"]()
        await ws.close()



@pytest.mark.asyncio
async def test_history_and_recovery_on_the_cluster(cluster_url: str) -> None:
    """On a Redis Cluster, history topics in several slots get offsets and a client recovers what it missed."""
    from historytest import Subscriber, load_app

    from wsroute.testing import serve_app

    app = load_app()
    app.hub.use_broker(cluster_url)
    other = Hub(broker=cluster_url)
    other.history("h:*")
    await other.start()
    try:
        async with serve_app(app) as server:
            url = server.url("").rstrip("/")
            for name in ("c0", "c1", "c2", "c3"):
                client = Subscriber(name)
                await client.connect(url)
                for i in range(1, 4):
                    await other.publish(f"h:{name}", f"m{i}")
                await client.receive(3)
                await client.close()
                for i in range(4, 11):
                    await other.publish_json(f"h:{name}", {"n": i})
                replayed, recovery = await client.connect(url)
                assert [m["data"] for m in replayed] == [{"n": i} for i in range(4, 11)]
                assert (recovery["recovered"], recovery["missed"]) == (True, 7)
                await app.hub.publish(f"h:{name}", "live")
                assert (await client.recv())["data"] == "live"
                assert client.offsets == list(range(1, 12))
                await client.close()
                envelopes, position = await other.read_history(f"h:{name}", limit=2)
                assert [e["offset"] for e in envelopes] == [10, 11] and position.offset == 11
    finally:
        await other.stop()
