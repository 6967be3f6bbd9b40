"""Reading a partition back from a point in time (what the timers do when they take a
partition over) on the real broker, whose ``offsets_for_times`` ignores the time and whose
``end_offsets`` stop at the last record batch's first record."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from slawatch.streams.read_back import read_back
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


async def _produce(settings, partition: int, stamped: list[tuple[bytes, int]]) -> None:
    """Send ``(value, timestamp_ms)`` records to the SLA events topic's ``partition``, in
    as few record batches as the producer makes (one per linger)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=50)
    await producer.start()
    try:
        sent = [
            await producer.send(
                settings.topic_sla_events, value, partition=partition, timestamp_ms=at_ms
            )
            for value, at_ms in stamped
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _values(settings, partition: int, since_ms: int, stop: int | None = None) -> list:
    topic = settings.topic_sla_events
    return [
        record.value
        async for record in read_back(settings, topic, partition, since_ms, "test", stop=stop)
    ]


def test_read_back_keeps_the_window_and_every_record_of_the_last_batch(settings_factory):
    settings = settings_factory()
    now_ms = time.time_ns() // 1_000_000

    async def scenario() -> dict[str, list]:
        await ensure_topics(settings)
        old = [(b"old-%d" % i, now_ms - 3 * HOUR_MS + i) for i in range(5)]
        new = [(b"new-%d" % i, now_ms - HOUR_MS + i) for i in range(1000)]
        await _produce(settings, 1, old + new)
        return {
            "empty partition": await _values(settings, 0, now_ms - 2 * HOUR_MS),
            "last two hours": await _values(settings, 1, now_ms - 2 * HOUR_MS),
            "last four hours": await _values(settings, 1, now_ms - 4 * HOUR_MS),
            "up to offset 10": await _values(settings, 1, now_ms - 4 * HOUR_MS, stop=10),
            "nothing since": await _values(settings, 1, now_ms + HOUR_MS),
        }

    read = run(scenario())
    assert read["empty partition"] == []
    # The broker's answer to "from two hours ago" is offset 0: the old records are skipped.
    assert read["last two hours"] == [b"new-%d" % i for i in range(1000)]
    assert len(read["last four hours"]) == 1005
    assert read["up to offset 10"] == [b"old-%d" % i for i in range(5)] + [
        b"new-%d" % i for i in range(5)
    ]
    assert read["nothing since"] == []
