"""The notifier's plan, wake and deliver steps on a real redis-server and a real local
receiver, on an injected clock: escalation, resolves, once-only delivery, retries,
dead letters and storm digests. (The notifier as a process, killed and restarted, is in
test_notifier_process.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from slawatch.alerting.config import load_routing
from slawatch.alerting.metrics import NotifierMetrics
from slawatch.alerting.notifier import Notifier
from slawatch.config.settings import Settings
from slawatch.core.clock import ManualClock
from slawatch.dev.receiver import LocalReceiver
from slawatch.schemas.sla_events import SlaEventRecord

M = 60_000
T0 = 1_795_000_000_000
SECRET = "whsec-7f3a9c-test-only"
ROUTING_KEY = "pd-routing-key-0c1d"


@pytest.fixture(scope="module")
def rx() -> Iterator[LocalReceiver]:
    with LocalReceiver(
        secrets={"manager": SECRET}, routing_keys={ROUTING_KEY: "oncall"}
    ) as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def fresh_inbox(rx: LocalReceiver) -> None:
    rx.clear()


def routing_file(folder: Path, rx: LocalReceiver, *, team_rate: int = 600) -> Path:
    (folder / "hook.secret").write_text(SECRET + "\n")
    path = folder / "routing.yaml"
    path.write_text(
        f"""\
link: https://helpdesk.example.com/tickets/{{conversation_id}}
receivers:
  team: {{type: slack, webhook_url: {{env: TEAM_SLACK_URL}}, rate_per_minute: {team_rate}}}
  oncall:
    type: pagerduty
    routing_key: {{env: ONCALL_ROUTING_KEY}}
    url: {rx.pagerduty_url}
  manager:
    type: webhook
    url: {rx.webhook_url("manager")}
    secret: {{file: hook.secret}}
    max_attempts: 3
routes:
  - name: support
    escalation:
      - {{on: at_risk, to: [team]}}
      - {{on: breached, to: [oncall]}}
      - {{on: breached, after: 15m, to: [manager]}}
"""
    )
    return path


def record(kind: str, n: int = 1, **fields: Any) -> SlaEventRecord:
    cycle = f"ticket:acme:{48000 + n}|first_reply|1"
    values: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"{cycle}|{kind}",
        "kind": kind,
        "metric": "first_reply",
        "cycle": 1,
        "conversation_key": f"ticket:acme:{48000 + n}",
        "conversation_kind": "ticket",
        "conversation_id": str(48000 + n),
        "tenant": "acme",
        "priority": "high",
        "department": "billing",
        "assignee": "dana",
        "level": "high",
        "policy_version": "p1",
        "target_s": 3600.0,
        "started_at": "2026-11-22T09:00:00.000Z",
        "due_at": "2026-11-22T10:00:00.000Z",
        "at_risk_at": "2026-11-22T09:45:00.000Z",
        "at": "2026-11-22T10:00:00.000Z",
        "elapsed_s": 3600.0,
        "detected_at": "2026-11-22T10:00:00.500Z",
        "detection_delay_ms": 500,
        "late": False,
    }
    values.update(fields)
    return SlaEventRecord(**values)


class Harness:
    """A notifier that is never started: the test calls its steps."""

    def __init__(self, settings: Settings, path: Path, rx: LocalReceiver) -> None:
        env = {"TEAM_SLACK_URL": rx.slack_url("team"), "ONCALL_ROUTING_KEY": ROUTING_KEY}
        self.clock = ManualClock(T0)
        self.registry = CollectorRegistry()
        self.notifier = Notifier(
            settings,
            load_routing(path, env=env),
            NotifierMetrics(self.registry),
            self.clock,
        )
        self.notifier.connect_redis()
        self.notifier.build_senders()

    async def plan(self, *records: SlaEventRecord) -> None:
        await self.notifier.plan_records([(0, r) for r in records])

    async def deliver(self) -> None:
        """Every receiver's due notifications, until none is due now."""
        for name in self.notifier.senders:
            while await self.notifier.deliver_once(name) == 0.0:
                pass

    async def close(self) -> None:
        for sender in self.notifier.senders.values():
            await sender.close()
        await self.notifier.close_redis()

    def run(self, scenario: Coroutine[Any, Any, None]) -> None:
        """Run ``scenario``, then close connections, in one event loop."""

        async def go() -> None:
            try:
                await scenario
            finally:
                await self.close()

        asyncio.run(go())

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def harness(
    settings_factory: Callable[..., Settings], tmp_path: Path, rx: LocalReceiver
) -> Callable[..., Harness]:
    def make(**routing: Any) -> Harness:
        return Harness(settings_factory(), routing_file(tmp_path, rx, **routing), rx)

    return make


def summaries(rx: LocalReceiver) -> list[tuple[str, str, str]]:
    return [(d.channel, d.name, d.summary) for d in rx.deliveries]


def test_escalation_and_resolves_reach_each_receiver_once(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    h = harness()

    async def scenario() -> None:
        await h.plan(record("at_risk"))
        await h.deliver()
        assert [(c, n) for c, n, _ in summaries(rx)] == [("slack", "team")]

        h.clock.advance(15 * M)
        await h.plan(record("breached"))
        await h.deliver()
        assert [(c, n) for c, n, _ in summaries(rx)][1:] == [("pagerduty", "oncall")]

        h.clock.advance(15 * M - 1)  # the manager's step is not due yet
        await h.notifier.wake(0)
        await h.deliver()
        assert len(rx.deliveries) == 2
        h.clock.advance(1)
        await h.notifier.wake(0)
        await h.deliver()
        manager = rx.deliveries[2]
        assert (manager.channel, manager.name, manager.verified) == ("webhook", "manager", True)
        assert manager.body["notification"]["kind"] == "trigger"

        h.clock.advance(M)
        await h.plan(record("met"))
        await h.deliver()
        resolves = rx.deliveries[3:]
        assert sorted((d.channel, d.name) for d in resolves) == [
            ("pagerduty", "oncall"),
            ("slack", "team"),
            ("webhook", "manager"),
        ]
        pd = next(d for d in resolves if d.channel == "pagerduty")
        assert pd.body["event_action"] == "resolve"
        assert pd.body["dedup_key"] == rx.deliveries[1].body["dedup_key"]
        hook = next(d for d in resolves if d.channel == "webhook")
        assert hook.body["notification"]["kind"] == "resolve"
        assert hook.verified is True  # signed with the secret from the file

        # The same SLA events again (a replay of sla-events): nothing is sent twice.
        await h.plan(record("at_risk"), record("breached"), record("met"))
        h.clock.advance(60 * M)
        await h.notifier.wake(0)
        await h.deliver()
        assert len(rx.deliveries) == 6

    h.run(scenario())
    assert h.metric("slawatch_notifications_total", receiver="team", channel="slack",
                    outcome="sent") == 2  # fmt: skip


def test_a_lost_alert_state_still_sends_nothing_twice(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    """The notification log outlives a cycle's state: a state that was lost (expired,
    deleted) plans the notifications again, and the log drops them."""
    h = harness()

    async def scenario() -> None:
        await h.plan(record("at_risk"))
        await h.deliver()
        assert len(rx.deliveries) == 1
        store = h.notifier.store
        assert store is not None
        await store.redis.delete(store.state_key("ticket:acme:48001|first_reply|1"))
        await h.plan(record("at_risk"))
        await h.deliver()
        assert len(rx.deliveries) == 1

    h.run(scenario())
    assert h.metric("slawatch_notifications_total", receiver="team", channel="slack",
                    outcome="deduplicated") == 1  # fmt: skip


def test_failed_attempts_back_off_then_go_through_or_dead_letter(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    h = harness()

    async def scenario() -> None:
        rx.fail_next("/pagerduty", statuses=[503, 429])
        await h.plan(record("breached"))
        await h.deliver()
        assert rx.deliveries == []
        h.clock.advance(2_000)  # past the first backoff (at most 1 s)
        await h.deliver()
        assert rx.deliveries == []  # the 429: a second backoff (at most 2 s)
        h.clock.advance(2_000)
        await h.deliver()
        assert [d.channel for d in rx.deliveries] == ["pagerduty"]

        # The manager's webhook refuses for good (400): dead-lettered at once, without
        # the secret; a 503 three times (max_attempts: 3) is dead-lettered too.
        rx.fail_next("/webhook/manager", statuses=[400])
        h.clock.advance(15 * M)
        await h.notifier.wake(0)
        await h.deliver()
        store = h.notifier.store
        assert store is not None
        letters = await store.dead_letters()
        assert [(x["receiver"], x["attempts"]) for x in letters] == [("manager", 1)]
        assert "400" in letters[0]["reason"]
        assert SECRET not in repr(letters)

    h.run(scenario())
    assert h.metric("slawatch_notifications_total", receiver="oncall", channel="pagerduty",
                    outcome="retried") == 2  # fmt: skip


def test_a_storm_becomes_digests_within_the_rate_limit(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    """500 at-risk cycles in a minute to a channel limited to 60 messages a minute: a few
    messages alone (the bucket's burst), then digests; every notification is in one."""
    h = harness(team_rate=60)

    async def scenario() -> None:
        for start in range(0, 500, 100):
            await h.plan(*(record("at_risk", n) for n in range(start, start + 100)))
            await h.deliver()
            h.clock.advance(12_000)
        for _ in range(10):
            h.clock.advance(1_000)
            await h.deliver()

    h.run(scenario())
    messages = [d for d in rx.deliveries if d.channel == "slack"]
    print(f"\n500 at-risk notifications in {len(messages)} Slack messages")
    assert len(messages) <= 20
    total = 0
    for message in messages:
        text = message.body["text"]
        total += int(text.split(" ", 1)[0]) if "SLA notifications" in text else 1
    assert total == 500
    digested = h.metric("slawatch_notifications_total", receiver="team", channel="slack",
                        outcome="digested")  # fmt: skip
    assert digested >= 480


def test_a_resolve_never_overtakes_its_trigger(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    """Planned in one batch, a cycle's trigger and resolve go out in that order; a
    resolve planned while its trigger waits for a retry waits behind it."""
    h = harness()

    async def scenario() -> None:
        # 50 cycles breached and met in one batch: trigger then resolve, each.
        # PagerDuty's 120 a minute: 10 at once, then 2 a second.
        records = [r for n in range(50) for r in (record("breached", n), record("met", n))]
        await h.plan(*records)
        for _ in range(60):
            await h.deliver()
            h.clock.advance(1_000)
        actions: dict[str, list[str]] = {}
        for d in rx.deliveries:
            actions.setdefault(d.body["dedup_key"], []).append(d.body["event_action"])
        assert len(actions) == 50
        assert set(map(tuple, actions.values())) == {("trigger", "resolve")}

        rx.clear()
        rx.fail_next("/pagerduty", statuses=[503])
        await h.plan(record("breached", 99))
        await h.deliver()  # the trigger fails: a retry within 1 s
        await h.plan(record("met", 99))
        await h.deliver()  # the resolve waits behind the trigger
        assert rx.deliveries == []
        h.clock.advance(2_000)
        await h.deliver()
        assert [d.body["event_action"] for d in rx.deliveries] == ["trigger", "resolve"]

    h.run(scenario())
