"""``slawatch notifier`` as a real process, on the real broker and redis-server, during a
burst of 1,000 breaches to a signed webhook and a Slack channel:

- killed with SIGKILL in the middle and started again: nothing is lost for either
  receiver; what is sent twice is only what was in flight (the webhook's copies carry
  the same ``Idempotency-Key``, so a receiver that honours it shows each alert once);
- Redis stopped and started again in the middle (with its append-only file, as the
  notifier's Redis must run): nothing lost and nothing sent twice.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slawatch.alerting.notifier import MAX_CLAIM, MAX_IN_FLIGHT
from slawatch.config.settings import Settings
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.dev.embedded import EmbeddedRedis
from slawatch.dev.receiver import LocalReceiver
from slawatch.schemas.sla_events import encode
from slawatch.streams.topics import ensure_topics
from tests.integration.kafka_helpers import produce
from tests.integration.test_notifier import record
from tests.integration.workers import WorkerProcess

BURST = 1000
SECRET = "whsec-process-test-3b9e"
_NOTE_ID = re.compile(r"slawatch · (\S+)")


@pytest.fixture
def rx() -> Iterator[LocalReceiver]:
    with LocalReceiver(secrets={"hook": SECRET}) as receiver:
        yield receiver


def routing(folder: Path, rx: LocalReceiver) -> Path:
    (folder / "hook.secret").write_text(SECRET)
    path = folder / "routing.yaml"
    path.write_text(
        f"""\
receivers:
  hook: {{type: webhook, url: {rx.webhook_url("hook")}, secret: {{file: hook.secret}},
         timeout: 2s, rate_per_minute: 1000000}}
  team: {{type: slack, webhook_url: {{env: TEAM_SLACK_URL}}, timeout: 2s,
         rate_per_minute: 1000000}}
routes:
  - escalation:
      - {{on: breached, to: [hook, team]}}
"""
    )
    return path


def burst(settings: Settings) -> None:
    async def go() -> None:
        await ensure_topics(settings)
        now = format_timestamp_ms(time.time_ns() // 1_000_000)  # just decided
        records = [record("breached", n, detected_at=now) for n in range(BURST)]
        await produce(
            settings,
            settings.topic_sla_events,
            [(r.conversation_key.encode(), encode(r)) for r in records],
        )

    asyncio.run(go())


def received(rx: LocalReceiver) -> tuple[Counter[str], Counter[str]]:
    """Copies received of each webhook Idempotency-Key and of each Slack notification."""
    hooks: Counter[str] = Counter()
    slack: Counter[str] = Counter()
    for d in rx.deliveries:
        if d.channel == "webhook":
            hooks[d.headers["Idempotency-Key"]] += 1
        elif d.channel == "slack":
            context = d.body["blocks"][-1]["elements"][0]["text"]
            match = _NOTE_ID.search(context)
            assert match, context
            slack[match.group(1)] += 1
    return hooks, slack


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s}s")
        time.sleep(0.05)


def start(settings: Settings, tmp_path: Path, name: str, rx: LocalReceiver) -> WorkerProcess:
    notifier = WorkerProcess(
        settings,
        tmp_path / f"{name}.log",
        command="notifier",
        extra_env={"TEAM_SLACK_URL": rx.slack_url("team")},
    )
    notifier.wait_until(lambda: notifier.get("/healthz")[0] == 200, 60, "health")
    return notifier


def test_kill_9_in_a_burst_loses_nothing(
    settings_factory: Callable[..., Settings], tmp_path: Path, rx: LocalReceiver
) -> None:
    settings = settings_factory(
        alert_routing_file=str(routing(tmp_path, rx)), notifier_in_worker=False
    )
    burst(settings)
    first = start(settings, tmp_path, "first", rx)
    try:
        first.wait_until(lambda: len(rx.deliveries) >= 400, 90, "400 deliveries")
    finally:
        first.kill()
    at_kill = len(rx.deliveries)
    second = start(settings, tmp_path, "second", rx)
    try:
        wait_for(lambda: all(len(c) == BURST for c in received(rx)), 120, "every alert delivered")
        time.sleep(0.5)  # anything still in flight lands before counting
    finally:
        second.stop()
    hooks, slack = received(rx)
    assert len(hooks) == BURST and len(slack) == BURST  # 0 lost
    hook_copies = sum(hooks.values()) - BURST
    slack_copies = sum(slack.values()) - BURST
    print(f"\nkill -9 after {at_kill} deliveries: webhook sent twice {hook_copies}, "
          f"slack sent twice {slack_copies}")  # fmt: skip
    # What may go twice is what one receiver had in flight when the process died.
    assert hook_copies <= MAX_IN_FLIGHT
    assert slack_copies <= MAX_CLAIM
    assert all(d.verified for d in rx.deliveries if d.channel == "webhook")


class PersistentRedis(EmbeddedRedis):
    """redis-server with its append-only file on, fsync on every write: what the
    notifier's Redis must be (docs/OPERATIONS.md, Alerting)."""

    def command(self) -> list[str]:
        cmd = super().command()
        at = cmd.index("--appendonly")
        cmd[at + 1] = "yes"
        return [*cmd, "--appendfsync", "always"]


def test_redis_restart_in_a_burst_loses_nothing_and_doubles_nothing(
    settings_factory: Callable[..., Settings], tmp_path: Path, rx: LocalReceiver
) -> None:
    redis = PersistentRedis(tmp_path / "redis")
    redis.start()
    try:
        settings = settings_factory(
            alert_routing_file=str(routing(tmp_path, rx)),
            notifier_in_worker=False,
            redis_url=redis.url,
        )
        burst(settings)
        notifier = start(settings, tmp_path, "notifier", rx)
        try:
            notifier.wait_until(lambda: len(rx.deliveries) >= 400, 90, "400 deliveries")
            redis.stop()
            notifier.wait_until(
                lambda: notifier.metric("slawatch_notifier_redis_up") == 0, 30, "redis_up 0"
            )
            redis.start()
            wait_for(
                lambda: all(len(c) == BURST for c in received(rx)), 120, "every alert delivered"
            )
            # Redis is declared back after a second without failures: deliveries
            # may finish before that.
            notifier.wait_until(
                lambda: notifier.metric("slawatch_notifier_redis_up") == 1, 30, "redis_up 1"
            )
            log = notifier.log_tail(20_000)
        finally:
            notifier.stop()
    finally:
        redis.stop()
    hooks, slack = received(rx)
    assert len(hooks) == BURST and len(slack) == BURST
    assert sum(hooks.values()) == BURST and sum(slack.values()) == BURST
    assert log.count("Redis unreachable") == 1 and log.count("Redis reachable again") == 1
