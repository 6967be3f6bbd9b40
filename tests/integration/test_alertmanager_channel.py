"""The Alertmanager channel against a real Alertmanager (0.25, Debian's package).

What slawatch.alerting.channels.alertmanager builds is posted to ``/api/v2/alerts`` and
read back: once with plain aiohttp (the payload on its own) and once through
slawatch.alerting.senders.AlertmanagerSender (the payload as the notifier sends it).
Times are the wall clock's: Alertmanager compares ``startsAt``/``endsAt`` with its own.

One Alertmanager serves the whole session (the ``alertmanager`` fixture); every test
gives its records a tenant of its own (a label), and reads back only that tenant's alerts.

What Alertmanager 0.25 does, as these tests show it:

- An alert posted without ``endsAt`` is listed with ``endsAt`` = now + ``resolve_timeout``
  (5 minutes here) and ``status.state`` ``active``.
- A resolved alert (``endsAt`` passed) is never listed by ``GET /api/v2/alerts``, whatever
  the filters (``active``, ``silenced``, ``inhibited``, ``unprocessed`` select among the
  *unresolved* ones): resolving makes it disappear.
- Alerts with equal labels are one alert: without identity labels, two conversations
  breached alike show as one.
- An alert whose ``startsAt`` is more than ``resolve_timeout`` ahead of its clock (and has
  no ``endsAt``) is refused: 400 ``"start time must be before end time"``; the other
  alerts of the same request are stored all the same.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from slawatch.alerting.channels import alertmanager as channel
from slawatch.alerting.config import RoutingConfig, parse_routing
from slawatch.alerting.escalation import Notification, plan
from slawatch.alerting.senders import AlertmanagerSender
from slawatch.core.sla import SlaEventKind
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord
from tests.integration.alertmanager import RESOLVE_TIMEOUT, Alertmanager
from tests.samples import sla_record

pytestmark = pytest.mark.integration

HOUR = 3_600_000
MINUTE = 60_000
TEMPLATE = "https://helpdesk.example.com/tickets/{conversation_id}"
assert RESOLVE_TIMEOUT == "5m"
RESOLVE_TIMEOUT_MS = 5 * MINUTE


def routing(url: str) -> RoutingConfig:
    text = f"""\
receivers:
  am: {{type: alertmanager, url: "{url}"}}
  am_ids: {{type: alertmanager, url: "{url}", identity_labels: true}}
routes:
  - name: all
    escalation:
      - {{on: at_risk, to: [am, am_ids]}}
      - {{on: breached, to: [am, am_ids]}}
"""
    return parse_routing(text, "routing.yaml", env={})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def record(
    kind: SlaEventKind, *, due_ms: int, at_ms: int, tenant: str, conversation: str = "48213"
) -> SlaEventRecord:
    return sla_record(kind, due_ms=due_ms, at_ms=at_ms, tenant=tenant, conversation_id=conversation)


class Cycle:
    """One SLA cycle through the planner: at risk, breached, then a late reply (missed)."""

    def __init__(self, config: RoutingConfig, tenant: str, conversation: str = "48213") -> None:
        self.config = config
        self.tenant = tenant
        self.conversation = conversation
        self.due_ms = now_ms() - 12 * MINUTE
        self.state: Any = None

    def step(self, kind: SlaEventKind, at_ms: int, now: int) -> dict[tuple[str, str], Notification]:
        rec = record(
            kind,
            due_ms=self.due_ms,
            at_ms=at_ms,
            tenant=self.tenant,
            conversation=self.conversation,
        )
        result = plan(self.config, self.state, rec, now)
        self.state = result.state
        return {(n.receiver, n.kind): n for n in result.notifications}

    def at_risk(self) -> dict[tuple[str, str], Notification]:
        return self.step(SlaEventKind.AT_RISK, self.due_ms - HOUR // 4, now_ms())

    def breached(self) -> dict[tuple[str, str], Notification]:
        return self.step(SlaEventKind.BREACHED, self.due_ms, now_ms())

    def missed(self) -> dict[tuple[str, str], Notification]:
        now = now_ms()
        return self.step(SlaEventKind.MISSED, now, now)


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def post_alerts(session: aiohttp.ClientSession, am: Alertmanager, body: Any) -> str:
    """POST ``body`` to ``/api/v2/alerts``; the status and the answer, as text."""
    async with session.post(f"{am.url}/api/v2/alerts", json=body) as response:
        return f"{response.status} {await response.text()}".strip()


async def get_alerts(
    session: aiohttp.ClientSession, am: Alertmanager, tenant: str, **params: str
) -> list[dict[str, Any]]:
    """The alerts of ``tenant`` Alertmanager lists (with the API's filters in ``params``)."""
    query = [("filter", f'tenant="{tenant}"'), *params.items()]
    async with session.get(f"{am.url}/api/v2/alerts", params=query) as response:
        assert response.status == 200, await response.text()
        alerts: list[dict[str, Any]] = await response.json()
    return sorted(alerts, key=lambda a: (a["labels"]["alertname"], a["fingerprint"]))


def labels_of(alerts: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [a["labels"] for a in alerts]


def expected_labels(alertname: str, severity: str, tenant: str) -> dict[str, str]:
    return {
        "alertname": alertname,
        "source": "slawatch",
        "metric": "first_reply",
        "level": "high",
        "priority": "high",
        "department": "billing",
        "tenant": tenant,
        "severity": severity,
    }


def test_alertmanager_answers_ready_and_lists_nothing_yet(alertmanager: Alertmanager) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{alertmanager.url}/-/ready") as response:
                assert response.status == 200
            assert await get_alerts(session, alertmanager, new_tenant()) == []

    asyncio.run(scenario())
    assert alertmanager.running


def test_trigger_shows_active_and_resolve_removes_it(alertmanager: Alertmanager) -> None:
    """The payloads on their own, posted with aiohttp: at risk, breached, then resolved."""
    config = routing(alertmanager.url)
    am = config.receivers["am"]
    tenant = new_tenant()
    cycle = Cycle(config, tenant)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            at_risk = cycle.at_risk()[("am", "trigger")]
            sent_at_ms = now_ms()
            body = channel.alerts(at_risk, am, sent_at_ms, link_template=TEMPLATE)
            assert await post_alerts(session, alertmanager, body) == "200"
            breach = cycle.breached()[("am", "trigger")]
            body = channel.alerts(breach, am, now_ms(), link_template=TEMPLATE)
            assert await post_alerts(session, alertmanager, body) == "200"

            listed = await get_alerts(session, alertmanager, tenant)
            assert labels_of(listed) == [
                expected_labels("SlaAtRisk", "warning", tenant),
                expected_labels("SlaBreached", "critical", tenant),
            ]
            at_risk_alert, breached_alert = listed
            (sent,) = body
            assert breached_alert["annotations"] == sent["annotations"]
            annotations = breached_alert["annotations"]
            assert annotations["conversation_id"] == "48213"
            assert annotations["summary"] == "Breached: ticket 48213, first reply (level high)"
            assert annotations["link"] == "https://helpdesk.example.com/tickets/48213"
            assert annotations["notification_id"] == breach.id
            assert breached_alert["generatorURL"] == annotations["link"]
            assert breached_alert["status"] == {
                "state": "active",
                "silencedBy": [],
                "inhibitedBy": [],
            }
            assert breached_alert["receivers"] == [{"name": "null"}]
            assert parse_timestamp_ms(breached_alert["startsAt"]) == cycle.due_ms
            assert parse_timestamp_ms(at_risk_alert["startsAt"]) == cycle.due_ms - HOUR // 4
            # No endsAt sent: Alertmanager ends it resolve_timeout after it last heard of it.
            ends = parse_timestamp_ms(breached_alert["endsAt"])
            assert sent_at_ms + RESOLVE_TIMEOUT_MS <= ends <= now_ms() + RESOLVE_TIMEOUT_MS

            resolve = cycle.missed()[("am", "resolve")]
            body = channel.alerts(resolve, am, now_ms(), link_template=TEMPLATE)
            assert [a["labels"]["alertname"] for a in body] == ["SlaAtRisk", "SlaBreached"]
            assert await post_alerts(session, alertmanager, body) == "200"
            assert await get_alerts(session, alertmanager, tenant, active="true") == []
            # Resolved alerts are not listed at all in 0.25, whatever the filters.
            assert await get_alerts(session, alertmanager, tenant) == []
            assert await get_alerts(session, alertmanager, tenant, active="false") == []

    asyncio.run(scenario())


def test_identity_labels_tell_conversations_apart(alertmanager: Alertmanager) -> None:
    config = routing(alertmanager.url)
    am = config.receivers["am"]
    plain, with_ids = new_tenant(), new_tenant()

    async def breach(session: aiohttp.ClientSession, tenant: str, identity: bool) -> None:
        for conversation in ("48213", "48214"):
            note = Cycle(config, tenant, conversation).breached()[("am", "trigger")]
            body = channel.alerts(note, am, now_ms(), identity_labels=identity)
            assert await post_alerts(session, alertmanager, body) == "200"

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            await breach(session, plain, identity=False)
            await breach(session, with_ids, identity=True)
            (merged,) = await get_alerts(session, alertmanager, plain)
            assert "conversation_id" not in merged["labels"]
            # The later post wins the annotations: only one conversation is visible.
            assert merged["annotations"]["conversation_id"] == "48214"
            apart = await get_alerts(session, alertmanager, with_ids)
            assert sorted(a["labels"]["conversation_id"] for a in apart) == ["48213", "48214"]
            for alert in apart:
                assert alert["labels"]["conversation_kind"] == "ticket"
                assert alert["labels"]["cycle"] == "1"
                assert alert["annotations"]["conversation_id"] == alert["labels"]["conversation_id"]

    asyncio.run(scenario())


def test_through_the_sender(alertmanager: Alertmanager) -> None:
    """AlertmanagerSender (slawatch/alerting/senders/alertmanager.py): a batch of
    triggers, then the resolves, each one attempt, delivered."""
    config = routing(alertmanager.url)
    tenant = new_tenant()
    cycles = [Cycle(config, tenant, conversation) for conversation in ("501", "502", "503")]

    async def scenario() -> None:
        plain = AlertmanagerSender(config.receivers["am"], link_template=TEMPLATE)
        ids = AlertmanagerSender(config.receivers["am_ids"], link_template=TEMPLATE)
        try:
            triggers = [c.breached() for c in cycles]
            outcome = await plain.send([t[("am", "trigger")] for t in triggers], now_ms())
            assert outcome.status == "delivered", outcome.detail
            outcome = await ids.send([t[("am_ids", "trigger")] for t in triggers], now_ms())
            assert outcome.status == "delivered", outcome.detail
            async with aiohttp.ClientSession() as session:
                listed = await get_alerts(session, alertmanager, tenant)
                # One alert of the plain receiver (equal labels), one per conversation of
                # the receiver with identity labels.
                assert len(listed) == 4
                ids_listed = [a for a in listed if "conversation_id" in a["labels"]]
                assert sorted(a["labels"]["conversation_id"] for a in ids_listed) == [
                    "501",
                    "502",
                    "503",
                ]
                assert all(a["status"]["state"] == "active" for a in listed)
                assert all(a["labels"]["alertname"] == "SlaBreached" for a in listed)

                ends = [c.missed() for c in cycles]
                outcome = await plain.send([e[("am", "resolve")] for e in ends], now_ms())
                assert outcome.status == "delivered", outcome.detail
                left = await get_alerts(session, alertmanager, tenant)
                assert len(left) == 3
                assert all("conversation_id" in a["labels"] for a in left)
                outcome = await ids.send([e[("am_ids", "resolve")] for e in ends], now_ms())
                assert outcome.status == "delivered", outcome.detail
                assert await get_alerts(session, alertmanager, tenant, active="true") == []
        finally:
            await plain.close()
            await ids.close()

    asyncio.run(scenario())


def test_a_start_ahead_of_alertmanagers_clock_is_refused(alertmanager: Alertmanager) -> None:
    """A record stamped more than resolve_timeout in the future (a producer's clock
    ahead): Alertmanager answers 400, the sender says failed, and the request's other
    alerts are stored all the same."""
    config = routing(alertmanager.url)
    am = config.receivers["am"]
    tenant_ahead, tenant_on_time = new_tenant(), new_tenant()
    ahead = Cycle(config, tenant_ahead)
    ahead.due_ms = now_ms() + 10 * MINUTE
    on_time = Cycle(config, tenant_on_time)

    async def scenario() -> None:
        future = ahead.breached()[("am", "trigger")]
        body = channel.alerts(future, am, now_ms())
        assert parse_timestamp_ms(body[0]["startsAt"]) > now_ms() + RESOLVE_TIMEOUT_MS
        sender = AlertmanagerSender(am)
        try:
            outcome = await sender.send([future], now_ms())
        finally:
            await sender.close()
        assert outcome.status == "failed"
        assert "start time must be before end time" in outcome.detail
        async with aiohttp.ClientSession() as session:
            assert await get_alerts(session, alertmanager, tenant_ahead) == []
            assert await post_alerts(session, alertmanager, body) == (
                '400 "start time must be before end time"'
            )
            # In one request with an alert on time: 400, yet the one on time is stored.
            other = on_time.breached()[("am", "trigger")]
            both = [*channel.alerts(other, am, now_ms()), *body]
            assert await post_alerts(session, alertmanager, both) == (
                '400 "start time must be before end time"'
            )
            (stored,) = await get_alerts(session, alertmanager, tenant_on_time)
            assert stored["status"]["state"] == "active"
            assert await get_alerts(session, alertmanager, tenant_ahead) == []
            # Held (an endsAt after its start), the same alert is taken, and listed as
            # active at once, before its start.
            held = channel.alerts(future, am, now_ms(), hold_s=3600)
            assert await post_alerts(session, alertmanager, held) == "200"
            (listed,) = await get_alerts(session, alertmanager, tenant_ahead)
            assert listed["status"]["state"] == "active"
            assert parse_timestamp_ms(listed["startsAt"]) > now_ms()

    asyncio.run(scenario())
