"""The notifier's plan, wake and deliver steps on a real redis-server and a real local
receiver, on an injected clock: escalation, resolves, once-only delivery, retries,
dead letters and storm digests. (The notifier as a process, killed and restarted, is in
test_notifier_process.py.)"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from slawatch.alerting.config import load_routing
from slawatch.alerting.escalation import Notification
from slawatch.alerting.metrics import NotifierMetrics
from slawatch.alerting.notifier import Notifier
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.base import Outcome, Sender
from slawatch.config.settings import Settings
from slawatch.core.clock import ManualClock
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.dev.receiver import LocalReceiver
from slawatch.schemas.sla_events import SlaEventRecord, encode

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
    assert len(messages) == 5  # the README says so
    total = 0
    for message in messages:
        text = message.body["text"]
        total += int(text.split(" ", 1)[0]) if "SLA notifications" in text else 1
    assert total == 500
    digested = h.metric("slawatch_notifications_total", receiver="team", channel="slack",
                        outcome="digested")  # fmt: skip
    assert digested >= 480


def test_a_storm_pages_once_and_the_page_resolves_when_the_last_cycle_ends(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    """50 breaches at once to PagerDuty (120 a minute: a burst of 10): one digest
    incident, not 50 pages; cycles ending leave it, and the last one resolves it."""
    h = harness()

    async def scenario() -> None:
        await h.plan(*(record("breached", n) for n in range(50)))
        await h.deliver()
        (page,) = rx.deliveries
        assert page.body["event_action"] == "trigger"
        assert page.body["payload"]["summary"] == "50 SLA alerts: 50 breached"
        assert page.body["payload"]["custom_details"]["count"] == 50
        key = page.body["dedup_key"]
        assert key.startswith("slawatch:digest:")
        await h.plan(*(record("met", n) for n in range(49)))
        for _ in range(5):
            await h.deliver()
            h.clock.advance(1_000)
        assert len(rx.deliveries) == 1  # 49 of 50 ended: the incident stays open
        await h.plan(record("met", 49))
        await h.deliver()
        assert [(d.body["event_action"], d.body["dedup_key"]) for d in rx.deliveries] == [
            ("trigger", key),
            ("resolve", key),
        ]

    h.run(scenario())
    assert h.metric("slawatch_notifications_total", receiver="oncall", channel="pagerduty",
                    outcome="digested") == 100  # fmt: skip


def test_a_resolve_never_overtakes_its_trigger(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    """Planned in one batch, a cycle's trigger and resolve go out in that order; a
    resolve planned while its trigger waits for a retry waits behind it."""
    h = harness()

    async def scenario() -> None:
        # 5 cycles breached and met in one batch (within PagerDuty's burst of 10).
        records = [r for n in range(5) for r in (record("breached", n), record("met", n))]
        await h.plan(*records)
        for _ in range(3):
            await h.deliver()
            h.clock.advance(1_000)
        actions: dict[str, list[str]] = {}
        for d in rx.deliveries:
            actions.setdefault(d.body["dedup_key"], []).append(d.body["event_action"])
        assert len(actions) == 5
        assert set(map(tuple, actions.values())) == {("trigger", "resolve")}

        rx.clear()
        h.clock.advance(60_000)  # the bucket refills
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


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"not json",
        b"[]",
        b'{"event_id": 5}',
        orjson.dumps({**asdict(record("breached")), "event_id": 12345}),
        orjson.dumps({**asdict(record("breached")), "event_id": "no-bars"}),
        orjson.dumps({**asdict(record("breached")), "due_at": "yesterday"}),
        orjson.dumps({**asdict(record("breached")), "cycle": "one"}),
        orjson.dumps({**asdict(record("breached")), "department": ["a"]}),
        orjson.dumps({**asdict(record("breached")), "extra": 1}),
    ],
)
def test_what_is_not_an_sla_event_record_is_skipped_and_counted(
    harness: Callable[..., Harness], value: bytes
) -> None:
    h = harness()
    tp = TopicPartition("sla-events", 0)
    assert h.notifier._decode(value, tp, 7) is None
    assert h.metric("slawatch_notifier_sla_events_total", outcome="unreadable") == 1
    assert h.notifier._decode(encode(record("breached")), tp, 8) is not None
    h.run(asyncio.sleep(0))


def test_a_routing_file_that_cannot_be_read_keeps_the_routing_in_use(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    h = harness()
    path = tmp_path / "routing.yaml"
    h.notifier.routing_path = path
    before = h.notifier.routing

    async def scenario() -> None:
        path.unlink()
        path.mkdir()  # not a file any more
        assert await h.notifier.reload_if_changed() is False
        path.rmdir()
        path.write_text("receivers: {}\nroutes: [oops\n")
        assert await h.notifier.reload_if_changed() is False

    h.run(scenario())
    assert h.notifier.routing is before
    assert h.metric("slawatch_notifier_routing_reloads_total", outcome="refused") == 2


class _BatchRecorder(Sender):
    """Two notifications a request; the first request answers 503."""

    batch_size = 2

    def __init__(self, receiver: Receiver, link_template: str | None) -> None:
        super().__init__(receiver, link_template=link_template)
        self.requests: list[list[tuple[str, str]]] = []
        self.failures = 1

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        self.requests.append([(n.cycle_id[12:17], n.kind) for n in notes])
        if self.failures:
            self.failures -= 1
            return Outcome("retry", "HTTP 503")
        return Outcome("delivered")


def test_a_batch_that_must_wait_holds_back_the_batches_after_it(
    settings_factory: Callable[..., Settings], tmp_path: Path, rx: LocalReceiver
) -> None:
    """Batches go one at a time: when one is to be retried, what follows it (a resolve
    of a cycle in it, say) waits behind it instead of overtaking it."""
    recorder: list[_BatchRecorder] = []

    def make(receiver: Receiver, link: str | None) -> Sender:
        sender = _BatchRecorder(receiver, link)
        recorder.append(sender)
        return sender

    h = Harness(settings_factory(), routing_file(tmp_path, rx), rx)
    h.notifier.senders.clear()
    h.notifier._make_sender = make
    h.notifier.build_senders()
    oncall = next(s for s in recorder if s.receiver.name == "oncall")

    async def scenario() -> None:
        await h.plan(record("breached", 1), record("breached", 2), record("met", 1))
        await h.notifier.deliver_once("oncall")  # [48001 trigger, 48002 trigger]: 503
        assert oncall.requests == [[("48001", "trigger"), ("48002", "trigger")]]
        await h.notifier.deliver_once("oncall")  # the resolve waits behind them
        assert len(oncall.requests) == 1
        h.clock.advance(2_000)
        while await h.notifier.deliver_once("oncall") == 0.0:
            pass
        assert oncall.requests[1:] == [
            [("48001", "trigger"), ("48002", "trigger")],
            [("48001", "resolve")],
        ]

    h.run(scenario())


def test_a_changed_routing_file_applies_without_a_restart(
    harness: Callable[..., Harness],
    tmp_path: Path,
    rx: LocalReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hot reload: a receiver added to the file gets its own sender and notifications."""
    monkeypatch.setenv("TEAM_SLACK_URL", rx.slack_url("team"))
    monkeypatch.setenv("ONCALL_ROUTING_KEY", ROUTING_KEY)
    h = harness()
    path = tmp_path / "routing.yaml"
    h.notifier.routing_path = path
    text = (
        path.read_text()
        .replace("      - {on: at_risk, to: [team]}", "      - {on: at_risk, to: [team, audit]}")
        .replace(
            "routes:",
            f"  audit: {{type: webhook, url: {rx.webhook_url('audit')}}}\nroutes:",
        )
    )

    async def scenario() -> None:
        path.write_text(text)
        os.utime(path, (1, 1))  # a new modification time, whatever the clock's resolution
        assert await h.notifier.reload_if_changed() is True
        assert "audit" in h.notifier.senders
        await h.plan(record("at_risk"))
        await h.deliver()
        assert sorted((d.channel, d.name) for d in rx.deliveries) == [
            ("slack", "team"),
            ("webhook", "audit"),
        ]

    h.run(scenario())
    assert h.metric("slawatch_notifier_routing_reloads_total", outcome="loaded") == 1


class _Picky(_BatchRecorder):
    """Refuses for good any request that holds cycle 48002's notification."""

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        self.requests.append([(n.cycle_id[12:17], n.kind) for n in notes])
        if any("48002" in n.cycle_id for n in notes):
            return Outcome("failed", "HTTP 400: invalid alert")
        return Outcome("delivered")


def test_one_refused_notification_does_not_take_its_batch_with_it(
    settings_factory: Callable[..., Settings], tmp_path: Path, rx: LocalReceiver
) -> None:
    made: list[_Picky] = []

    def make(receiver: Receiver, link: str | None) -> Sender:
        made.append(_Picky(receiver, link))
        return made[-1]

    h = Harness(settings_factory(), routing_file(tmp_path, rx), rx)
    h.notifier.senders.clear()
    h.notifier._make_sender = make
    h.notifier.build_senders()
    oncall = next(s for s in made if s.receiver.name == "oncall")

    async def scenario() -> None:
        await h.plan(record("breached", 1), record("breached", 2))
        while await h.notifier.deliver_once("oncall") == 0.0:
            pass
        assert oncall.requests == [
            [("48001", "trigger"), ("48002", "trigger")],  # refused together
            [("48001", "trigger")],  # then each alone
            [("48002", "trigger")],
        ]
        store = h.notifier.store
        assert store is not None
        assert [x["notification_id"][12:17] for x in await store.dead_letters()] == ["48002"]

    h.run(scenario())


def test_history_older_than_alert_max_age_pages_no_one_but_resolves_what_was_raised(
    harness: Callable[..., Harness], rx: LocalReceiver
) -> None:
    """A notifier's first start (or one back after a long outage) reads old SLA events:
    they raise nothing; the end of a cycle that did raise an alert still resolves it."""
    h = harness()
    day = 24 * 60 * M

    def decided(at_ms: int) -> str:
        return format_timestamp_ms(at_ms)

    async def scenario() -> None:
        await h.plan(record("breached", 1, detected_at=decided(T0 - 2 * day)))
        await h.deliver()
        assert rx.deliveries == []  # two days old: no page
        await h.plan(record("breached", 2, detected_at=decided(T0)))
        await h.deliver()
        assert [d.body["event_action"] for d in rx.deliveries] == ["trigger"]
        h.clock.advance(2 * day)  # the notifier was down for two days
        await h.plan(
            record("met", 2, detected_at=decided(T0 + M)),  # old, but its alert is open
            record("breached", 3, detected_at=decided(T0 + M)),  # old: no page
            record("met", 1, detected_at=decided(T0 + M)),  # old, nothing was raised
        )
        await h.deliver()
        assert [d.body["event_action"] for d in rx.deliveries] == ["trigger", "resolve"]

    h.run(scenario())
    assert h.metric("slawatch_notifier_sla_events_total", outcome="too_old") == 3
