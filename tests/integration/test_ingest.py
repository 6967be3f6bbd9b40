"""Valid and invalid events of every type through the real broker: the valid ones reach
the normalised stream, each invalid one reaches dead-letter with its reason."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from slawatch.agents.ingest import IngestService
from slawatch.core.clock import ManualClock
from slawatch.schemas import EventValidator
from slawatch.schemas.deadletter import DeadLetter
from slawatch.schemas.normalised import decode_batch
from slawatch.streams.metrics import Metrics
from slawatch.streams.topics import ensure_topics, topic_kinds
from tests.integration.conftest import run
from tests.integration.kafka_helpers import produce, read_until, wait_for
from tests.samples import NOW_MS, event, invalid_examples, valid_examples

pytestmark = pytest.mark.integration


async def ingest_once(settings, inputs, expect_events, expect_dead):
    """Run an ingest service over ``inputs`` {topic: [(key, value)]}; return what it wrote:
    (events on the normalised stream, dead letters, metrics, normalised messages)."""
    await ensure_topics(settings)
    clock = ManualClock(NOW_MS)
    metrics = Metrics(CollectorRegistry())
    validator = EventValidator(
        max_event_bytes=settings.max_event_bytes, max_future_skew_ms=300_000, clock=clock
    )
    service = IngestService(settings, metrics, validator, clock)
    await service.start()
    try:
        for topic, messages in inputs.items():
            await produce(settings, topic, messages)
        sent = sum(len(messages) for messages in inputs.values())
        await wait_for(lambda: total(metrics, "slawatch_input_messages_total") >= sent)
    finally:
        await service.stop()
    normalised = await read_until(
        settings,
        settings.topic_normalised,
        lambda records: sum(len(decode_batch(r.value).events) for r in records) >= expect_events,
    )
    dead = await read_until(
        settings, settings.topic_dead_letter, lambda records: len(records) >= expect_dead
    )
    events = [e for r in normalised for e in decode_batch(r.value).events]
    return events, [DeadLetter.decode(r.value) for r in dead], metrics, normalised


def total(metrics, name):
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def test_every_valid_type_is_normalised_and_every_invalid_one_dead_lettered(settings_factory):
    settings = settings_factory()
    by_kind = {kind: topic for topic, kind in topic_kinds(settings).items()}
    inputs: dict[str, list[tuple[bytes | None, bytes | None]]] = {}
    for kind, example in valid_examples():
        inputs.setdefault(by_kind[kind], []).append((b"k", orjson.dumps(example)))
    for _, kind, raw, _ in invalid_examples():
        inputs.setdefault(by_kind[kind], []).append((b"bad", raw))

    events, letters, metrics, _ = run(
        ingest_once(settings, inputs, len(valid_examples()), len(invalid_examples()))
    )

    assert sorted(e.event_id for e in events) == sorted(x["event_id"] for _, x in valid_examples())
    assert sorted((letter.reason, letter.original()) for letter in letters) == sorted(
        (reason.value, raw) for _, _, raw, reason in invalid_examples()
    )
    for letter in letters:
        assert letter.source_topic in settings.input_topics
        assert letter.detail
    dead_total = total(metrics, "slawatch_dead_letters_total")
    assert dead_total == len(invalid_examples())


def test_one_conversations_events_stay_in_order_across_batches(settings_factory):
    settings = settings_factory(ingest_max_records=7)
    messages = [
        (
            b"T-1",
            orjson.dumps(event("ticket.updated", n, ticket_id="T-1", changes={"priority": "high"})),
        )
        for n in range(60)
    ]
    events, letters, _, normalised = run(
        ingest_once(settings, {settings.topic_tickets: messages}, 60, 0)
    )
    assert not letters
    assert [e.event_id for e in events] == [f"evt-ticket.updated-{n}" for n in range(60)]
    with_events = [r for r in normalised if decode_batch(r.value).events]
    assert len({r.partition for r in with_events}) == 1
    assert len(with_events) > 1  # small polls: several batches, order kept across them


def test_offsets_are_committed_so_a_restart_does_not_reread(settings_factory):
    settings = settings_factory()
    first = [(b"k", orjson.dumps(event("call.queued", n))) for n in range(5)]
    run(ingest_once(settings, {settings.topic_calls: first}, 5, 0))
    second = [(b"k", orjson.dumps(event("call.queued", n))) for n in range(5, 8)]
    events, *_ = run(ingest_once(settings, {settings.topic_calls: second}, 8, 0))
    ids = [e.event_id for e in events]
    assert sorted(ids) == sorted(f"evt-call.queued-{n}" for n in range(8))  # each once
