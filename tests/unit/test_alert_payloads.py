"""What each channel sends (slawatch/alerting/channels/): pure payloads, nothing sent.

Notifications come from the escalation planner, for SLA event records built the way the
timers build them (core SlaEvent -> schemas.sla_events.to_record).
"""

from __future__ import annotations

import email.policy
import json
from dataclasses import replace
from email import message_from_bytes
from typing import Any

import jsonschema
import pytest

from slawatch.alerting.channels import alertmanager, mail, pagerduty, slack, webhook
from slawatch.alerting.channels.common import link
from slawatch.alerting.config import RoutingConfig, parse_routing
from slawatch.alerting.escalation import Notification, plan
from slawatch.core.sla import SlaEventKind
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord
from tests.samples import sla_record

PD_KEY = "sekrit-pagerduty-routing-key"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/sekrit-slack-token"
HOOK_SECRET = "sekrit-webhook-secret"
SMTP_PASSWORD = "sekrit-smtp-password"
ENV = {"PD": PD_KEY, "SLACK": SLACK_URL, "HOOK": HOOK_SECRET, "SMTP": SMTP_PASSWORD}
SECRETS = (PD_KEY, SLACK_URL, HOOK_SECRET, SMTP_PASSWORD)
TEMPLATE = "https://helpdesk.example.com/tickets/{conversation_id}"

ROUTING = """\
receivers:
  am: {type: alertmanager, url: "http://alertmanager:9093"}
  pd: {type: pagerduty, routing_key: {env: PD}}
  team: {type: slack, webhook_url: {env: SLACK}, channel: "#support-sla"}
  hook: {type: webhook, url: "https://hooks.example.com/sla", secret: {env: HOOK}}
  mail:
    type: email
    to: [oncall@example.com, lead@example.com]
    from: slawatch@example.com
    smtp: "smtp.example.com:587"
    password: {env: SMTP}
routes:
  - name: all
    escalation:
      - {on: at_risk, to: [team]}
      - {on: breached, to: [am, pd, team, hook, mail]}
"""
DUE_MS = parse_timestamp_ms("2026-11-22T10:00:00.000Z")
NOW_MS = DUE_MS + 12 * 60_000 + 3_000  # 12m 03s past due
HOUR = 3_600_000


@pytest.fixture(scope="module")
def config() -> RoutingConfig:
    return parse_routing(ROUTING, "r.yaml", env=ENV)


def record(kind: SlaEventKind, *, at_ms: int = DUE_MS, **context: Any) -> SlaEventRecord:
    context.setdefault("customer_group", "enterprise")
    return sla_record(kind, due_ms=DUE_MS, at_ms=at_ms, detected_after_ms=683, **context)


def notes(config: RoutingConfig, **context: Any) -> dict[tuple[str, str], Notification]:
    """(receiver, kind) -> notification, for a breach and then a late reply (missed)."""
    breached = plan(config, None, record(SlaEventKind.BREACHED, **context), NOW_MS)
    missed_at = NOW_MS + 60_000
    rec = record(SlaEventKind.MISSED, at_ms=missed_at, **context)
    ended = plan(config, breached.state, rec, missed_at)
    return {(n.receiver, n.kind): n for n in (*breached.notifications, *ended.notifications)}


def receiver(config: RoutingConfig, name: str) -> Any:
    return config.receivers[name]


# --- Alertmanager -------------------------------------------------------------------

RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
LABEL_NAME = "^[a-zA-Z_][a-zA-Z0-9_]*$"
# The fields of Alertmanager's v2 `postableAlerts` we send (api/v2/openapi.yaml).
ALERTMANAGER_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {
                "type": "object",
                "required": ["alertname"],
                "propertyNames": {"pattern": LABEL_NAME},
                "additionalProperties": {"type": "string", "minLength": 1},
            },
            "annotations": {
                "type": "object",
                "propertyNames": {"pattern": LABEL_NAME},
                "additionalProperties": {"type": "string"},
            },
            "startsAt": {"type": "string", "pattern": RFC3339},
            "endsAt": {"type": "string", "pattern": RFC3339},
            "generatorURL": {"type": "string", "format": "uri", "pattern": "^https?://"},
        },
    },
}


def test_alertmanager_trigger(config: RoutingConfig) -> None:
    note = notes(config)[("am", "trigger")]
    body = alertmanager.alerts(note, receiver(config, "am"), NOW_MS, link_template=TEMPLATE)
    jsonschema.validate(body, ALERTMANAGER_SCHEMA)
    (alert,) = body
    assert alert["labels"] == {
        "alertname": "SlaBreached",
        "source": "slawatch",
        "metric": "first_reply",
        "level": "high",
        "priority": "high",
        "department": "billing",
        "tenant": "acme",
        "severity": "critical",
    }
    assert "48213" not in json.dumps(alert["labels"])  # the id is not grouped on
    notes_ = alert["annotations"]
    assert notes_["conversation_id"] == "48213"
    assert notes_["summary"] == "Breached: ticket 48213, first reply (level high)"
    assert "12m 03s past due" in notes_["description"]
    assert "agent-07" in notes_["description"]
    assert notes_["link"] == alert["generatorURL"] == "https://helpdesk.example.com/tickets/48213"
    assert alert["startsAt"] == "2026-11-22T10:00:00.000Z"
    assert "endsAt" not in alert  # active
    held = alertmanager.alerts(note, receiver(config, "am"), NOW_MS, hold_s=600)
    assert parse_timestamp_ms(held[0]["endsAt"]) == NOW_MS + 600_000  # active: in the future


def test_alertmanager_resolve_ends_the_cycles_alerts_now(config: RoutingConfig) -> None:
    note = notes(config)[("am", "resolve")]
    body = alertmanager.alerts(note, receiver(config, "am"), NOW_MS + 60_000)
    jsonschema.validate(body, ALERTMANAGER_SCHEMA)
    trigger = alertmanager.alerts(notes(config)[("am", "trigger")], receiver(config, "am"), NOW_MS)
    # the alerts the cycle raised (a breach; its at-risk went to no one), as raised: the
    # resolve has the trigger's labels, so Alertmanager resolves the same alert
    assert [a["labels"]["alertname"] for a in body] == ["SlaBreached"]
    assert body[0]["labels"] == trigger[0]["labels"]
    for alert in body:
        assert parse_timestamp_ms(alert["endsAt"]) == NOW_MS + 60_000
        assert parse_timestamp_ms(alert["startsAt"]) <= NOW_MS + 60_000


def test_alertmanager_resolve_before_due_sends_no_breach() -> None:
    """A cycle met before due never breached: its resolve must not create a SlaBreached
    alert starting at due (Alertmanager would show it active until then)."""
    config = parse_routing(
        'receivers:\n  am: {type: alertmanager, url: "http://alertmanager:9093"}\n'
        "routes:\n  - escalation:\n      - {on: at_risk, to: [am]}\n",
        "r.yaml",
    )
    before_due = DUE_MS - 10 * 60_000
    at_risk = plan(config, None, record(SlaEventKind.AT_RISK, at_ms=DUE_MS - HOUR // 4),
                   before_due - 60_000)  # fmt: skip
    met = plan(config, at_risk.state, record(SlaEventKind.MET, at_ms=before_due), before_due)
    (resolve,) = [n for n in met.notifications if n.kind == "resolve"]
    body = alertmanager.alerts(resolve, receiver(config, "am"), before_due)
    assert [a["labels"]["alertname"] for a in body] == ["SlaAtRisk"]
    assert parse_timestamp_ms(body[0]["endsAt"]) == before_due
    jsonschema.validate(body, ALERTMANAGER_SCHEMA)


def test_alertmanager_identity_labels_only_when_asked(config: RoutingConfig) -> None:
    note = notes(config)[("am", "trigger")]
    (alert,) = alertmanager.alerts(note, receiver(config, "am"), NOW_MS, identity_labels=True)
    assert alert["labels"]["conversation_id"] == "48213" and alert["labels"]["cycle"] == "1"


# --- PagerDuty ------------------------------------------------------------------------


def test_pagerduty_trigger_and_resolve(config: RoutingConfig) -> None:
    by = notes(config)
    pd = receiver(config, "pd")
    body = pagerduty.event(by[("pd", "trigger")], pd, NOW_MS, link_template=TEMPLATE)
    assert body["routing_key"] == PD_KEY and body["event_action"] == "trigger"
    payload = body["payload"]
    assert payload["summary"] == "Breached: ticket 48213, first reply (level high)"
    assert payload["severity"] == "critical" and payload["source"] == "slawatch"
    assert payload["timestamp"] == "2026-11-22T10:00:00.000Z"
    assert payload["custom_details"]["How late"] == "12m 03s past due"
    assert payload["custom_details"]["event"]["conversation_id"] == "48213"
    assert body["links"] == [
        {"href": "https://helpdesk.example.com/tickets/48213", "text": "ticket 48213"}
    ]
    resolve = pagerduty.event(by[("pd", "resolve")], pd, NOW_MS + 60_000)
    assert resolve == {
        "routing_key": PD_KEY,
        "event_action": "resolve",
        "dedup_key": body["dedup_key"],  # the same alert
    }


def test_pagerduty_dedup_key_is_stable_and_bounded(config: RoutingConfig) -> None:
    note = notes(config)[("pd", "trigger")]
    assert pagerduty.dedup_key(note) == "slawatch:ticket:acme:48213|first_reply|1|pd"
    repeat = replace(note, id=note.id.replace("trigger", "repeat-3"), kind="repeat")
    assert pagerduty.dedup_key(repeat) == pagerduty.dedup_key(note)
    long_note = notes(config, conversation_id="x" * 128, tenant="t" * 256)[("pd", "trigger")]
    key = pagerduty.dedup_key(long_note)
    assert len(key) <= 255 and key.startswith("slawatch:sha256:")
    assert key == pagerduty.dedup_key(long_note)
    other = notes(config, conversation_id="y" * 128, tenant="t" * 256)[("pd", "trigger")]
    assert pagerduty.dedup_key(other) != key
    summary = pagerduty.event(long_note, receiver(config, "pd"), NOW_MS)["payload"]["summary"]
    assert len(summary) <= 1024


# --- Slack ----------------------------------------------------------------------------


def test_slack_trigger_and_resolve(config: RoutingConfig) -> None:
    by = notes(config)
    team = receiver(config, "team")
    body = slack.message(by[("team", "trigger")], team, NOW_MS, link_template=TEMPLATE)
    assert body["channel"] == "#support-sla"
    assert body["text"] == "Breached: ticket 48213, first reply (level high), 12m 03s past due"
    shown = json.dumps(body["blocks"])
    for fact in ("48213", "12m 03s past due", "agent-07", "2026-11-22T10:00:00.000Z", "high"):
        assert fact in shown
    (button,) = body["blocks"][2]["elements"]
    assert button == {"type": "button", "text": {"type": "plain_text", "text": "Open ticket"},
                      "url": "https://helpdesk.example.com/tickets/48213"}  # fmt: skip
    resolve = slack.message(by[("team", "resolve")], team, NOW_MS + 60_000)
    assert resolve["text"].startswith("Resolved (missed): ticket 48213")
    assert all(block["type"] != "actions" for block in resolve["blocks"])  # no link template


def test_slack_escapes_mrkdwn(config: RoutingConfig) -> None:
    note = notes(config, assignee="<!channel> & <https://evil.example|x>")[("team", "trigger")]
    body = slack.message(note, receiver(config, "team"), NOW_MS)
    shown = json.dumps(body)
    assert "<!channel>" not in shown and "&lt;!channel&gt; &amp; &lt;https" in shown


def test_slack_digest(config: RoutingConfig) -> None:
    team = receiver(config, "team")
    many = []
    for i in range(2000):
        kind = SlaEventKind.AT_RISK if i % 3 else SlaEventKind.BREACHED
        p = plan(config, None, record(kind, conversation_id=f"T{i}"), NOW_MS)
        many += [n for n in p.notifications if n.receiver == "team"]
    body = slack.digest(many[:5], team, NOW_MS, link_template=TEMPLATE)
    assert body["text"] == "5 SLA notifications: 3 at risk, 2 breached"
    lines = body["blocks"][1]["text"]["text"].splitlines()
    assert len(lines) == 5 and "<https://helpdesk.example.com/tickets/T0|ticket T0>" in lines[0]
    big = slack.digest(many, team, NOW_MS, link_template=TEMPLATE)
    assert len(big["blocks"]) <= slack.MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= slack.MAX_SECTION for b in big["blocks"] if "text" in b)
    shown = sum(len(b["text"]["text"].splitlines()) for b in big["blocks"][1:] if "text" in b)
    more = big["blocks"][-1]["elements"][0]["text"]
    assert 1000 < shown < 2000 and more == f"… and {2000 - shown} more"
    assert big["text"] == "2000 SLA notifications: 1333 at risk, 667 breached"
    with pytest.raises(ValueError):
        slack.digest([], team, NOW_MS)


# --- Generic webhook ------------------------------------------------------------------


def test_webhook_trigger_and_resolve(config: RoutingConfig) -> None:
    by = notes(config)
    hook = receiver(config, "hook")
    for kind in ("trigger", "resolve"):
        note = by[("hook", kind)]
        req = webhook.request(note, hook, NOW_MS, link_template=TEMPLATE)
        doc = json.loads(req.body)
        assert doc["notification"] == {"id": note.id, "kind": kind, "receiver": "hook",
                                       "step": note.step, "cycle_id": note.cycle_id}  # fmt: skip
        assert doc["event"]["event_id"] == note.record.event_id
        assert doc["link"] == "https://helpdesk.example.com/tickets/48213"
        assert req.headers["Idempotency-Key"] == note.id
        assert req.headers["X-Slawatch-Timestamp"] == str(NOW_MS // 1000)
        assert req.headers["X-Slawatch-Signature"].startswith("sha256=")
        assert webhook.verify_signature(
            HOOK_SECRET, req.headers["X-Slawatch-Timestamp"], req.body,
            req.headers["X-Slawatch-Signature"], now=NOW_MS / 1000,
        )  # fmt: skip


def test_webhook_signature_refuses_any_change(config: RoutingConfig) -> None:
    req = webhook.request(notes(config)[("hook", "trigger")], receiver(config, "hook"), NOW_MS)
    ts, sig = req.headers["X-Slawatch-Timestamp"], req.headers["X-Slawatch-Signature"]
    now = NOW_MS / 1000
    verify = webhook.verify_signature
    assert verify(HOOK_SECRET, ts, req.body, sig, now=now)
    assert verify(HOOK_SECRET.encode(), ts, req.body.decode(), sig, now=now + 299)
    assert not verify(HOOK_SECRET, ts, req.body.replace(b"48213", b"48214"), sig, now=now)
    assert not verify(HOOK_SECRET, str(int(ts) + 1), req.body, sig, now=now)
    assert not verify("another-secret", ts, req.body, sig, now=now)
    assert not verify(HOOK_SECRET, ts, req.body, sig, now=now + 301)  # stale
    assert not verify(HOOK_SECRET, ts, req.body, sig, now=now - 301)  # from the future
    assert not verify(HOOK_SECRET, "not-a-number", req.body, sig, now=now)
    assert not verify(HOOK_SECRET, ts, req.body, sig.upper(), now=now)
    arabic_digits = ts.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert not verify(HOOK_SECRET, arabic_digits, req.body, sig, now=now)
    assert not verify(HOOK_SECRET, ts, req.body, sig + "é", now=now)


def test_webhook_without_secret_is_unsigned_and_odd_ids_are_hashed(config: RoutingConfig) -> None:
    hook = replace(receiver(config, "hook"), fields={"url": "https://hooks.example.com/"})
    note = notes(config, conversation_id="48213\r\nX-Evil: 1")[("hook", "trigger")]
    req = webhook.request(note, hook, NOW_MS)
    assert "X-Slawatch-Signature" not in req.headers
    assert req.headers["Idempotency-Key"].startswith("sha256:")
    assert all("\n" not in value for value in req.headers.values())


def test_the_readme_verification_snippet_works(config: RoutingConfig) -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Alert routing\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the README's own example
    req = webhook.request(notes(config)[("hook", "trigger")], receiver(config, "hook"), NOW_MS)
    ts, sig = req.headers["X-Slawatch-Timestamp"], req.headers["X-Slawatch-Signature"]
    ok = namespace["verify_signature"]
    assert ok(HOOK_SECRET, ts, req.body, sig, now=NOW_MS / 1000)
    assert not ok(HOOK_SECRET, ts, req.body + b" ", sig, now=NOW_MS / 1000)
    assert not ok(HOOK_SECRET, ts, req.body, sig, now=NOW_MS / 1000 + 301)
    assert not ok(HOOK_SECRET, "x" + ts, req.body, sig, now=NOW_MS / 1000)
    assert not ok(HOOK_SECRET, ts, req.body, sig + "é", now=NOW_MS / 1000)


# --- E-mail ---------------------------------------------------------------------------


def test_email_trigger_and_resolve(config: RoutingConfig) -> None:
    by = notes(config)
    box = receiver(config, "mail")
    msg = mail.email(by[("mail", "trigger")], box, NOW_MS, link_template=TEMPLATE)
    assert msg["From"] == "slawatch@example.com"
    assert msg["To"] == "oncall@example.com, lead@example.com"
    assert msg["Subject"] == "[slawatch] Breached: ticket 48213, first reply (level high)"
    assert msg["Date"] == "Sun, 22 Nov 2026 10:12:03 +0000"
    again = mail.email(by[("mail", "trigger")], box, NOW_MS + 5_000)
    assert msg["Message-ID"] == again["Message-ID"]  # stable from the notification id
    assert msg["Message-ID"].endswith("@example.com>")
    resolve = mail.email(by[("mail", "resolve")], box, NOW_MS + 60_000)
    assert resolve["Message-ID"] != msg["Message-ID"]
    assert resolve["References"] == msg["References"]  # one thread per cycle and receiver
    assert resolve["Subject"].startswith("[slawatch] Resolved (missed): ticket 48213")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for fact in (
        "48213",
        "12m 03s past due",
        "agent-07",
        "https://helpdesk.example.com/tickets/48213",
    ):
        assert fact in text and fact in page
    parsed = message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == msg["Subject"] and parsed.is_multipart()


def test_email_html_is_escaped(config: RoutingConfig) -> None:
    evil = "<script>alert(1)</script>"
    note = notes(config, conversation_id=evil, department=evil)[("mail", "trigger")]
    msg = mail.email(note, receiver(config, "mail"), NOW_MS, link_template=TEMPLATE + '?"x')
    page = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '"x"' not in page  # the link's quote cannot end the href
    assert evil in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


# --- Across channels ------------------------------------------------------------------


def test_links_quote_the_fields_and_refuse_unknown_ones() -> None:
    rec = record(SlaEventKind.BREACHED, conversation_id="a/b c?d")
    assert link(TEMPLATE, rec) == "https://helpdesk.example.com/tickets/a%2Fb%20c%3Fd"
    assert link(None, rec) is None
    with pytest.raises(ValueError, match="unknown field"):
        link("https://x.example/{assignee}", rec)


def test_no_secret_anywhere_but_pagerdutys_routing_key(config: RoutingConfig) -> None:
    by = notes(config)
    shown: list[str] = [repr(n) for n in by.values()]
    shown += [repr(rc) for rc in config.receivers.values()]
    for kind in ("trigger", "resolve"):
        am = by[("am", kind)]
        shown.append(json.dumps(alertmanager.alerts(am, receiver(config, "am"), NOW_MS)))
        team = by[("team", kind)]
        shown.append(json.dumps(slack.message(team, receiver(config, "team"), NOW_MS)))
        shown.append(json.dumps(slack.digest([team], receiver(config, "team"), NOW_MS)))
        req = webhook.request(by[("hook", kind)], receiver(config, "hook"), NOW_MS)
        shown += [req.body.decode(), json.dumps(req.headers), repr(req)]
        msg = mail.email(by[("mail", kind)], receiver(config, "mail"), NOW_MS)
        shown += [msg.as_string(), repr(msg)]
        body = pagerduty.event(by[("pd", kind)], receiver(config, "pd"), NOW_MS)
        assert body.pop("routing_key") == PD_KEY  # required by the API, in the body only
        shown.append(json.dumps(body))
    for text in shown:
        for secret in SECRETS:
            assert secret not in text


def test_a_channel_refuses_another_type_of_receiver(config: RoutingConfig) -> None:
    note = notes(config)[("pd", "trigger")]
    for build in (alertmanager.alerts, pagerduty.event, webhook.request, mail.email):
        with pytest.raises(ValueError, match="'team' is a slack receiver"):
            build(note, receiver(config, "team"), NOW_MS)
    with pytest.raises(ValueError, match="'pd' is a pagerduty receiver"):
        slack.message(note, receiver(config, "pd"), NOW_MS)


def test_a_receiver_copied_as_a_dict_keeps_its_secrets_masked(config: RoutingConfig) -> None:
    import dataclasses

    for rc in config.receivers.values():
        copied = repr(dataclasses.asdict(rc)) if dataclasses.is_dataclass(rc) else repr(rc)
        assert not any(secret in copied for secret in SECRETS), copied
