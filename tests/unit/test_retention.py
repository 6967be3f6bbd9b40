"""Finished conversations are removed after their retention: slawatch/core/retention.py
and the scheduler's expiry (slawatch/core/scheduler.py)."""

from __future__ import annotations

from slawatch.core.retention import finished_at
from slawatch.core.scheduler import MemoryStore, PartitionScheduler
from slawatch.storage.state_codec import decode_state
from slawatch.storage.table_store import TableStore
from tests.unit.sla_harness import T0
from tests.unit.test_scheduler import ev, run

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RETENTION_MS = 3 * DAY_MS


def at(hours: float) -> int:
    return T0 + int(hours * HOUR_MS)


def closed_ticket(scheduler: PartitionScheduler, ticket: str, closed_h: float) -> None:
    """A ticket created, answered and closed at ``closed_h`` hours."""
    run(scheduler, [ev("ticket.created", ticket, 0, 1)], at(0))
    run(scheduler, [ev("message.sent", ticket, 600, 2)], at(0.2))
    closing = ev("ticket.updated", ticket, closed_h * 3600, 3, changes={"status": "closed"})
    run(scheduler, [closing], at(closed_h))


def test_a_closed_ticket_is_removed_once_the_watermark_passes_its_retention() -> None:
    store = MemoryStore()
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    closed_ticket(scheduler, "T-1", closed_h=5)
    state, deadline = store.get("ticket::T-1") or (None, None)
    assert state is not None and finished_at(state) == at(5)
    assert deadline == at(5) + RETENTION_MS  # its expiry waits in the queue
    assert run(scheduler, [], at(5) + RETENTION_MS - 1).expired == []
    tick = run(scheduler, [], at(5) + RETENTION_MS)
    assert tick.expired == ["ticket::T-1"] and tick.effects == [] and tick.persist == []
    store.remove("ticket::T-1")
    assert len(store) == 0 and len(scheduler) == 0


def test_ended_chats_and_calls_are_finished_too() -> None:
    store = MemoryStore()
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    run(scheduler, [ev("chat.started", "C-1", 0, 1), ev("chat.message", "C-1", 5, 2),
                    ev("chat.ended", "C-1", 60, 3)], at(0))  # fmt: skip
    run(scheduler, [ev("call.queued", "Q-1", 0, 4), ev("call.answered", "Q-1", 20, 5),
                    ev("call.ended", "Q-1", 300, 6)], at(0))  # fmt: skip
    run(scheduler, [ev("call.queued", "Q-2", 0, 7), ev("call.abandoned", "Q-2", 9, 8)], at(0))
    assert len(store) == 3
    tick = run(scheduler, [], at(1) + RETENTION_MS)
    assert sorted(tick.expired) == ["call::Q-1", "call::Q-2", "chat::C-1"]


def test_what_may_still_change_is_kept() -> None:
    store = MemoryStore()
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    run(scheduler, [ev("ticket.created", "T-open", 0, 1)], at(0))  # waits for a reply
    run(scheduler, [ev("ticket.created", "T-solved", 0, 2),
                    ev("ticket.updated", "T-solved", 60, 3, changes={"status": "solved"})],
        at(0))  # fmt: skip  # a customer may reopen it
    run(scheduler, [ev("message.received", "T-never-created", 0, 4)], at(0))
    for days in (4, 30, 365):
        assert run(scheduler, [], at(days * 24)).expired == []
    assert len(store) == 3


def test_without_a_retention_every_state_is_kept() -> None:
    store = MemoryStore()
    scheduler = PartitionScheduler(store)
    closed_ticket(scheduler, "T-1", closed_h=5)
    assert store.get("ticket::T-1")[1] is None  # nothing queued for it
    assert run(scheduler, [], at(24 * 365)).expired == []
    assert len(store) == 1


def test_an_event_before_the_expiry_keeps_meeting_the_closed_state() -> None:
    store = MemoryStore()
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    closed_ticket(scheduler, "T-1", closed_h=5)
    # A late message two days on: the closed state ignores it, and it is no later instant
    # of the ticket's, so the expiry stays where it was.
    late = run(scheduler, [ev("message.received", "T-1", 48 * 3600, 9)], at(48))
    assert late.effects == [] and late.too_old == []
    assert store.get("ticket::T-1")[1] == at(5) + RETENTION_MS
    assert run(scheduler, [], at(5) + RETENTION_MS).expired == ["ticket::T-1"]


def test_an_event_older_than_the_retention_about_a_conversation_not_held_is_refused() -> None:
    store = MemoryStore()
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    now = at(24 * 10)
    run(scheduler, [], now)  # the partition's watermark is at ``now``
    stale = ev("chat.message", "C-gone", (now - RETENTION_MS - T0) / 1000 - 1, 1)
    fresh = ev("chat.message", "C-new", (now - RETENTION_MS - T0) / 1000, 2)
    tick = run(scheduler, [stale, fresh], now)
    assert tick.too_old == [stale]
    assert store.get("chat::C-gone") is None and store.get("chat::C-new") is not None
    # Without a watermark the age of an event is unknown: nothing is refused.
    assert run(PartitionScheduler(MemoryStore(), retention_ms=RETENTION_MS), [stale],
               now).too_old == []  # fmt: skip


def test_a_backlog_read_in_one_batch_is_not_refused_for_its_own_watermark() -> None:
    """The events of a tick are judged against the watermark before them: a batch that
    spans more than the retention moves the watermark past its own first events."""
    store = MemoryStore()
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    run(scheduler, [], at(0))
    backlog = [ev("ticket.created", "T-1", 3600, 1), ev("ticket.created", "T-2", 10 * 86400, 2)]
    assert run(scheduler, backlog, at(24 * 10)).too_old == []
    assert len(store) == 2


def test_a_longer_retention_set_after_the_expiry_was_queued_applies() -> None:
    store = MemoryStore()
    closed_ticket(PartitionScheduler(store, retention_ms=RETENTION_MS), "T-1", closed_h=5)
    longer = PartitionScheduler(store, retention_ms=2 * RETENTION_MS)  # a restart
    longer.rebuild()
    tick = run(longer, [], at(5) + RETENTION_MS)
    assert tick.expired == [] and store.get("ticket::T-1")[1] == at(5) + 2 * RETENTION_MS
    assert run(longer, [], at(5) + 2 * RETENTION_MS).expired == ["ticket::T-1"]


class _Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


def test_the_table_store_writes_a_tombstone_for_a_removed_state() -> None:
    table = _Table()
    store = TableStore(table, 0, 1)
    scheduler = PartitionScheduler(store, retention_ms=RETENTION_MS)
    closed_ticket(scheduler, "T-1", closed_h=5)
    written = store.take_changes()
    assert written[-1][0] == b"ticket::T-1" and decode_state(written[-1][1]).closed
    tick = run(scheduler, [], at(5) + RETENTION_MS)
    for key in tick.expired:
        store.remove(key)
    assert table.data == {} and store.take_changes() == [(b"ticket::T-1", None)]
