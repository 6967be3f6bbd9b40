"""The notifier's Prometheus metrics, against a given registry (the worker's, or the
standalone notifier's). Labels are receiver names and channel types from the routing
file, and closed sets: never a ticket, chat or call id."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)


class NotifierMetrics:
    """The notifier's metric bundle; like the worker's, without ``_created`` series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()
        self.registry = registry
        self.sla_events = Counter(
            "slawatch_notifier_sla_events",
            "SLA events read by the notifier, by outcome: routed (planned; may send "
            "nothing), unreadable (not an SLA event record; skipped), failed (the planner "
            "raised; skipped and logged), too_old (decided before alert_max_age_s; skipped).",
            ["outcome"],
            registry=registry,
        )
        self.queued = Counter(
            "slawatch_notifications_queued",
            "Notifications planned and written to a receiver's outbox.",
            ["receiver", "channel", "kind"],
            registry=registry,
        )
        self.notifications = Counter(
            "slawatch_notifications",
            "Notifications by what became of them: sent (delivered, alone or in a batch), "
            "digested (delivered inside a digest message), retried (an attempt failed and "
            "another is scheduled), failed (dead-lettered), deduplicated (already in the "
            "notification log, not sent again).",
            ["receiver", "channel", "outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "slawatch_notifier_messages",
            "Requests or e-mails sent to receivers (a digest or a batch is one), by status.",
            ["receiver", "channel", "status"],
            registry=registry,
        )
        self.waiting = Gauge(
            "slawatch_notifications_waiting",
            "Notifications in a receiver's outbox: due, waiting for a retry or for the "
            "receiver's rate limit.",
            ["receiver", "channel"],
            registry=registry,
        )
        self.redis_up = Gauge(
            "slawatch_notifier_redis_up",
            "1 while the notifier reaches Redis; at 0, SLA events and notifications wait.",
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "slawatch_notification_delivery_seconds",
            "From the SLA event's decision (detected_at) to the receiver's acknowledgement.",
            ["channel"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=registry,
        )
        self.routing_reloads = Counter(
            "slawatch_notifier_routing_reloads",
            "Routing file reloads, by outcome (loaded, refused: the old routing stays).",
            ["outcome"],
            registry=registry,
        )
