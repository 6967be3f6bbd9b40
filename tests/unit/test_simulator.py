from __future__ import annotations

import hashlib
from collections import Counter

import orjson
import pytest

from slawatch.core.clock import ManualClock
from slawatch.dev.simulator.output import write_jsonl
from slawatch.dev.simulator.traffic import (
    DAILY_PROFILE,
    MEAN_EVENTS_PER_CONVERSATION,
    Malformation,
    TrafficProfile,
    generate_traffic,
)
from slawatch.schemas import EVENT_TYPES, EventValidator, Rejection

MIDNIGHT = 1_795_305_600_000  # 2026-11-22T00:00:00Z


def digest(profile: TrafficProfile, seed: int, duration_s: float) -> str:
    h = hashlib.sha256()
    for m in generate_traffic(profile, seed=seed, start_ms=MIDNIGHT, duration_s=duration_s):
        h.update(m.at_ms.to_bytes(8, "big") + m.kind.value.encode() + m.key + m.value)
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    profile = TrafficProfile(rate_eps=50, time_scale=60, malformed_share=0.05)
    assert digest(profile, 7, 600) == digest(profile, 7, 600)
    assert digest(profile, 7, 600) != digest(profile, 8, 600)


def test_jsonl_output_is_deterministic(tmp_path) -> None:
    profile = TrafficProfile(rate_eps=50, time_scale=60, malformed_share=0.05, file_output=True)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    report = write_jsonl(generate_traffic(profile, seed=3, start_ms=MIDNIGHT, duration_s=300), a)
    write_jsonl(generate_traffic(profile, seed=3, start_ms=MIDNIGHT, duration_s=300), b)
    assert a.read_bytes() == b.read_bytes()
    assert report.total == len(a.read_bytes().splitlines()) > 1000
    assert "wrong_topic" not in report.malformed  # a file has no topics to get wrong


def test_messages_come_in_time_order_within_the_window() -> None:
    times = [
        m.at_ms
        for m in generate_traffic(
            TrafficProfile(rate_eps=100, time_scale=10), seed=1, start_ms=MIDNIGHT, duration_s=900
        )
    ]
    assert times == sorted(times)
    assert times[0] >= MIDNIGHT and times[-1] < MIDNIGHT + 900_000


def test_mean_rate_over_a_day_matches_the_request() -> None:
    # time_scale 1000 lets conversations finish inside the day, so none is cut short.
    profile = TrafficProfile(rate_eps=2, time_scale=1000)
    count = sum(1 for _ in generate_traffic(profile, seed=11, start_ms=MIDNIGHT, duration_s=86_400))
    assert count / 86_400 == pytest.approx(2, rel=0.05)
    assert MEAN_EVENTS_PER_CONVERSATION > 1


def test_daily_profile_shapes_the_arrivals() -> None:
    profile = TrafficProfile(rate_eps=5, time_scale=1000)
    per_hour = Counter(
        (m.at_ms - MIDNIGHT) // 3_600_000
        for m in generate_traffic(profile, seed=5, start_ms=MIDNIGHT, duration_s=86_400)
    )
    quietest, busiest = (
        DAILY_PROFILE.index(min(DAILY_PROFILE)),
        DAILY_PROFILE.index(max(DAILY_PROFILE)),
    )
    assert per_hour[busiest] > 3 * per_hour[quietest]


def test_without_the_daily_profile_every_hour_has_the_requested_rate() -> None:
    """What ``slawatch chaos`` uses: a run's size must not depend on the hour it starts."""
    profile = TrafficProfile(rate_eps=5, time_scale=1000, daily_profile=False)
    per_hour = Counter(
        (m.at_ms - MIDNIGHT) // 3_600_000
        for m in generate_traffic(profile, seed=5, start_ms=MIDNIGHT, duration_s=86_400)
    )
    quietest, busiest = min(per_hour.values()), max(per_hour.values())
    assert busiest < 1.2 * quietest
    assert sum(per_hour.values()) / 86_400 == pytest.approx(5, rel=0.05)


def test_every_event_type_appears_and_valid_ones_validate() -> None:
    validator = EventValidator(
        max_event_bytes=65536, max_future_skew_ms=300_000, clock=ManualClock(MIDNIGHT)
    )
    profile = TrafficProfile(rate_eps=100, time_scale=60, malformed_share=0.05)
    seen: Counter[str] = Counter()
    refused: Counter[tuple[str, str]] = Counter()
    for m in generate_traffic(profile, seed=2, start_ms=MIDNIGHT, duration_s=1800):
        validator.clock = ManualClock(m.at_ms)
        result = validator.validate(m.value, m.kind)
        if m.malformed is None:
            assert not isinstance(result, Rejection), result
            seen[orjson.loads(m.value)["type"]] += 1
        else:
            assert isinstance(result, Rejection), m.malformed
            refused[(m.malformed.value, result.reason.value)] += 1
    assert set(seen) == set(EVENT_TYPES)
    # Each deliberate malformation is refused for exactly its own reason.
    assert {how for how, _ in refused} == {m.value for m in Malformation}
    assert all(how == reason for how, reason in refused)


def test_some_commitments_are_slow_and_most_are_not() -> None:
    profile = TrafficProfile(rate_eps=100, time_scale=1)
    queued: dict[bytes, int] = {}
    waits = []
    for m in generate_traffic(profile, seed=9, start_ms=MIDNIGHT, duration_s=3600):
        event = orjson.loads(m.value)
        if event["type"] == "call.queued":
            queued[m.key] = m.at_ms
        elif event["type"] == "call.answered" and m.key in queued:
            waits.append((m.at_ms - queued.pop(m.key)) / 1000)
    over_20s = sum(w > 20 for w in waits) / len(waits)
    assert 0.05 < over_20s < 0.5


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TrafficProfile(rate_eps=0)
    with pytest.raises(ValueError, match="malformed"):
        TrafficProfile(rate_eps=1, malformed_share=2)
