from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from slawatch.errors import TopicMismatch
from slawatch.streams.topics import ensure_topics, topic_specs
from tests.integration.conftest import run

pytestmark = pytest.mark.integration


async def partition_counts(settings, names):
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()


def test_creates_every_topic_with_the_configured_count_once(settings_factory) -> None:
    settings = settings_factory(partitions=3)
    names = [spec.name for spec in topic_specs(settings)]
    assert sorted(run(ensure_topics(settings))) == sorted(names)
    assert run(ensure_topics(settings)) == []  # idempotent
    expected = {spec.name: spec.partitions for spec in topic_specs(settings)}
    assert expected == {**dict.fromkeys(names, 3), settings.topic_policy: 1}
    assert run(partition_counts(settings, names)) == expected


def test_a_topic_with_another_count_stops_with_a_clear_error(settings_factory) -> None:
    first = settings_factory(partitions=2)
    run(ensure_topics(first))
    with pytest.raises(TopicMismatch, match=r"has 2 partitions, configured: 5"):
        run(ensure_topics(first.with_overrides(partitions=5)))
