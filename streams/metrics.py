"""Every Prometheus metric slawatch exports, defined once, against a given registry.

Labels are bounded: topic names, event types and reason codes come from closed sets, and
the SLA labels made of conversation attributes (level, department, queue, ...) go through
a :class:`~slawatch.core.census.LabelFolder`, which folds values beyond the configured
sets and caps into ``other``. Nothing is ever labelled by ticket, chat, call, requester or
agent id. The README's Metrics section lists every metric with its labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric as Metric_
from prometheus_client.registry import Collector

from slawatch.config.settings import Settings
from slawatch.core.census import CycleCensus, LabelFolder, add_up
from slawatch.core.effects import SlaEvent
from slawatch.core.kpi import KpiSnapshot, QueueSettings, WindowKpis
from slawatch.core.sla import Metric, SlaEventKind

log = logging.getLogger(__name__)

#: Buckets (seconds) of the ticket metrics' working times: a minute to a month.
TICKET_BUCKETS = (
    60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600,
    86400, 2 * 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400,
)  # fmt: skip
#: Buckets (seconds) of the chat-reply and call-answer times: a second to half an hour.
LIVE_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800)
#: Each metric's working-time histogram buckets.
TIME_BUCKETS: dict[Metric, tuple[float, ...]] = {
    Metric.FIRST_REPLY: TICKET_BUCKETS,
    Metric.NEXT_REPLY: TICKET_BUCKETS,
    Metric.RESOLUTION: TICKET_BUCKETS,
    Metric.CHAT_REPLY: LIVE_BUCKETS,
    Metric.CALL_ANSWER: LIVE_BUCKETS,
}


def _report_full(label: str) -> None:
    if label:
        log.warning(
            "metrics: label %r has reached SLAWATCH_METRIC_LABEL_CAP values; its new values "
            "are 'other' from now on in this worker, and workers may differ in which values "
            "kept their name: list them in SLAWATCH_METRIC_LABEL_VALUES",
            label,
        )
    else:
        log.warning(
            "metrics: SLAWATCH_METRIC_SERIES_CAP label combinations reached; new combinations "
            "are all 'other' from now on in this worker"
        )


def label_folders(settings: Settings) -> tuple[LabelFolder, LabelFolder, LabelFolder]:
    """The folders of the SLA labels, the histogram labels and the KPIs' queue label."""
    allowed = settings.metric_allowed_values()

    def folder(names: Sequence[str]) -> LabelFolder:
        return LabelFolder(
            names,
            allowed={n: v for n, v in allowed.items() if n in names},
            cap_per_label=settings.metric_label_cap,
            max_combinations=settings.metric_series_cap,
            on_full=_report_full,
        )

    return (
        folder(settings.metric_label_names()),
        folder(settings.metric_label_names(histogram=True)),
        folder(["queue"]),
    )


def label_tuples_bound(folder: LabelFolder, settings: Settings) -> int:
    """The most label tuples ``folder`` can give: each label takes at most its allowed
    values (or the cap) plus ``none`` and ``other``; the combinations are capped too."""
    allowed = settings.metric_allowed_values()
    product = 1
    for name in folder.names:
        product *= (len(allowed[name]) if name in allowed else settings.metric_label_cap) + 2
    return min(product, folder.bound)


#: Kinds of SLA events (counted by metric and kind).
_KINDS = len(SlaEventKind)
#: Series of one histogram label tuple: its buckets, +Inf, _sum and _count.
_HISTOGRAM_SERIES = max(len(b) for b in TIME_BUCKETS.values()) + 3
#: Per queue: 4 counters (2 + 2 + 1 + 2 series) and the gauges: 8 per window, plus waiting,
#: longest wait, target and goal.
_QUEUE_COUNTER_SERIES = 7


def series_bound(settings: Settings, windows: int = 3) -> int:
    """The most series the labelled SLA and KPI metrics of one worker can have (the
    README's Metrics section gives the same formula); the unlabelled and closed-label
    metrics add a few hundred more."""
    sla, histogram, queue = label_folders(settings)
    c = label_tuples_bound(sla, settings)
    h = label_tuples_bound(histogram, settings)
    q = label_tuples_bound(queue, settings)
    metrics = len(Metric)
    return (
        metrics * _KINDS * c  # slawatch_sla_events_total
        + 3 * metrics * c  # open, at-risk, breached-open gauges
        + metrics * 2 * h * _HISTOGRAM_SERIES  # the time histograms, by outcome
        + q * (_QUEUE_COUNTER_SERIES + 8 * windows + 4)  # the call-centre KPIs
    )


class Metrics:
    """The metric bundle of one worker. Build one per registry (tests: a fresh one).

    Counters and histograms export no ``_created`` series (turned off process-wide):
    they would add a third more series and no dashboard reads them.
    """

    def __init__(self, registry: CollectorRegistry, settings: Settings | None = None) -> None:
        disable_created_metrics()
        self.registry = registry
        self.sla_labels, self.histogram_labels, self.queue_label = label_folders(
            settings or Settings()
        )
        sla_names = list(self.sla_labels.names)
        self._event_children: dict[tuple[Metric, SlaEventKind, tuple[str, ...]], Any] = {}
        self._time_children: dict[tuple[Metric, SlaEventKind, tuple[str, ...]], Any] = {}
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
            "SLA events emitted, by metric, kind and the conversation's (folded) attributes.",
            ["metric", "kind", *sla_names],
            registry=registry,
        )
        self.times = {
            metric: Histogram(
                f"slawatch_{metric.value}_seconds",
                f"Working time of finished {metric.value.replace('_', ' ')} cycles "
                "(met or missed), by outcome.",
                ["outcome", *self.histogram_labels.names],
                buckets=TIME_BUCKETS[metric],
                registry=registry,
            )
            for metric in Metric
        }
        self.processing_delay = Histogram(
            "slawatch_processing_delay_seconds",
            "From an input event's occurred_at to the timers applying it, wall clock.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 3600.0),
            registry=registry,
        )
        self.queue_calls = Counter(
            "slawatch_queue_calls",
            "Calls that left a queue, by outcome (answered, abandoned); offered is the sum.",
            ["queue", "outcome"],
            registry=registry,
        )
        self.queue_calls_within = Counter(
            "slawatch_queue_calls_within_target",
            "Calls that left a queue within its target (waited at most the target), by outcome.",
            ["queue", "outcome"],
            registry=registry,
        )
        self.queue_short_abandoned = Counter(
            "slawatch_queue_short_abandoned_calls",
            "Calls abandoned before the short-abandon threshold.",
            ["queue"],
            registry=registry,
        )
        self.queue_wait = Counter(
            "slawatch_queue_wait_seconds",
            "Sum of the waits of the calls that left a queue, by outcome.",
            ["queue", "outcome"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "slawatch_consumer_lag_messages",
            "Messages not yet read by this worker's consumers, by group and topic.",
            ["group", "topic"],
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
            "Entries in this worker's timer queues: about one per conversation with an open cycle "
            "or a finished one waiting out its retention.",
            registry=registry,
        )
        self.timer_offsets_refetched = Counter(
            "slawatch_timer_offsets_refetched",
            "Normalised messages Faust skipped after a rebalance, read from the broker and "
            "applied in order by the timers (docs/OPERATIONS.md, Known workarounds).",
            registry=registry,
        )
        self.stood_still = Counter(
            "slawatch_worker_stood_still",
            "Times this worker's process stood still for longer than half the session "
            "timeout (SIGSTOP, a paused VM, a starved host) and its timers waited for the "
            "group's word before applying more (streams/membership.py).",
            registry=registry,
        )
        self.dropped_after_pause = Counter(
            "slawatch_timer_messages_dropped_after_pause",
            "Normalised messages not applied because the group had given their partition to "
            "another worker while this one stood still.",
            registry=registry,
        )
        self.states_expired = Counter(
            "slawatch_states_expired",
            "Finished conversations' states removed after their retention (a tombstone each "
            "on the state changelog).",
            registry=registry,
        )
        self.events_after_retention = Counter(
            "slawatch_events_after_retention",
            "Events refused because they are older than the state retention and about a "
            "conversation this worker does not hold (it may have been removed).",
            registry=registry,
        )
        self.changelog_behind = Gauge(
            "slawatch_state_changelog_behind",
            "State changelog records this worker has still to read: for the partitions it "
            "owns while they recover (copy=active), for the standby copies it keeps "
            "(copy=standby; SLAWATCH_TABLE_STANDBY_REPLICAS).",
            ["copy"],
            registry=registry,
        )
        self.conversations = Gauge(
            "slawatch_conversations",
            "Conversation states held in the table partitions whose timers this worker "
            "runs (standby copies not counted).",
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

    def count_sla_event(self, event: SlaEvent) -> None:
        """Count an emitted SLA event: by kind and labels, its working time when final,
        its detection delay when an alert.

        The labelled children are kept by (metric, kind, labels): prometheus-client's
        ``labels()`` checks and joins its arguments on every call (about 8 µs), and the
        children are as bounded as the label tuples.
        """
        kind, metric, context = event.kind, event.metric, event.context
        key = (metric, kind, self.sla_labels.labels(context))
        counter = self._event_children.get(key)
        if counter is None:
            counter = self.sla_events.labels(metric.value, kind.value, *key[2])
            self._event_children[key] = counter
        counter.inc()
        if kind is SlaEventKind.MET or kind is SlaEventKind.MISSED:
            time_key = (metric, kind, self.histogram_labels.labels(context))
            histogram = self._time_children.get(time_key)
            if histogram is None:
                histogram = self.times[metric].labels(kind.value, *time_key[2])
                self._time_children[time_key] = histogram
            histogram.observe(event.elapsed_ms / 1000)
        elif kind is SlaEventKind.AT_RISK or kind is SlaEventKind.BREACHED:
            self.detection_delay.labels(kind.value).observe(max(0, event.detection_delay_ms) / 1000)


class LiveViews(Protocol):
    """What the live gauges are made of: this worker's partitions, read at scrape time."""

    def censuses(self) -> list[CycleCensus]:
        """The open-cycle census of every partition this worker holds."""
        ...

    def kpi_snapshots(self) -> list[KpiSnapshot]:
        """Every held partition's call-centre KPIs now."""
        ...

    def queue_settings(self, queue: str | None) -> QueueSettings:
        """The policy's target and goal for ``queue`` (None: the defaults)."""
        ...


_WAIT_OUTCOMES = (("answered", True), ("abandoned", False))


class LiveCollector(Collector):
    """The gauges computed at scrape time from the partitions this worker holds: open,
    at-risk and breached cycles by label, and the call-centre KPIs by queue and window.

    Each worker reports only its partitions, so sums over workers add up, and a moved
    partition is reported by its new owner only.
    """

    def __init__(self, views: LiveViews, sla_labels: LabelFolder, queue_label: LabelFolder):
        self._views = views
        self._sla_names = list(sla_labels.names)
        self._queue_label = queue_label

    def describe(self) -> list[Metric_]:
        return []  # collected on demand (the registry must not call collect() to describe)

    def collect(self) -> Iterator[Metric_]:
        yield from self._cycles()
        yield from self._kpis()

    def _cycles(self) -> Iterator[Metric_]:
        names = ["metric", *self._sla_names]
        families = [
            GaugeMetricFamily(
                "slawatch_open_cycles",
                "Open SLA cycles (paused included) in this worker's partitions.",
                labels=names,
            ),
            GaugeMetricFamily(
                "slawatch_at_risk_cycles",
                "Open SLA cycles declared at risk and not yet breached.",
                labels=names,
            ),
            GaugeMetricFamily(
                "slawatch_breached_open_cycles",
                "Open SLA cycles already breached (still waiting for their stop).",
                labels=names,
            ),
        ]
        for (metric, labels), cell in sorted(add_up(self._views.censuses()).items()):
            values = [metric.value, *labels]
            for family, count in zip(families, cell, strict=True):
                family.add_metric(values, count)
        yield from families

    def _kpis(self) -> Iterator[Metric_]:
        by_queue: dict[str, dict[str, WindowKpis]] = {}
        waiting: dict[str, int] = {}
        longest: dict[str, float] = {}
        configured: dict[str, QueueSettings] = {}
        fold = self._queue_label.labels_of
        for snapshot in self._views.kpi_snapshots():
            for name, kpis in snapshot.queues.items():
                (queue,) = fold((name,))
                own = name if queue == name else None  # 'other' gets the defaults
                configured.setdefault(queue, self._views.queue_settings(own))
                windows = by_queue.setdefault(queue, {})
                for window, figures in kpis.windows.items():
                    windows[window] = windows[window] + figures if window in windows else figures
                waiting[queue] = waiting.get(queue, 0) + kpis.waiting
                if kpis.longest_wait_ms is not None:
                    longest[queue] = max(longest.get(queue, 0.0), kpis.longest_wait_ms / 1000)
        calls = GaugeMetricFamily(
            "slawatch_queue_window_calls",
            "Calls that left the queue in the window (day: the queue's calendar day), by "
            "outcome; offered is the sum over outcomes.",
            labels=["queue", "window", "outcome"],
        )
        within = GaugeMetricFamily(
            "slawatch_queue_window_calls_within_target",
            "Calls of the window that left the queue within its target, by outcome.",
            labels=["queue", "window", "outcome"],
        )
        short = GaugeMetricFamily(
            "slawatch_queue_window_short_abandoned_calls",
            "Calls of the window abandoned before the short-abandon threshold.",
            labels=["queue", "window"],
        )
        waits = GaugeMetricFamily(
            "slawatch_queue_window_wait_seconds",
            "Sum of the waits of the window's calls, by outcome (ASA = answered sum / "
            "answered calls).",
            labels=["queue", "window", "outcome"],
        )
        max_abandon = GaugeMetricFamily(
            "slawatch_queue_window_max_abandon_wait_seconds",
            "Longest wait of an abandoned call in the window (combine workers with max).",
            labels=["queue", "window"],
        )
        for queue, windows in sorted(by_queue.items()):
            for window, f in windows.items():
                calls.add_metric([queue, window, "answered"], f.answered)
                calls.add_metric([queue, window, "abandoned"], f.abandoned)
                within.add_metric([queue, window, "answered"], f.answered_within)
                within.add_metric([queue, window, "abandoned"], f.abandoned_within)
                short.add_metric([queue, window], f.short_abandoned)
                waits.add_metric([queue, window, "answered"], f.answer_wait_ms / 1000)
                waits.add_metric([queue, window, "abandoned"], f.abandon_wait_ms / 1000)
                if f.max_abandon_wait_ms is not None:
                    max_abandon.add_metric([queue, window], f.max_abandon_wait_ms / 1000)
        waiting_now = GaugeMetricFamily(
            "slawatch_queue_waiting_calls", "Calls waiting in the queue now.", labels=["queue"]
        )
        longest_now = GaugeMetricFamily(
            "slawatch_queue_longest_wait_seconds",
            "How long the longest-waiting call in the queue has waited (combine with max).",
            labels=["queue"],
        )
        target = GaugeMetricFamily(
            "slawatch_queue_target_seconds",
            "The queue's service-level target from the policy (80/20: 20).",
            labels=["queue"],
        )
        goal = GaugeMetricFamily(
            "slawatch_queue_service_level_goal_ratio",
            "The share of calls the policy wants within the target (80/20: 0.8).",
            labels=["queue"],
        )
        for queue in sorted(by_queue):
            waiting_now.add_metric([queue], waiting[queue])
            longest_now.add_metric([queue], longest.get(queue, 0.0))
            target.add_metric([queue], configured[queue].target_ms / 1000)
            goal.add_metric([queue], configured[queue].goal)
        yield from (calls, within, short, waits, max_abandon, waiting_now, longest_now)
        yield from (target, goal)
