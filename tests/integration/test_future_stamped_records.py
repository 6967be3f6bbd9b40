"""Producer clocks cannot move the watermark: records stamped a month ahead, on every
partition of every input topic (refused ones and accepted ones), make no commitment fire
early, on the real broker with a real worker.

No test sleeps for a timer: conversations opened "now" have targets of ten minutes, and
sentinel conversations that were due minutes ago, one in every normalised partition, say
when the timers have run with every watermark the month-ahead records could have moved.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from slawatch.core.partitioning import partition_for
from slawatch.schemas.normalised import decode_batch
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import produce, read_until
from tests.integration.workers import WorkerProcess, sla_records
from tests.samples import keyed_event

pytestmark = pytest.mark.integration

TARGETS = """
version: test-future-stamps
default_level: normal
levels:
  normal:
    targets: {first_reply: 10m, next_reply: 10m, chat_reply: 10m, call_answer: 10m,
              resolution: 20m}
"""
MONTH_MS = 30 * 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


e = keyed_event


async def produce_stamped(settings, messages) -> None:
    """Send (topic, partition, key, value, Kafka timestamp) records."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for topic, partition, key, value, stamp in messages:
            await producer.send(topic, value, key=key, partition=partition, timestamp_ms=stamp)
        await producer.flush()
    finally:
        await producer.stop()


def sentinels(partitions: int) -> list[str]:
    """Ticket ids whose conversations cover every normalised partition."""
    chosen: dict[int, str] = {}
    n = 0
    while len(chosen) < partitions:
        chosen.setdefault(partition_for(f"ticket::S-{n}", partitions), f"S-{n}")
        n += 1
    return sorted(chosen.values())


def test_records_stamped_a_month_ahead_fire_nothing_early(settings_factory, tmp_path: Path):
    targets = tmp_path / "targets.yaml"
    targets.write_text(TARGETS)
    settings = settings_factory(policy_file=str(targets), watermark_grace_ms=200)
    run(ensure_topics(settings))
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        t0 = now_ms()
        future = t0 + MONTH_MS
        # Conversations opened now: nothing about them is due for ten minutes.
        fresh = {"T-fresh", "C-fresh", "Q-fresh"}
        run(produce(settings, settings.topic_tickets, [e("ticket.created", "T-fresh", t0)]))
        run(produce(settings, settings.topic_chats, [
            e("chat.started", "C-fresh", t0, 1),
            e("chat.message", "C-fresh", t0, 2, author="customer"),
        ]))  # fmt: skip
        run(produce(settings, settings.topic_calls, [e("call.queued", "Q-fresh", t0)]))
        # On every input partition: garbage, and a valid event, both stamped a month ahead.
        opening = {
            settings.topic_tickets: ("ticket.created", {}),
            settings.topic_chats: ("chat.started", {}),
            settings.topic_calls: ("call.queued", {"queue": "general"}),
        }
        stamped = []
        for topic, (type_, fields) in opening.items():
            for p in range(settings.partitions):
                conversation = f"G-{type_.split('.')[0]}-{p}"
                fresh.add(conversation)
                key, value = e(type_, conversation, t0, **fields)
                stamped.append((topic, p, b"junk", b"{garbage " + key, future))
                stamped.append((topic, p, key, value, future))
        run(produce_stamped(settings, stamped))
        sent = 4 + len(stamped)
        worker.wait_until(
            lambda: worker.metric("slawatch_input_messages_total") >= sent, 60, "all input read"
        )
        # The premise: the broker kept the producers' timestamps.
        tickets = run(read_until(settings, settings.topic_tickets, lambda r: len(r) >= 9))
        assert sum(r.timestamp >= future for r in tickets) == 2 * settings.partitions

        # Sentinels, due minutes ago, one per normalised partition: once each has been
        # declared breached, every partition's timers ran with the watermarks that the
        # month-ahead records would have moved.
        watch = sentinels(settings.partitions)
        run(produce(settings, settings.topic_tickets, [
            e("ticket.created", s, t0 - 20 * 60_000) for s in watch
        ]))  # fmt: skip

        def enough(records) -> bool:
            breached = {
                r["conversation_id"]
                for r in sla_records(records)
                if r["kind"] == "breached" and r["metric"] == "first_reply"
            }
            return set(watch) <= breached

        records = sla_records(run(read_until(settings, settings.topic_sla_events, enough, 60)))
        normalised = run(read_until(settings, settings.topic_normalised, lambda r: True, 5))
        read_at = now_ms()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    breached = {r["conversation_id"] for r in records if r["kind"] == "breached"}
    assert set(watch) <= breached, worker.log_tail()
    early = [
        (r["conversation_id"], r["metric"], r["kind"])
        for r in records
        if r["conversation_id"] in fresh and r["kind"] in ("at_risk", "breached")
    ]
    assert early == [], early
    assert all(r["detection_delay_ms"] >= 0 for r in records)
    marks = [w for m in normalised for w in decode_batch(m.value).watermarks.values()]
    assert marks and max(marks) <= read_at  # never ahead of the wall clock
