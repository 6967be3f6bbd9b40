"""The generation-0 LeaveGroup fix: a clean stop frees the group at once on Tansu."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaConsumer

from slawatch.streams.compat import leave_group_at_generation_zero
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
