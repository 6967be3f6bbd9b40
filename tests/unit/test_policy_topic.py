"""What a worker does with each record of the policy topic (no broker: the follower's
decision, fed records directly; the topic itself is tested in
tests/integration/test_policy_reload.py)."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from slawatch.config.settings import load_settings
from slawatch.core.policy import SlaPolicy, builtin_policy
from slawatch.core.sla import Metric
from slawatch.streams.metrics import Metrics
from slawatch.streams.policy_topic import PolicyFollower, encode_record

GOOD = "version: v2\ndefault_level: normal\nlevels: {normal: {targets: {first_reply: 1h}}}\n"
BAD = "version: v3\ndefault_level: normal\nlevels: {normal: {targets: {first_reply: soon}}}\n"


@pytest.fixture
def follower() -> tuple[PolicyFollower, list[SlaPolicy], CollectorRegistry]:
    settings = load_settings(None, environ={}, sla_time_scale=60.0)
    registry = CollectorRegistry()
    switched: list[SlaPolicy] = []
    policy_follower = PolicyFollower(settings, builtin_policy(), switched.append, Metrics(registry))
    return policy_follower, switched, registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_policy_that_loads_is_taken_and_scaled_like_the_file(follower) -> None:
    f, switched, metrics = follower
    f.offer(encode_record(GOOD, "v2.yaml", 0), 0)
    assert [p.version for p in switched] == ["v2"] and f.current.version == "v2"
    # the demo's time compression applies to published policies too
    assert f.current.level("normal").targets_ms[Metric.FIRST_REPLY] == 60_000  # 1 h / 60
    assert _value(metrics, "slawatch_policy_info", version="v2") == 1
    assert _value(metrics, "slawatch_policy_info", version="builtin-1") == 0
    assert f.status()["policy_last_rejected"] is None


@pytest.mark.parametrize(
    "value",
    [
        encode_record(BAD, "bad.yaml", 0),
        b"not json",
        b"[1, 2]",
        orjson.dumps({"v": 1, "text": 42}),
        orjson.dumps({"v": 1}),
    ],
)
def test_a_record_that_does_not_load_is_rejected_and_the_policy_stays(follower, value) -> None:
    f, switched, metrics = follower
    f.offer(encode_record(GOOD, "v2.yaml", 0), 0)
    f.offer(value, 1)
    assert f.current.version == "v2" and len(switched) == 1
    rejected = f.status()["policy_last_rejected"]
    assert rejected["offset"] == 1 and rejected["errors"]
    assert all(line.startswith("slawatch-policy@1") for line in rejected["errors"])
    assert _value(metrics, "slawatch_policy_rejected_total") == 1


def test_the_rejection_names_the_record_line_and_field(follower) -> None:
    f, _, _ = follower
    f.offer(encode_record(BAD, "bad.yaml", 0), 7)
    (error,) = f.status()["policy_last_rejected"]["errors"]
    assert error.startswith("slawatch-policy@7 (bad.yaml):3: levels.normal.targets.first_reply:")
