"""State with an end, on the real broker: a finished conversation is removed after its
retention with a tombstone on the state changelog, stays removed after a restart, and an
event older than the retention about it is refused (docs/OPERATIONS.md, State retention).

Event times are set in the past: the retention has already run out for some
conversations when the worker reads them; no test waits for it.
"""

from __future__ import annotations

import time

import pytest

from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import produce, read_until
from tests.integration.workers import WorkerProcess
from tests.samples import keyed_event as e

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_finished_conversations_are_removed_with_a_tombstone_and_stay_removed(
    settings_factory, tmp_path
) -> None:
    settings = settings_factory(state_retention_s=3600, watermark_grace_ms=200)
    run(ensure_topics(settings))
    long_ago, lately = now_ms() - 2 * HOUR_MS, now_ms() - HOUR_MS // 2
    expired = [f"T-old-{i}" for i in range(20)]
    tickets = []
    for ticket in expired:  # closed two hours ago: past the one-hour retention
        tickets += [e("ticket.created", ticket, long_ago, 1),
                    e("ticket.updated", ticket, long_ago + 60_000, 2,
                      changes={"status": "closed"})]  # fmt: skip
    tickets += [e("ticket.created", "T-recent", lately, 1),  # closed half an hour ago: kept
                e("ticket.updated", "T-recent", lately + 1000, 2, changes={"status": "closed"}),
                e("ticket.created", "T-solved", long_ago, 1),  # may be reopened: kept
                e("ticket.updated", "T-solved", long_ago + 1000, 2,
                  changes={"status": "solved"})]  # fmt: skip
    chats = [e("chat.started", "C-old", long_ago, 1), e("chat.ended", "C-old", long_ago + 5000, 2)]
    calls = [e("call.queued", "Q-old", long_ago, 1),
             e("call.abandoned", "Q-old", long_ago + 9000, 2)]  # fmt: skip
    run(produce(settings, settings.topic_tickets, tickets))
    run(produce(settings, settings.topic_chats, chats))
    run(produce(settings, settings.topic_calls, calls))
    gone = len(expired) + 2

    worker = WorkerProcess(settings, tmp_path / "worker-1.log")
    try:
        worker.wait_ready()
        worker.wait_until(lambda: worker.metric("slawatch_states_expired_total") >= gone, 60,
                          "the expiries")  # fmt: skip
        assert worker.metric("slawatch_states_expired_total") == gone
        assert worker.metric("slawatch_conversations") == 2  # T-recent, T-solved
        # A late event of a removed ticket, older than the retention: refused, not a new
        # conversation.
        run(produce(settings, settings.topic_tickets,
                    [e("message.received", "T-old-0", long_ago + 120_000, 3)]))  # fmt: skip
        worker.wait_until(lambda: worker.metric("slawatch_events_after_retention_total") >= 1,
                          60, "the refusal")  # fmt: skip
        assert worker.metric("slawatch_conversations") == 2
    finally:
        worker.kill()  # no goodbye: the next worker recovers from the changelog alone

    changelog = f"{settings.app_id}-sla-state-changelog"
    records = run(read_until(settings, changelog, lambda rs: sum(r.value is None for r in rs)
                             >= gone))  # fmt: skip
    tombstones = {r.key.decode() for r in records if r.value is None}
    assert tombstones == {f"ticket::{t}" for t in expired} | {"chat::C-old", "call::Q-old"}

    second = WorkerProcess(settings, tmp_path / "worker-2.log")
    try:
        second.wait_ready()
        # the heartbeat of each partition builds its timers from the recovered table
        second.wait_until(lambda: second.metric("slawatch_conversations") == 2, 60,
                          "the recovered table")  # fmt: skip
        second.wait_until(lambda: second.metric("slawatch_timer_queue_entries") == 1, 60,
                          "the recovered queue")  # fmt: skip  # T-recent's expiry
    finally:
        assert second.stop() == 0, second.log_tail()
