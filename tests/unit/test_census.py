"""Bounded SLA labels and the census of open cycles, and the metrics they make."""

from __future__ import annotations

import random

import pytest
from msgspec.structs import replace
from prometheus_client import CollectorRegistry, generate_latest

from slawatch.agents.timers import PartitionTimers
from slawatch.config.settings import Settings
from slawatch.core.census import NONE, OTHER, CycleCensus, LabelError, LabelFolder, soonest
from slawatch.core.events import (
    CallAbandoned,
    CallAnswered,
    CallQueued,
    ChatMessage,
    ChatStarted,
    InputEvent,
    MessageSent,
    TicketCreated,
)
from slawatch.core.keys import ConversationKind
from slawatch.core.kpi import KpiAccumulator
from slawatch.core.policy import builtin_policy
from slawatch.core.scheduler import MemoryStore, PartitionScheduler
from slawatch.core.sla import Metric
from slawatch.core.state import Context, ConversationState, Cycle
from slawatch.core.vocabulary import CHANNELS, PRIORITIES
from slawatch.streams.metrics import LiveCollector, Metrics, series_bound

T0 = 1_795_348_800_000


def context(**fields: object) -> Context:
    return Context(kind=ConversationKind.TICKET, conversation_id="T-1", **fields)  # type: ignore[arg-type]


# --- the folder ------------------------------------------------------------------------


def test_missing_values_are_none_and_values_beyond_the_cap_are_other() -> None:
    folder = LabelFolder(["department", "priority"], cap_per_label=2)
    assert folder.labels(context(department=None)) == (NONE, "normal")
    assert folder.labels(context(department="sales")) == ("sales", "normal")
    assert folder.labels(context(department="billing")) == ("billing", "normal")
    assert folder.labels(context(department="support")) == (OTHER, "normal")
    # Admitted values stay admitted; folded ones stay folded.
    assert folder.labels(context(department="sales")) == ("sales", "normal")
    assert folder.labels(context(department="support")) == (OTHER, "normal")


def test_allowed_values_fold_everything_else() -> None:
    folder = LabelFolder(["department"], allowed={"department": {"sales"}})
    assert folder.labels(context(department="sales")) == ("sales",)
    assert folder.labels(context(department="marketing")) == (OTHER,)


def test_combinations_beyond_the_cap_are_all_other() -> None:
    folder = LabelFolder(["department", "priority"], cap_per_label=10, max_combinations=2)
    assert folder.labels(context(department="a")) == ("a", "normal")
    assert folder.labels(context(department="b")) == ("b", "normal")
    assert folder.labels(context(department="a", priority="high")) == (OTHER, OTHER)
    assert folder.labels(context(department="b")) == ("b", "normal")
    assert folder.bound == 3


def test_a_very_long_value_is_other() -> None:
    folder = LabelFolder(["department"])
    assert folder.labels(context(department="x" * 65)) == (OTHER,)


@pytest.mark.parametrize(
    ("names", "kwargs", "message"),
    [
        (["ticket_id"], {}, "unknown label 'ticket_id'"),
        (["queue", "queue"], {}, "named twice"),
        (["queue"], {"cap_per_label": 0}, "at least 1"),
        (["queue"], {"allowed": {"department": {"a"}}}, "not a label"),
    ],
)
def test_a_label_set_that_cannot_work_is_refused(
    names: list[str], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(LabelError, match=message):
        LabelFolder(names, **kwargs)  # type: ignore[arg-type]


# --- the census ------------------------------------------------------------------------


def cycle(metric: Metric = Metric.FIRST_REPLY, **fields: object) -> Cycle:
    base = Cycle(
        metric=metric,
        number=1,
        started_ms=T0,
        target_ms=60_000,
        run_started_ms=T0,
        due_ms=T0 + 60_000,
        at_risk_ms=T0 + 45_000,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def state(key: str, *cycles: Cycle, **ctx: object) -> ConversationState:
    return ConversationState(key=key, context=context(**ctx), open_cycles=cycles)


def test_the_census_follows_a_cycle_from_open_to_at_risk_to_breached_to_stopped() -> None:
    census = CycleCensus(LabelFolder(["department"]))
    cell = (Metric.FIRST_REPLY, ("sales",))
    s0 = state("t:1", cycle(), department="sales")
    census.update(None, s0)
    assert census.counts[cell] == [1, 0, 0]
    s1 = replace(s0, open_cycles=(cycle(at_risk_sent=True),))
    census.update(s0, s1)
    assert census.counts[cell] == [1, 1, 0]
    assert [w.breached for w in census.watched.values()] == [False]
    s2 = replace(s1, open_cycles=(cycle(at_risk_sent=True, breach_sent=True),))
    census.update(s1, s2)
    assert census.counts[cell] == [1, 0, 1]
    assert [w.breached for w in census.watched.values()] == [True]
    s3 = replace(s2, open_cycles=())
    census.update(s2, s3)
    assert census.counts == {}
    assert census.watched == {}


def test_a_department_change_moves_the_open_cycle_between_labels() -> None:
    census = CycleCensus(LabelFolder(["department"]))
    before = state("t:1", cycle(), department="sales")
    census.update(None, before)
    after = replace(before, context=replace(before.context, department="billing"))
    census.update(before, after)
    assert census.counts == {(Metric.FIRST_REPLY, ("billing",)): [1, 0, 0]}


def test_a_paused_breached_cycle_is_counted_but_not_listed() -> None:
    census = CycleCensus(LabelFolder(["department"]))
    census.add(state("t:1", cycle(Metric.RESOLUTION, breach_sent=True, paused=True)))
    assert census.counts == {(Metric.RESOLUTION, (NONE,)): [1, 0, 1]}
    assert census.watched == {}


def test_soonest_lists_the_watched_cycles_of_every_partition_by_due() -> None:
    folder = LabelFolder(["department"])
    first, second = CycleCensus(folder), CycleCensus(folder)
    first.add(state("t:1", cycle(at_risk_sent=True, due_ms=T0 + 3)))
    second.add(state("t:2", cycle(at_risk_sent=True, due_ms=T0 + 1)))
    second.add(state("t:3", cycle(at_risk_sent=True, due_ms=T0 + 2)))
    assert [w.key for w in soonest([first, second], 2)] == ["t:2", "t:3"]


# --- 100,000 conversations with random attributes ----------------------------------------


def random_conversation(rng: random.Random, n: int, at_ms: int) -> list[InputEvent]:
    """The events of conversation ``n``: a ticket, a chat or a call with random attribute
    values (thousands of distinct departments, queues and tenants), half of them served."""
    common = {"schema_version": 1, "tenant": f"tenant-{rng.randrange(5000)}"}
    served = rng.random() < 0.5
    later = at_ms + rng.randrange(1, 4 * 3600_000)
    kind = n % 3
    if kind == 0:
        ticket = f"T-{n}"
        events: list[InputEvent] = [
            TicketCreated(
                **common,
                event_id=f"e{n}a",
                occurred_at=at_ms,
                ticket_id=ticket,
                channel=rng.choice(CHANNELS),
                priority=rng.choice(PRIORITIES),
                department=f"dept-{rng.randrange(5000)}",
                customer_group=f"group-{rng.randrange(5000)}",
            )
        ]
        if served:
            events.append(
                MessageSent(
                    **common,
                    event_id=f"e{n}b",
                    occurred_at=later,
                    ticket_id=ticket,
                    message_id=f"m{n}",
                    agent=f"agent-{rng.randrange(5000)}",
                    visibility="public",
                )
            )
        return events
    if kind == 1:
        chat = f"C-{n}"
        events = [
            ChatStarted(
                **common,
                event_id=f"e{n}a",
                occurred_at=at_ms,
                chat_id=chat,
                priority=rng.choice(PRIORITIES),
                department=f"dept-{rng.randrange(5000)}",
            ),
            ChatMessage(
                **common,
                event_id=f"e{n}b",
                occurred_at=at_ms + 1,
                chat_id=chat,
                message_id=f"m{n}",
                author="customer",
            ),
        ]
        if served:
            events.append(
                ChatMessage(
                    **common,
                    event_id=f"e{n}c",
                    occurred_at=at_ms + rng.randrange(1, 120_000),
                    chat_id=chat,
                    message_id=f"r{n}",
                    author="agent",
                    agent=f"agent-{rng.randrange(5000)}",
                )
            )
        return events
    call = f"Q-{n}"
    queue = f"queue-{rng.randrange(5000)}"
    wait = rng.randrange(1, 120_000)
    events = [
        CallQueued(
            **common,
            event_id=f"e{n}a",
            occurred_at=at_ms,
            call_id=call,
            queue=queue,
            priority=rng.choice(PRIORITIES),
            department=f"dept-{rng.randrange(5000)}",
        )
    ]
    if served:
        events.append(
            CallAnswered(
                **common,
                event_id=f"e{n}b",
                occurred_at=at_ms + wait,
                call_id=call,
                agent=f"agent-{rng.randrange(5000)}",
                queue=queue,
            )
        )
    elif rng.random() < 0.5:
        events.append(
            CallAbandoned(
                **common,
                event_id=f"e{n}b",
                occurred_at=at_ms + wait,
                call_id=call,
                queue=queue,
            )
        )
    return events


def series(registry: CollectorRegistry) -> list[str]:
    """The exposition's sample lines: one per series."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


class _Views:
    """The live views of the partitions driven here (a worker's SlaTimers in production)."""

    def __init__(self, partitions: list[PartitionTimers]) -> None:
        self.partitions = partitions

    def censuses(self) -> list[CycleCensus]:
        return [p.census for p in self.partitions]

    def kpi_snapshots(self) -> list:  # type: ignore[type-arg]
        return [p.kpis.snapshot(T0 + 6 * 3600_000) for p in self.partitions]

    def queue_settings(self, queue: str | None):  # type: ignore[no-untyped-def]
        return builtin_policy().queue_settings(queue)


def test_100000_conversations_with_random_attributes_stay_under_the_series_bound() -> None:
    """Every conversation through the timers' own tick and accounting (the agent's code
    path without the broker): tens of thousands of distinct departments, queues, tenants
    and customer groups come out as a bounded number of series."""
    settings = Settings(metric_labels="level,channel,department,queue,priority,tenant")
    registry = CollectorRegistry()
    metrics = Metrics(registry, settings)
    policy = builtin_policy()
    partitions = []
    for _ in range(4):
        partitions.append(
            PartitionTimers(
                PartitionScheduler(MemoryStore()),
                [],
                CycleCensus(metrics.sla_labels),
                KpiAccumulator(default=policy.queue_defaults, queues=policy.queues),
            )
        )
    for timers in partitions:
        timers.kpis.on_count = lambda q, w, a, s: metrics.queue_calls.labels(
            *metrics.queue_label.labels_of((q,)), "answered" if a else "abandoned"
        ).inc()
    registry.register(LiveCollector(_Views(partitions), metrics.sla_labels, metrics.queue_label))

    rng = random.Random(11)
    conversations = 100_000
    batch: list[list[InputEvent]] = [[] for _ in partitions]
    emitted = 0
    for n in range(conversations):
        # Two new conversations a second, over 14 h of event time.
        for event in random_conversation(rng, n, T0 + n * 500):
            batch[n % len(partitions)].append(event)
        if n % 1000 == 999 or n == conversations - 1:
            watermark = T0 + n * 500
            for timers, events in zip(partitions, batch, strict=True):
                events.sort(key=lambda e: e.occurred_at)
                due = [e for e in events if e.occurred_at <= watermark]
                tick = timers.scheduler.tick(due, watermark, policy, watermark)
                for key, state_, deadline in tick.persist:
                    timers.scheduler.store.put(key, state_, deadline)
                timers.account(due, tick)
                for effect in tick.effects:
                    metrics.count_sla_event(effect)
                emitted += len(tick.effects)
                events[:] = [e for e in events if e.occurred_at > watermark]

    lines = series(registry)
    bound = series_bound(settings)
    sla_tuples = {line.split("{", 1)[1] for line in lines if "slawatch_open_cycles{" in line}
    assert emitted > 100_000  # the run did emit (met, breached, at risk, ...)
    assert len(sla_tuples) > 100  # many combinations, not everything folded
    assert any('department="other"' in line for line in lines)
    assert any('queue="other"' in line for line in lines)
    assert len(lines) <= bound, f"{len(lines)} series > bound {bound}"
    # The bound is one Prometheus can take from a worker: under 40,000 series.
    assert bound < 40_000
    print(f"series at {conversations} conversations: {len(lines)} (bound {bound})")


def test_a_full_label_is_reported_once() -> None:
    full: list[str] = []
    folder = LabelFolder(["department"], cap_per_label=1, max_combinations=5, on_full=full.append)
    for department in ("a", "b", "c"):
        folder.labels(context(department=department))
    assert full == ["department"]
