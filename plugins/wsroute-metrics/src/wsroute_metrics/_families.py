"""Every metric family the plugin exports: the one list the code and the docs are built from.

``docs/observability.md`` contains :func:`markdown_table` between two marker
lines, and a test regenerates it and compares, so the documented list cannot
drift from the exported one.
"""

from __future__ import annotations

import attrs

__all__ = ["FAMILIES", "Family", "markdown_table"]


@attrs.frozen
class Family:
    """One metric family.

    Attributes:
        name: the exposed name; counters end in ``_total`` (Prometheus naming).
        kind: ``counter``, ``gauge`` or ``histogram``.
        help: the HELP text.
        labels: label names; every value is bounded (a route pattern, a status,
            a close code, a fixed reason), never a raw path, user or address.
        source: where the value comes from (for the docs).
        multiprocess_mode: how a gauge combines over workers (prometheus_client's
            ``multiprocess_mode``); empty for counters and histograms (summed).
    """

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    source: str = ""
    multiprocess_mode: str = ""


FAMILIES: tuple[Family, ...] = (
    Family("wsroute_handshakes_total", "counter", "Opening handshakes answered, by route and HTTP status.",
           ("route", "status"), "the status each handshake sent (101, 404, 4xx/5xx, plain HTTP, 503 while stopping)"),
    Family("wsroute_connections", "gauge", "WebSocket connections open now.", ("route",),
           "the session's count (TrafficCounters.open)", "livesum"),
    Family("wsroute_connection_duration_seconds", "histogram", "How long connections stayed open, in seconds.",
           ("route",), "TCP accept to close of upgraded connections, bucketed by the connection"),
    Family("wsroute_closes_total", "counter", "Connections closed, by route and close code.", ("route", "code"),
           "counted by the connection (1006: lost without a closing handshake)"),
    Family("wsroute_messages_received_total", "counter", "WebSocket messages received.", ("route",),
           "counted by the connection (app.count_traffic()), also in function handlers"),
    Family("wsroute_received_bytes_total", "counter", "Payload bytes of data frames received.", ("route",),
           "counted by the connection"),
    Family("wsroute_messages_sent_total", "counter", "WebSocket messages sent (handlers and hub).", ("route",),
           "counted by the connection"),
    Family("wsroute_sent_bytes_total", "counter", "Payload bytes of data frames sent.", ("route",),
           "counted by the connection"),
    Family("wsroute_handler_failures_total", "counter", "Handlers (or their spawned tasks) that raised.",
           ("route", "exception"), "wsroute_handle_exception hook; exception is the class name"),
    Family("wsroute_first_message_rejections_total", "counter",
           "Connections closed because their first message chose no route.", ("reason",),
           "app.first_message_rejections (binary, undecodable, not_object, no_type, unknown_type, timeout)"),
    Family("wsroute_hub_delivered_total", "counter", "Frames the hub wrote to connections.", (),
           "app.hub.stats.delivered"),
    Family("wsroute_hub_queued_total", "counter", "Frames that waited in a slow connection's outbox.", (),
           "app.hub.stats.queued"),
    Family("wsroute_hub_dropped_total", "counter", "Frames discarded by a slow-consumer policy.", ("policy",),
           "app.hub.stats.dropped_by_policy"),
    Family("wsroute_slow_consumer_disconnects_total", "counter", "Connections closed with 1013 for being slow.",
           (), "app.hub.stats.slow_disconnects"),
    Family("wsroute_broker_publish_failures_total", "counter", "Publishes that failed because the broker did.", (),
           "app.hub.stats.publish_failures"),
    Family("wsroute_broker_up", "gauge", "1 while the broker's backend is reachable, else 0.", (),
           "app.hub.broker.online (min over workers)", "livemin"),
    Family("wsroute_broker_reconnects_total", "counter", "Times the broker came back after an outage.", (),
           "app.hub.broker.reconnects"),
    Family("wsroute_event_loop_lag_seconds", "gauge", "How late the event loop ran a timer, last measured.", (),
           "wsroute.LagMonitor (max over workers)", "livemax"),
    Family("wsroute_limit_refusals_total", "counter", "Handshakes or messages refused by the limits.",
           ("route", "reason"), "app.stats().refusals, when the app has limits"),
)


def markdown_table() -> str:
    """The families as a Markdown table, as in ``docs/observability.md``."""
    lines = ["| metric | type | labels | meaning | from |", "| --- | --- | --- | --- | --- |"]
    for family in FAMILIES:
        labels = ", ".join(f"`{label}`" for label in family.labels) or "-"
        lines.append(f"| `{family.name}` | {family.kind} | {labels} | {family.help} | {family.source} |")
    return "\n".join(lines) + "\n"
