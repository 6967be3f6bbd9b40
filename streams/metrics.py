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
        self.timer_events = Counter(
            "slawatch_timer_events",
            "Normalised events applied to conversation states by the timers.",
            registry=registry,
        )
        self.sla_events = Counter(
            "slawatch_sla_events",
            "SLA events emitted, by metric and kind.",
            ["metric", "kind"],
            registry=registry,
        )
        self.sla_duplicates_suppressed = Counter(
            "slawatch_sla_duplicates_suppressed",
            "SLA events not emitted again because they were emitted before (restarts).",
            registry=registry,
        )
        self.detection_delay = Histogram(
            "slawatch_detection_delay_seconds",
            "From an at-risk instant or due to the event saying so, wall clock.",
            ["kind"],
            buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 15.0, 60.0, 300.0),
            registry=registry,
        )
        self.timer_queue = Gauge(
            "slawatch_timer_queue_entries",
            "Entries in this worker's timer queues (about one per open conversation).",
            registry=registry,
        )
        self.conversations = Gauge(
            "slawatch_conversations",
            "Conversation states held in this worker's table partitions.",
            registry=registry,
        )
        self.watermark_lag = Gauge(
            "slawatch_watermark_lag_seconds",
            "How far the oldest event-time watermark of this worker trails the wall clock.",
            registry=registry,
        )
        self.timer_batch_seconds = Histogram(
            "slawatch_timer_batch_seconds",
            "Time to apply one normalised batch and fire the timers it makes due.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self.timer_errors = Counter(
            "slawatch_timer_errors",
            "Normalised messages the timers could not read, and events the SLA state machine "
            "refused (one that cannot belong to its conversation), skipped.",
            registry=registry,
        )
        self.policy_info = Gauge(
            "slawatch_policy_info",
            "1 for the SLA policy version in force, 0 for versions it replaced.",
            ["version"],
            registry=registry,
        )
        self.policy_reloads = Counter(
            "slawatch_policy_reloads",
            "Published SLA policies this worker switched to.",
            registry=registry,
        )
        self.policy_rejected = Counter(
            "slawatch_policy_rejected",
            "Published SLA policies this worker rejected (the one in force stayed).",
            registry=registry,
        )
        self.ready = Gauge(
            "slawatch_worker_ready",
            "1 when the worker has its partitions and recovered its tables.",
            registry=registry,
        )
