"""The log sink's Prometheus metrics, against a given registry (the worker's, or the
standalone sink's). Labels are closed sets: outcomes and partition numbers."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)


class LogSinkMetrics:
    """The sink's metric bundle; like the worker's, without ``_created`` series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()
        self.records = Counter(
            "slawatch_log_sink_sla_events",
            "SLA events read by the log sink, by outcome: stored (folded into the SLA log), "
            "unreadable (not an SLA event record; skipped and logged).",
            ["outcome"],
            registry=registry,
        )
        self.rows = Counter(
            "slawatch_log_sink_rows_written",
            "SLA log rows written (inserted or updated; a cycle is one row).",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "slawatch_log_sink_batch_seconds",
            "Time to fold and write one batch of SLA events, commit included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.store_up = Gauge(
            "slawatch_log_sink_store_up",
            "1 while the log sink reaches its database; at 0, SLA events wait on the topic.",
            registry=registry,
        )
        self.lag = Gauge(
            "slawatch_log_sink_lag_messages",
            "SLA events on the partitions this sink holds not yet written, per partition.",
            ["partition"],
            registry=registry,
        )
