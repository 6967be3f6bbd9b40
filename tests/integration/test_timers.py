"""The SLA timers on the real broker: every metric, no false breach under lag, and
recovery after kill -9 without losing or repeating anything.

Event times are set in the past so that dues have already passed: no test sleeps for a
timer; each waits only for the worker to catch up.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.schemas.export import SCHEMA_DIR
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import produce, read_until
from tests.integration.workers import WorkerProcess, sla_records
from tests.samples import keyed_event

pytestmark = pytest.mark.integration

TARGETS = """
version: test-4s
default_level: normal
levels:
  normal:
    targets: {first_reply: 4s, next_reply: 4s, chat_reply: 4s, call_answer: 4s, resolution: 8s}
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


e = keyed_event


@pytest.fixture
def targets_file(tmp_path: Path) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(TARGETS)
    return path


def read_sla(settings, enough, timeout_s=60):
    return sla_records(run(read_until(settings, settings.topic_sla_events, enough, timeout_s)))


def test_every_metric_is_met_and_breached_on_the_real_broker(
    settings_factory, targets_file, tmp_path
):
    settings = settings_factory(policy_file=str(targets_file), watermark_grace_ms=200)
    run(ensure_topics(settings))
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        t0 = now_ms() - 30_000  # everything below happened half a minute ago
        tickets = [
            e("ticket.created", "T-fast", t0, 1),
            e("message.sent", "T-fast", t0 + 1000, 2, visibility="public"),
            e("message.received", "T-fast", t0 + 2000, 3),
            e("message.sent", "T-fast", t0 + 3000, 4, visibility="public"),
            e("ticket.updated", "T-fast", t0 + 4000, 5, changes={"status": "solved"}),
            e("ticket.created", "T-slow", t0, 1),
            e("message.sent", "T-slow", t0 + 9000, 2, visibility="public"),
            e("message.received", "T-slow", t0 + 10_000, 3),
            e("ticket.created", "T-open", t0, 1),  # never answered
        ]
        chats = [
            e("chat.started", "C-1", t0, 1),
            e("chat.message", "C-1", t0 + 100, 2, author="customer"),
            e("chat.message", "C-1", t0 + 1100, 3, author="agent", agent="a1"),
            e("chat.message", "C-1", t0 + 2000, 4, author="customer"),
        ]
        calls = [
            e("call.queued", "Q-1", t0, 1, queue="general"),
            e("call.answered", "Q-1", t0 + 2000, 2, agent="a2"),
            e("call.queued", "Q-2", t0, 1, queue="general"),
        ]
        run(produce(settings, settings.topic_tickets, tickets))
        run(produce(settings, settings.topic_chats, chats))
        run(produce(settings, settings.topic_calls, calls))
        expected = {
            ("first_reply", "met"), ("first_reply", "at_risk"), ("first_reply", "breached"),
            ("first_reply", "missed"), ("next_reply", "met"), ("next_reply", "breached"),
            ("chat_reply", "met"), ("chat_reply", "breached"), ("call_answer", "met"),
            ("call_answer", "breached"), ("resolution", "met"), ("resolution", "breached"),
            ("resolution", "at_risk"),
        }  # fmt: skip

        def enough(records) -> bool:
            seen = {(r["metric"], r["kind"]) for r in sla_records(records)}
            return expected <= seen

        records = read_sla(settings, enough)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    seen = {(r["metric"], r["kind"]) for r in records}
    assert expected <= seen, expected - seen
    ids = [r["event_id"] for r in records]
    assert len(ids) == len(set(ids))
    schema = Draft202012Validator(json.loads((SCHEMA_DIR / "sla-event.v1.json").read_text()))
    for record in records:
        schema.validate(record)
    breach = next(r for r in records if r["conversation_id"] == "T-open" and r["kind"] == "breached"
                  and r["metric"] == "first_reply")  # fmt: skip
    assert breach["target_s"] == 4 and breach["detection_delay_ms"] > 20_000 and breach["late"]
    assert not any(r["kind"] == "retracted" for r in records)


def test_no_false_breach_while_the_reply_waits_in_a_backlog(
    settings_factory, targets_file, tmp_path
):
    # Two records per poll: the backlog below takes seconds to read, so the wall clock passes
    # the due of T-lag while its reply is still unread, with every other input caught up.
    settings = settings_factory(
        policy_file=str(targets_file), ingest_max_records=2, watermark_grace_ms=200
    )
    run(ensure_topics(settings))
    partition = 0  # the input partition holding the whole backlog
    fillers = [f"F-{n}" for n in range(2000)]
    created = now_ms() - 1000  # due 2 s from now
    backlog = [
        e("ticket.created", "T-lag", created, 1),
        e("ticket.created", "T-control", created, 1),  # never answered: must breach
        *[e("ticket.updated", f, created, 1, changes={"priority": "normal"}) for f in fillers],
        e("message.sent", "T-lag", created + 2000, 2, visibility="public"),  # before due
    ]

    async def produce_backlog():
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            for key, value in backlog:  # all on one partition, in this order
                await producer.send(settings.topic_tickets, value, key=key, partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

    run(produce_backlog())
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        records = read_sla(
            settings,
            lambda rs: (
                {("T-lag", "met"), ("T-control", "breached")}
                <= {
                    (r["conversation_id"], r["kind"])
                    for r in sla_records(rs)
                    if r["metric"] == "first_reply"
                }
            ),
            timeout_s=90,
        )
    finally:
        worker.stop()
    lag = [
        r["kind"]
        for r in records
        if r["conversation_id"] == "T-lag" and r["metric"] == "first_reply"
    ]
    assert "met" in lag
    assert "breached" not in lag and "retracted" not in lag, lag
    met = next(r for r in records if r["conversation_id"] == "T-lag" and r["kind"] == "met")
    assert met["elapsed_s"] == 2.0
    # the backlog really was read after due: the answer was decided late in wall-clock time
    assert met["detection_delay_ms"] > 1000


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_kill_9_loses_no_timer_and_repeats_nothing(settings_factory, tmp_path, store):
    """memory://: the second worker recovers the states from the changelog; rocksdb://
    (production): from the first one's files on the same disk, and the changelog's tail."""
    targets = tmp_path / "targets.yaml"
    targets.write_text(
        "default_level: normal\nlevels: {normal: {targets: {first_reply: 30s, resolution: 1d}}}\n"
    )
    settings = settings_factory(
        policy_file=str(targets), late_after_s=1.0, watermark_grace_ms=200, store=store
    )
    run(ensure_topics(settings))
    first = WorkerProcess(settings, tmp_path / "worker-1.log")
    first.wait_ready()
    n = 300
    # At risk (22.5 s) already; due in 7.4 s: time for the first worker to say so, under
    # a loaded machine too, before it is killed and the dues fall while it is down.
    created = now_ms() - 22_600
    run(produce(settings, settings.topic_tickets,
                [e("ticket.created", f"K-{i}", created, 1) for i in range(n)]))  # fmt: skip

    def at_risk_count(records) -> int:
        return sum(1 for r in sla_records(records) if r["kind"] == "at_risk")

    read_sla(settings, lambda rs: at_risk_count(rs) >= n)
    first.kill()  # dues fall while it is down
    killed_ms = now_ms()
    # The outage lasts past every due (that is the scenario, not a wait for a timer): the
    # first worker had time to declare them at risk, none is due before it is killed.
    time.sleep(max(0, created + 30_000 + 1_500 - now_ms()) / 1000)

    second = WorkerProcess(settings, tmp_path / "worker-2.log")
    try:
        records = read_sla(
            settings,
            lambda rs: sum(1 for r in sla_records(rs) if r["kind"] == "breached") >= n,
            timeout_s=90,
        )
        second.wait_until(lambda: second.metric("slawatch_conversations") >= n, 30, "states")
        # everything on the topic now, including anything emitted twice
        records = sla_records(
            run(read_until(settings, settings.topic_sla_events, lambda rs: False, 1))
        )
    finally:
        assert second.stop() == 0, second.log_tail()
    kinds = Counter(r["kind"] for r in records)
    assert kinds["at_risk"] == n and kinds["breached"] == n, kinds
    ids = [r["event_id"] for r in records]
    assert len(ids) == len(set(ids)), "an SLA event was emitted twice"
    breaches = [r for r in records if r["kind"] == "breached"]
    assert {r["conversation_id"] for r in breaches} == {f"K-{i}" for i in range(n)}
    fell_due_while_down = [r for r in breaches if parse_timestamp_ms(r["due_at"]) >= killed_ms]
    assert fell_due_while_down, "the test meant every due to fall while the worker was down"
    assert all(r["late"] and parse_timestamp_ms(r["detected_at"]) > killed_ms
               for r in fell_due_while_down)  # fmt: skip
    # every resolution timer (due in a day) is still open after the restart
    assert not any(r["metric"] == "resolution" for r in records)
    if store == "rocksdb://":
        # Faust's recovery logs each changelog partition's end and where it read from: the
        # states came from the first worker's files, not from the changelog.
        highwater, starts = recovery_tables(second.log_path.read_text())
        assert highwater and starts == highwater, (highwater, starts)


def recovery_tables(log: str) -> tuple[dict[int, int], dict[int, int]]:
    """The first "Highwater - Active" and "Reading Starts At - Active" tables of Faust's
    recovery in a worker's log: changelog partition -> offset."""
    tables = []
    for title in ("Highwater - Active", "Reading Starts At - Active"):
        rows: dict[int, int] = {}
        for line in log[log.index(title) :].splitlines()[3:]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 3 or not cells[1].isdigit():
                break
            rows[int(cells[1])] = int(cells[2])
        tables.append(rows)
    return tables[0], tables[1]
