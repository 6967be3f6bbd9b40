"""The fixes between aiokafka and the embedded broker (Tansu): the generation-0 LeaveGroup
(a clean stop frees the group at once) and end offsets read from a fetch; and the record
of the heartbeats the group answered (streams/membership.py relies on it)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.consumer.fetcher import Fetcher

from slawatch.streams.compat import (
    end_offsets_from_fetch,
    heartbeat_answered_at,
    heartbeat_refused_at,
    leave_group_at_generation_zero,
    record_heartbeats,
)
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run

pytestmark = pytest.mark.integration


async def join_seconds(settings, group: str) -> tuple[AIOKafkaConsumer, float]:
    consumer = AIOKafkaConsumer(
        settings.topic_tickets,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=int(settings.broker_session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval_s * 1000),
    )
    started = time.monotonic()
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=20)
    return consumer, time.monotonic() - started


def test_a_rejoin_after_a_clean_stop_is_as_fast_as_a_first_join(settings_factory) -> None:
    assert leave_group_at_generation_zero()
    settings = settings_factory()

    async def scenario() -> tuple[float, float]:
        await ensure_topics(settings)
        first, fresh = await join_seconds(settings, f"{settings.app_id}-g")
        await first.stop()
        second, rejoin = await join_seconds(settings, f"{settings.app_id}-g")
        await second.stop()
        return fresh, rejoin

    fresh, rejoin = run(scenario())
    # Without the fix the departed member is waited out: a session timeout more.
    assert rejoin < fresh + settings.broker_session_timeout_s / 2, (fresh, rejoin)


def test_end_offsets_count_every_record_of_the_last_batch(settings_factory) -> None:
    """Faust's table recovery reads a changelog up to ``end_offsets``; the broker's own
    answer stops inside the last record batch."""
    assert end_offsets_from_fetch()
    settings = settings_factory()
    tp = TopicPartition(settings.topic_tickets, 0)

    async def scenario() -> tuple[int, int]:
        await ensure_topics(settings)
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=50)
        await producer.start()
        try:  # a few record batches
            sent = [await producer.send(tp.topic, b"x" * 64, partition=0) for _ in range(1000)]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
        await consumer.start()
        try:
            fixed = (await consumer.end_offsets([tp]))[tp]
            broker_answer = Fetcher._proc_offset_request._slawatch_end_offsets_from_fetch
            leader = consumer._client.cluster.leader_for_partition(tp)
            raw = await broker_answer(consumer._fetcher, leader, {tp.topic: [(0, -1)]})
            return raw[tp][0], fixed
        finally:
            await consumer.stop()

    raw, fixed = run(scenario())
    assert fixed == 1000
    # What the fix corrects (when a Tansu release answers right, the fix is moot).
    assert raw < 1000


def test_only_heartbeats_the_group_answered_without_error_are_recorded(settings_factory) -> None:
    """After the worker stood still, a heartbeat answered without error says it still
    belongs to its generation; one refused (here: sent with a generation the group is not
    at, as a member evicted while it stood still sends) must not count, and is recorded
    apart: a rebalance of the member follows."""
    assert record_heartbeats()
    settings = settings_factory()
    group = f"{settings.app_id}-heartbeats"

    async def scenario() -> None:
        await ensure_topics(settings)
        consumer, _ = await join_seconds(settings, group)
        try:
            coordinator = consumer._coordinator
            before = time.monotonic()
            assert await coordinator._do_heartbeat()
            answered = heartbeat_answered_at(group)
            assert answered is not None and answered >= before
            assert heartbeat_refused_at(group) is None
            coordinator.generation += 7  # not the group's generation
            refused_after = time.monotonic()
            assert not await coordinator._do_heartbeat()
            assert heartbeat_answered_at(group) == answered
            refused = heartbeat_refused_at(group)  # the group asked it to rejoin
            assert refused is not None and refused >= refused_after
        finally:
            await consumer.stop()

    run(scenario())
