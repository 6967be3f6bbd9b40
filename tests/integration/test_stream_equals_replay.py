"""The same events through the live pipeline on the real broker and through ``slawatch
replay`` give the same SLA log, cycle for cycle (README, replay); and the log sink inside
the worker stores that log in its database, row for row."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from slawatch.core.keys import ConversationKind
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.dev.simulator.output import publish
from slawatch.dev.simulator.traffic import Malformation, TrafficProfile, generate_traffic
from slawatch.policy import load_policy
from slawatch.replay.engine import replay
from slawatch.reports.filters import LogFilter
from slawatch.reports.store import LogStore
from slawatch.schemas.cycle_log import as_text, cycle_log
from slawatch.schemas.sla_events import SlaEventRecord
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import read_until
from tests.integration.workers import WorkerProcess, sla_records

pytestmark = pytest.mark.integration

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
#: Monday 08:00 in Hanoi, weeks before any run of this test: every due has passed.
START = "2026-11-02T01:00:00Z"


def test_the_stream_and_the_replay_give_the_same_sla_log(settings_factory, tmp_path) -> None:
    settings = settings_factory(
        policy_file=str(EXAMPLE_POLICY), watermark_grace_ms=200, log_sink_in_worker=True
    )
    run(ensure_topics(settings))
    messages = list(
        generate_traffic(
            TrafficProfile(rate_eps=8.0, malformed_share=0.01, file_output=True),
            seed=42,
            start_ms=parse_timestamp_ms(START),
            duration_s=3600,
        )
    )
    topics = {
        ConversationKind.TICKET: settings.topic_tickets,
        ConversationKind.CHAT: settings.topic_chats,
        ConversationKind.CALL: settings.topic_calls,
    }
    # History first, then the worker: it reads a backlog, in event time (see
    # docs/SLA.md, "Replay and the stream", for history published to a live worker).
    run(publish(messages, settings=settings, topics=topics, realtime=False))
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        worker.wait_until(
            lambda: worker.metric("slawatch_input_messages_total") >= len(messages), 120, "input"
        )
        valid = worker.metric("slawatch_valid_events_total")
        worker.wait_until(
            lambda: worker.metric("slawatch_timer_events_total") >= valid, 120, "all events"
        )
        # The watermark is now: every deadline of these weeks-old events has fired. Three
        # more ticks make sure the tick that fired them has emitted.
        worker.wait_until(lambda: worker.metric("slawatch_watermark_lag_seconds") < 1.0, 30,
                          "the watermark")  # fmt: skip
        ticks = worker.metric("slawatch_timer_batch_seconds_count")
        worker.wait_until(
            lambda: worker.metric("slawatch_timer_batch_seconds_count") >= ticks + 3, 30, "ticks"
        )
        emitted = worker.metric("slawatch_sla_events_total")
        records = sla_records(
            run(read_until(settings, settings.topic_sla_events, lambda r: len(r) >= emitted))
        )
        worker.wait_until(
            lambda: worker.metric("slawatch_log_sink_sla_events_total", outcome="stored")
            >= len(records), 60, "the log sink",
        )  # fmt: skip
    finally:
        worker.stop()
    as_of = time.time_ns() // 1_000_000
    stream_log = list(cycle_log(SlaEventRecord(**r) for r in records).records())
    with LogStore.open(str(settings.log_store), migrate=False) as store:
        stored = stored_log(store)
    assert stored == stream_log

    # A file has no topics: a message on the wrong input topic cannot be one there.
    lines = [m.value for m in messages if m.malformed is not Malformation.WRONG_TOPIC]
    rows, report = replay(lines, load_policy(EXAMPLE_POLICY), as_of_ms=as_of, jobs=2)
    replayed = [as_text(row) for row in rows]

    assert report.events == valid and report.lines == len(lines)
    by_cycle = {(r["conversation_key"], r["metric"], r["cycle"]): r for r in replayed}
    streamed = {(r["conversation_key"], r["metric"], r["cycle"]): r for r in stream_log}
    only_stream = sorted(set(streamed) - set(by_cycle))
    assert not only_stream, only_stream[:5]
    # What the topic cannot hold: open cycles nothing was said about yet (paused ones, or
    # ones whose at-risk instant is still to come). The replay lists them; nothing else.
    quiet = [by_cycle[k] for k in set(by_cycle) - set(streamed)]
    assert all(r["status"] == "open" and r["at_risk_at"] is None for r in quiet), quiet[:3]
    differing = [(streamed[k], by_cycle[k]) for k in streamed if streamed[k] != by_cycle[k]]
    assert not differing, differing[:3]
    assert len(replayed) > 1000
    # The comparison covers every status, several levels, and both kinds of calendar.
    statuses = Counter(r["status"] for r in replayed)
    assert all(statuses[s] > 0 for s in ("met", "missed", "breached", "cancelled", "open")), (
        statuses
    )
    assert {r["level"] for r in replayed} >= {"vip", "normal"}
    assert any(r["kind"] == "level_changed" for r in records)


def stored_log(store: LogStore) -> list[dict]:
    """Every row of the store, as ``replay`` writes the log, in its order."""
    rows: list[dict] = []
    after = None
    while True:
        page = store.log_page(LogFilter(), sort="started", descending=False, limit=1000,
                              after=after)  # fmt: skip
        rows += page.rows
        if page.next_cursor is None:
            break
        after = page.next_cursor
    rows.sort(key=lambda r: (r["conversation_key"], r["metric"], r["cycle"]))
    return [as_text(r) for r in rows]
