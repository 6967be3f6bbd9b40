"""What a worker does with each record of the policy topic (no broker: the follower's
decision, fed records directly; the topic itself is tested in
tests/integration/test_policy_reload.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
import pytest
from prometheus_client import CollectorRegistry

from slawatch.config.settings import load_settings
from slawatch.core.policy import SlaPolicy, builtin_policy
from slawatch.core.sla import Metric
from slawatch.streams import policy_topic
from slawatch.streams.metrics import Metrics
from slawatch.streams.policy_topic import MAX_SHOWN_PROBLEMS, PolicyFollower, encode_record

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
        # anybody's bytes: a source nested 1,000 deep once crashed every follower
        b'{"v":1,"text":"x: 1","source":' + b"[" * 1000 + b"]" * 1000 + b"}",
        orjson.dumps({"v": 1, "text": BAD, "source": "s" * 100_000}),
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
    assert all(len(line) < 1000 for line in rejected["errors"])
    assert _value(metrics, "slawatch_policy_rejected_total") == 1


def test_the_rejection_names_the_record_line_and_field(follower) -> None:
    f, _, _ = follower
    f.offer(encode_record(BAD, "bad.yaml", 0), 7)
    (error,) = f.status()["policy_last_rejected"]["errors"]
    assert error.startswith("slawatch-policy@7 (bad.yaml):3: levels.normal.targets.first_reply:")


# --- hostile records (issue 9) ------------------------------------------------------------

DEEP = "version: v9\nrules: " + "[" * 5000 + "]" * 5000 + "\n"
BOMB = "".join(
    f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}" if i else '"lol"'] * 10) + "]\n" for i in range(9)
)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (DEEP, "slawatch-policy@1 (h.yaml):2: (document): lists and mappings nested deeper"),
        (BOMB, "slawatch-policy@1 (h.yaml):5: (document): more than 50,000 values"),
    ],
    ids=["deep nesting", "alias bomb"],
)
def test_a_hostile_record_is_rejected_and_the_worker_goes_on(follower, text, error) -> None:
    f, switched, _ = follower
    f.offer(encode_record(GOOD, "v2.yaml", 0), 0)
    f.offer(encode_record(text, "h.yaml", 0), 1)
    (line,) = f.status()["policy_last_rejected"]["errors"]
    assert line.startswith(error)
    f.offer(encode_record(GOOD.replace("v2", "v4"), "v4.yaml", 0), 2)
    assert [p.version for p in switched] == ["v2", "v4"]


def test_a_rejection_shows_at_most_twenty_problems(follower) -> None:
    f, _, _ = follower
    many = "version: v5\ndefault_level: normal\nlevels: {normal: {targets: {first_reply: 1h}}}\n"
    many += "".join(f"colour{i}: red\n" for i in range(50))
    f.offer(encode_record(many, "many.yaml", 0), 3)
    errors = f.status()["policy_last_rejected"]["errors"]
    assert len(errors) == MAX_SHOWN_PROBLEMS + 1
    assert errors[-1] == "(and 30 more: slawatch check-config)"


def test_a_record_is_read_off_the_event_loop(follower, monkeypatch) -> None:
    """While a record is being read, the loop goes on: a ticking task releases the reader
    after five ticks. On the loop, the reader would block the ticker and time out."""
    f, switched, _ = follower
    reading, release = threading.Event(), threading.Event()
    real = policy_topic.decode_record

    def slow_decode(value: bytes, where: str) -> SlaPolicy:
        reading.set()
        assert release.wait(5), "the event loop did not run while the record was read"
        return real(value, where)

    monkeypatch.setattr(policy_topic, "decode_record", slow_decode)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not release.is_set():
            if reading.is_set():  # counts only the ticks while the record is being read
                ticks += 1
                if ticks == 5:
                    release.set()
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(f.receive(encode_record(GOOD, "v2.yaml", 0), 0), ticker())

    asyncio.run(main())
    assert ticks == 5 and [p.version for p in switched] == ["v2"]


def test_a_hostile_record_leaves_the_loop_answering(follower) -> None:
    """The real reader on a large hostile record: the loop keeps ticking meanwhile, and
    the longest pause between two ticks is far below the time the record takes."""
    f, _, _ = follower
    value = encode_record(
        "version: v6\ndescription: [" + ",".join(["1"] * 60_000) + "]\n", "h.yaml", 0
    )
    gaps: list[float] = []

    async def main() -> None:
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async def read() -> None:
            await f.receive(value, 5)
            done.set()

        await asyncio.gather(read(), ticker())

    began = time.perf_counter()
    asyncio.run(main())
    spent = time.perf_counter() - began
    assert f.status()["policy_last_rejected"]["offset"] == 5
    assert len(gaps) >= 3 and max(gaps) < max(0.05, spent / 2), (sorted(gaps)[-3:], spent)
