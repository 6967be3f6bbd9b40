"""The tick both the stream and replay run: slawatch/core/scheduler.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from slawatch.core.clock import ManualClock
from slawatch.core.machine import apply
from slawatch.core.scheduler import MemoryStore, PartitionScheduler, Tick
from slawatch.core.sla import Metric
from slawatch.core.state import copy_state
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.schemas import EventValidator, Rejection
from tests.samples import event
from tests.unit.sla_harness import POLICY, T0, M, S

_validator = EventValidator(
    max_event_bytes=1 << 20, max_future_skew_ms=1 << 50, clock=ManualClock(T0)
)


def ev(type_: str, conversation: str, at_s: float, n: int, **fields: Any) -> Any:
    """A validated event of ``type_`` for ticket/chat/call ``conversation``."""
    raw = event(type_, n, occurred_at=T0 + int(at_s * 1000), **fields)
    for id_field in ("ticket_id", "chat_id", "call_id"):
        if id_field in raw:
            raw[id_field] = conversation
    result = _validator.validate(orjson.dumps(raw), None)
    assert not isinstance(result, Rejection), result
    return result


def run(scheduler: PartitionScheduler, events: list[Any], watermark_ms: int | None) -> Tick:
    """A tick, persisted as the agent and replay persist it."""
    tick = scheduler.tick(events, watermark_ms, POLICY, now_ms=watermark_ms or T0)
    for key, state, deadline_ms in tick.persist:
        scheduler.store.put(key, state, deadline_ms)
    return tick


def kinds(tick: Tick) -> list[str]:
    return [f"{e.key}:{e.metric.value}:{e.kind.value}" for e in tick.effects]


def ids(tick: Tick) -> list[str]:
    """The stable SLA event ids (conversation, metric, cycle, kind)."""
    return [e.event_id for e in tick.effects]


def test_nothing_is_declared_without_a_watermark() -> None:
    scheduler = PartitionScheduler(MemoryStore())
    run(scheduler, [ev("ticket.created", "T-1", 0, 1)], None)
    assert kinds(run(scheduler, [], None)) == []
    assert len(scheduler) == 1  # the first-reply at-risk instant is queued


def test_a_tick_pops_only_what_the_watermark_makes_due() -> None:
    scheduler = PartitionScheduler(MemoryStore())
    run(scheduler, [ev("ticket.created", "T-1", 0, 1), ev("ticket.created", "T-2", 300, 2)], None)
    # First reply: 10 min target, at risk at 75 % (7.5 min).
    assert kinds(run(scheduler, [], T0 + 7 * M)) == []
    assert kinds(run(scheduler, [], T0 + 8 * M)) == ["ticket::T-1:first_reply:at_risk"]
    tick = run(scheduler, [], T0 + 10 * M)
    assert kinds(tick) == ["ticket::T-1:first_reply:breached"]
    assert kinds(run(scheduler, [], T0 + 13 * M)) == ["ticket::T-2:first_reply:at_risk"]


def test_a_stale_queue_entry_is_skipped_by_its_deadline() -> None:
    scheduler = PartitionScheduler(MemoryStore())
    run(scheduler, [ev("call.queued", "Q-1", 0, 1)], None)  # at risk at 15 s, due 20 s
    run(scheduler, [ev("call.answered", "Q-1", 5, 2)], None)  # met: nothing pending
    tick = run(scheduler, [], T0 + 60 * S)
    assert tick.effects == []
    assert tick.stale == 1  # the queued at-risk instant belonged to the answered wait
    assert len(scheduler) == 0


def test_each_touched_state_is_persisted_once_per_tick() -> None:
    scheduler = PartitionScheduler(MemoryStore())
    events = [
        ev("ticket.created", "T-1", 0, 1),
        ev("message.sent", "T-1", 60, 2),
        ev("ticket.created", "T-2", 0, 3),
    ]
    tick = run(scheduler, events, T0 + 2 * M)
    assert sorted(key for key, _, _ in tick.persist) == ["ticket::T-1", "ticket::T-2"]
    stored = scheduler.store.get("ticket::T-1")
    assert stored is not None
    state, deadline = stored
    assert state.last_stopped(Metric.FIRST_REPLY) is not None
    assert deadline is not None  # resolution is still running


@dataclass(frozen=True)
class _Foreign:
    """Not an event the machine knows, aimed at a ticket's key."""

    key: str = "ticket::T-1"
    conversation_id: str = "T-1"
    type: str = "call.answered"
    event_id: str = "foreign-1"
    occurred_at: int = T0 + 30 * S
    tenant: str | None = None


def test_a_refused_event_skips_only_itself() -> None:
    scheduler = PartitionScheduler(MemoryStore())
    run(scheduler, [ev("ticket.created", "T-1", 0, 1)], None)
    wrong = _Foreign()
    tick = run(scheduler, [wrong, ev("message.sent", "T-1", 60, 3)], None)
    assert [r.event for r in tick.refused] == [wrong]
    assert kinds(tick) == ["ticket::T-1:first_reply:met"]  # the stored state was kept


def test_a_rebuilt_scheduler_fires_what_the_store_holds() -> None:
    store = MemoryStore()
    first = PartitionScheduler(store)
    run(first, [ev("chat.started", "C-1", 0, 1), ev("chat.message", "C-1", 1, 2)], None)
    successor = PartitionScheduler(store)  # a restart, or another worker after a rebalance
    assert successor.rebuild() == 1
    assert kinds(run(successor, [], T0 + 2 * M)) == [
        "chat::C-1:chat_reply:at_risk",
        "chat::C-1:chat_reply:breached",
    ]


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_batches_and_watermarks_do_not_change_the_outcome(batch: int) -> None:
    """Stream-shaped ticks (small batches, a watermark each) end where one replay-shaped
    pass ends: the same final verdicts, and every breach declared once."""
    profile = TrafficProfile(rate_eps=2.0, time_scale=1.0, malformed_share=0.0)
    events = []
    for message in generate_traffic(profile, seed=5, start_ms=T0, duration_s=1800):
        result = _validator.validate(message.value, None)
        if not isinstance(result, Rejection):
            events.append(result)
    events.sort(key=lambda e: e.occurred_at)
    assert len(events) > 1000
    end_ms = events[-1].occurred_at + 1

    replay = PartitionScheduler(MemoryStore())
    offline = ids(run(replay, events, None)) + ids(run(replay, [], end_ms))

    stream = PartitionScheduler(MemoryStore())
    online: list[str] = []
    for i in range(0, len(events), batch):
        chunk = events[i : i + batch]
        online += ids(run(stream, chunk, chunk[0].occurred_at - 1))
    online += ids(run(stream, [], end_ms))

    finals = ("|met", "|missed", "|cancelled")
    assert sorted(k for k in online if k.endswith(finals)) == sorted(
        k for k in offline if k.endswith(finals)
    )
    breached_online = [k for k in online if k.endswith("|breached")]
    assert len(breached_online) == len(set(breached_online))  # once each
    # What the end of the replay declares, the stream has declared by then.
    assert {k for k in offline if k.endswith("|breached")} <= set(breached_online)
    assert len(stream.store) == len(replay.store)  # type: ignore[arg-type]


def test_apply_is_what_the_tick_applies() -> None:
    """A one-event tick leaves the state ``apply`` gives (the tick adds no rule)."""
    created = ev("ticket.created", "T-9", 0, 1)
    scheduler = PartitionScheduler(MemoryStore())
    run(scheduler, [created], None)
    expected, _ = apply(None, created, POLICY, T0)
    assert scheduler.store.get("ticket::T-9") == (expected, T0 + int(7.5 * M))


def test_what_outlives_a_tick_is_not_changed_by_the_next_events() -> None:
    """States change in place during a tick: an SLA event keeps the context it was said
    with, ``Tick.before`` the state as it was, and ``apply`` leaves its input alone."""
    scheduler = PartitionScheduler(MemoryStore())
    run(scheduler, [ev("ticket.created", "T-1", 0, 1, department="sales")], None)
    stored = scheduler.store.get("ticket::T-1")
    assert stored is not None
    kept = copy_state(stored[0])
    tick = run(
        scheduler,
        [
            ev("message.sent", "T-1", 60, 2, visibility="public"),  # first reply: met
            ev("ticket.updated", "T-1", 90, 3, changes={"department": "billing"}),
        ],
        None,
    )
    (met,) = tick.effects
    assert met.context.department == "sales"  # as it was when the reply met it
    assert tick.before["ticket::T-1"] == kept  # the stored state before the tick
    after = scheduler.store.get("ticket::T-1")
    assert after is not None and after[0].context.department == "billing"
    again, _ = apply(after[0], ev("ticket.updated", "T-1", 120, 4, changes={"status": "closed"}),
                     POLICY, T0)  # fmt: skip
    assert again.closed and not after[0].closed  # the pure apply worked on a copy
