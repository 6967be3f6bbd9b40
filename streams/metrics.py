"""Every Prometheus metric slawatch exports, defined once, against a given registry.

Labels are bounded: topic names, event types and reason codes come from closed sets.
Nothing is ever labelled by ticket, chat or call id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The metric bundle of one worker. Build one per registry (tests: a fresh one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.input_messages = Counter(
            "slawatch_input_messages",
            "Input messages read, valid or not, by input topic.",
            ["topic"],
            registry=registry,
        )
        self.valid_events = Counter(
            "slawatch_valid_events",
            "Input events that passed validation, by event type.",
            ["type"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "slawatch_dead_letters",
            "Input messages refused and written to the dead-letter topic.",
            ["topic", "reason"],
            registry=registry,
        )
        self.normalised_batches = Counter(
            "slawatch_normalised_batches",
            "Batches written to the normalised stream.",
            registry=registry,
        )
        self.ingest_batch_seconds = Histogram(
            "slawatch_ingest_batch_seconds",
            "Time to validate, route and acknowledge one polled batch of input.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.ingest_lag = Gauge(
            "slawatch_ingest_lag_messages",
            "Input messages not yet read by this worker, by input topic.",
            ["topic"],
            registry=registry,
        )
        self.ingest_commit_failures = Counter(
            "slawatch_ingest_commit_failures",
            "Offset commits that failed (a rebalance moved the partition; input is re-read).",
            registry=registry,
        )
        self.ready = Gauge(
            "slawatch_worker_ready",
            "1 when the worker has its partitions and recovered its tables.",
            registry=registry,
        )
