"""One app's metrics: the core's counters, copied into prometheus_client at scrape time.

Cost, by design (counted by ``python -m benchmarks.instructions --servers
full,metrics``, which measures the app with and without this plugin in one
run):

* per message: nothing here. Messages and bytes are counted by the
  connection class the app switches to (``app.count_traffic()``, one
  attribute addition per frame) and the hub keeps its own totals
  (``app.hub.stats``);
* per handshake and per connection: nothing here either. The same
  connection class counts the handshake's status, the close code and the
  duration into plain per-route integers (:mod:`wsroute.traffic`); a hook
  call plus prometheus_client's locked, labelled updates cost about 13 % of
  a whole handshake when this plugin did them itself. The plugin declares
  its one path (``wsroute_paths``), so wsroute calls
  :meth:`Exporter.wsroute_process_request` only for requests to it;
* per handler failure: one hook call and one counter update;
* per scrape: :meth:`Exporter.sync` copies the core's running totals into
  prometheus_client's metrics (the difference since the last copy), then the
  registry is rendered. With several workers (prometheus_client's
  multiprocess mode, see :mod:`wsroute.multiproc`) every worker also syncs
  every ``sync_interval`` seconds so that a scrape answered by another worker
  sums fresh values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

import wsroute
from wsroute import hookimpl
from wsroute.traffic import UNMATCHED

from ._config import Config
from ._families import FAMILIES, Family
from ._sideport import SidePort

__all__ = ["UNMATCHED", "Exporter", "add_to_histogram", "limit_refusals", "route_label"]

logger = logging.getLogger("wsroute.metrics")

_METHODS = ("GET", "HEAD")
_CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST


def route_label(conn: Any) -> str:
    """The bounded ``route`` label.

    The route's name; the path pattern before a first message chose a route;
    :data:`UNMATCHED` for requests no route took.
    """
    route = conn.route
    if route is not None:
        return str(route.label)
    group = getattr(conn, "group", None)
    if group is not None:
        return str(group.pattern.source)
    return UNMATCHED


def limit_refusals(app: Any) -> Mapping[tuple[str, str], int]:
    """ADAPTER POINT for the limits (issue 11): ``{(route pattern, reason): count}``.

    Reads ``app.stats().refusals`` when the app has a ``stats()`` method (added
    with the limits); an app without one has refused nothing, so this returns
    an empty mapping. This is the one place to change if that API's shape does.
    """
    stats = getattr(app, "stats", None)
    if not callable(stats):
        return {}
    refusals = getattr(stats(), "refusals", None)
    return refusals if isinstance(refusals, Mapping) else {}


def add_to_histogram(child: Any, bucket_counts: Sequence[int], amount: float) -> None:
    """Add already-bucketed observations to a prometheus_client histogram child.

    prometheus_client's public API adds one observation at a time
    (``observe``), which would cost a locked update per connection on the
    handshake path; the core buckets durations itself, so a scrape adds
    whole counts. This uses the two attributes ``observe`` itself updates:
    ``_buckets`` (one value per upper bound, not cumulative, ``+Inf`` last)
    and ``_sum``. They have kept their names and meaning since
    prometheus_client 0.4; a test compares the result with ``observe``'s,
    and this fails loudly (``AttributeError``/``ValueError``) if they change.

    Args:
        child: a labelled ``Histogram`` child whose upper bounds are the
            core's bounds plus ``+Inf``.
        bucket_counts: observations to add per bucket, ``len(child._buckets)`` of them.
        amount: the sum of those observations.

    Raises:
        ValueError: the bucket counts do not match the histogram's buckets.
    """
    values = child._buckets
    if len(values) != len(bucket_counts):
        raise ValueError(f"{len(bucket_counts)} bucket counts for a histogram of {len(values)} buckets")
    for value, count in zip(values, bucket_counts, strict=True):
        if count:
            value.inc(count)
    child._sum.inc(amount)


def _make(family: Family, registry: CollectorRegistry | None, buckets: tuple[float, ...]) -> Any:
    """A prometheus_client metric for ``family`` (counters are named without ``_total``: the library adds it)."""
    if family.kind == "counter":
        return Counter(family.name.removesuffix("_total"), family.help, family.labels, registry=registry)
    if family.kind == "gauge":
        return Gauge(family.name, family.help, family.labels, registry=registry,
                     multiprocess_mode=family.multiprocess_mode or "all")
    return Histogram(family.name, family.help, family.labels, registry=registry, buckets=buckets)


class Exporter:
    """The metrics of one app, registered with that app by ``wsroute_configure``.

    Args:
        config: the validated settings.
        app: the app; its traffic counting is switched on here.

    Attributes:
        multiprocess: whether ``PROMETHEUS_MULTIPROC_DIR`` is set (``--workers N``):
            scrapes then sum the files of every worker.
        registry: this app's registry (single process), or None (multiprocess:
            the values live in the shared directory).
    """

    def __init__(self, config: Config, app: wsroute.App) -> None:
        self.config = config
        self.app = app
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = None if self.multiprocess else CollectorRegistry()
        self.metrics: dict[str, Any] = {f.name: _make(f, self.registry, config.duration_buckets) for f in FAMILIES}
        self.traffic = app.count_traffic(duration_buckets=config.duration_buckets)
        #: The only path ``wsroute_process_request`` answers (none with a port of its own):
        #: wsroute skips the hook for every other request when all such plugins declare theirs.
        self.wsroute_paths = frozenset() if config.port is not None else frozenset({config.path})
        self.monitor: wsroute.LagMonitor | None = None
        self.side_port: SidePort | None = None
        self._last: dict[tuple[str, tuple[str, ...]], int] = {}
        self._last_durations: dict[str, tuple[list[int], float]] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._sync_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<wsroute-metrics exporter {self.config.path}>"

    def child(self, name: str, labels: tuple[str, ...]) -> Any:
        """The labelled child of metric ``name``, cached (labels are bounded)."""
        key = (name, labels)
        found = self._children.get(key)
        if found is None:
            metric = self.metrics[name]
            found = self._children[key] = metric.labels(*labels) if labels else metric
        return found

    # -- start-up and shutdown ------------------------------------------------

    @hookimpl
    async def wsroute_startup(self, app: wsroute.App) -> None:
        """Start the lag monitor, the multiprocess sync and the separate port (if configured)."""
        loop = asyncio.get_running_loop()
        self.monitor = wsroute.LagMonitor(loop, self.config.lag_interval * 2, warn=False)
        self.monitor.start()
        if self.multiprocess:
            self._sync_task = loop.create_task(self._sync_forever(), name="wsroute-metrics sync")
        if self.config.port is not None:
            self.side_port = SidePort(self.config.host, self.config.port, self.config.path, self.exposition)
            await self.side_port.start(reuse_port=self.multiprocess)
            logger.info("metrics on http://%s:%d%s", self.config.host, self.side_port.port, self.config.path)

    @hookimpl
    async def wsroute_shutdown(self, app: wsroute.App) -> None:
        """Stop what :meth:`wsroute_startup` started; a last sync so nothing counted is lost."""
        if self.monitor is not None:
            self.monitor.stop()
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        if self.side_port is not None:
            await self.side_port.stop()
            self.side_port = None
        self.sync()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.sync_interval)
            try:
                self.sync()
            except Exception:  # a metrics bug must not stop the worker
                logger.exception("copying metrics to the shared directory failed")

    # -- the endpoint ----------------------------------------------------------

    @hookimpl
    def wsroute_process_request(self, app: wsroute.App, conn: wsroute.Connection, request: wsroute.Request) -> Any:
        """Answer ``GET``/``HEAD`` on the metrics path (when served on the app's port); None otherwise."""
        if self.config.port is not None:
            return None
        path = request.path
        if "?" in path:
            path = path.partition("?")[0]
        if "%" in path:
            path = conn.decoded_path
        if path != self.config.path:
            return None
        if request.method not in _METHODS:
            response = conn.respond(405, "Method Not Allowed\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        response = conn.respond(200, self.exposition().decode())  # the format is UTF-8 text
        del response.headers["Content-Type"]  # headers[k] = v appends: delete first to replace
        response.headers["Content-Type"] = _CONTENT_TYPE
        if request.method == "HEAD":
            response.body = b""  # Content-Length still tells the size of the GET body
        response.headers["Cache-Control"] = "no-store"
        return response

    def exposition(self) -> bytes:
        """Sync, then render the text exposition format (summed over workers in multiprocess mode)."""
        self.sync()
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)

    # -- per handler failure --------------------------------------------------

    @hookimpl
    def wsroute_handle_exception(self, app: wsroute.App, conn: wsroute.Connection, exc: BaseException) -> None:
        """Count the failure by route and exception class; leaves the close code to others (returns None)."""
        self.child("wsroute_handler_failures_total", (route_label(conn), type(exc).__name__)).inc()

    # -- the core's counters, copied at scrape time ----------------------------

    def _total(self, name: str, labels: tuple[str, ...], total: int) -> None:
        """Bring counter ``name`` up to the core's running ``total``."""
        key = (name, labels)
        delta = total - self._last.get(key, 0)
        if delta > 0:
            self.child(name, labels).inc(delta)
            self._last[key] = total

    def _durations(self, label: str, buckets: Sequence[int], total: float) -> None:
        """Bring the duration histogram of ``label`` up to the core's bucket counts and sum."""
        if not total and not any(buckets):
            return
        last_buckets, last_total = self._last_durations.get(label, ((0,) * len(buckets), 0.0))
        if list(buckets) == list(last_buckets):
            return
        add_to_histogram(self.child("wsroute_connection_duration_seconds", (label,)),
                         [now - then for now, then in zip(buckets, last_buckets, strict=True)], total - last_total)
        self._last_durations[label] = (list(buckets), total)

    def sync(self) -> None:
        """Copy the core's running totals (traffic, hub, broker, rejections, limits, lag) into the metrics."""
        app = self.app
        for label, counters in self.traffic.snapshot().items():
            labels = (label,)
            for status, count in counters.handshakes.items():
                self._total("wsroute_handshakes_total", (label, str(int(status))), count)
            for code, count in counters.closes.items():
                self._total("wsroute_closes_total", (label, str(int(code))), count)
            self._durations(label, counters.durations, counters.duration_sum)
            self._total("wsroute_messages_received_total", labels, counters.messages_received)
            self._total("wsroute_received_bytes_total", labels, counters.bytes_received)
            self._total("wsroute_messages_sent_total", labels, counters.messages_sent)
            self._total("wsroute_sent_bytes_total", labels, counters.bytes_sent)
            if label != UNMATCHED:
                self.child("wsroute_connections", labels).set(counters.open)
        stats = app.hub.stats
        self._total("wsroute_hub_delivered_total", (), stats.delivered)
        self._total("wsroute_hub_queued_total", (), stats.queued)
        for policy, dropped in list(stats.dropped_by_policy.items()):
            self._total("wsroute_hub_dropped_total", (policy,), dropped)
        self._total("wsroute_slow_consumer_disconnects_total", (), stats.slow_disconnects)
        self._total("wsroute_broker_publish_failures_total", (), stats.publish_failures)
        broker = app.hub.broker
        self.child("wsroute_broker_up", ()).set(1 if broker.online else 0)
        self._total("wsroute_broker_reconnects_total", (), broker.reconnects)
        for reason, count in list(app.first_message_rejections.items()):
            self._total("wsroute_first_message_rejections_total", (reason,), count)
        for (route, reason), count in list(limit_refusals(app).items()):
            self._total("wsroute_limit_refusals_total", (route, reason), count)
        if self.monitor is not None:
            self.child("wsroute_event_loop_lag_seconds", ()).set(self.monitor.lag)
