"""The local alert receiver (slawatch/dev/receiver.py): real HTTP requests on loopback.

Requests are the channels' own payloads (slawatch/alerting/channels/), built for an SLA
event record the way the timers build them, stamped with the wall clock (a webhook's
signature is only good within five minutes of it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from slawatch.alerting.channels import pagerduty, slack, webhook
from slawatch.alerting.config import RoutingConfig, parse_routing
from slawatch.alerting.escalation import Notification, plan
from slawatch.core.sla import SlaEventKind
from slawatch.dev.receiver import (
    MAX_BODY_BYTES,
    Inbox,
    LocalReceiver,
    pagerduty_errors,
    serve,
    wall_clock_ms,
)
from slawatch.schemas.sla_events import SlaEventRecord
from tests.samples import sla_record

HOOK_SECRET = "sekrit-webhook-secret"
PD_KEY = "sekrit-pagerduty-routing-key"
ENV = {
    "HOOK": HOOK_SECRET,
    "PD": PD_KEY,
    "SLACK": "https://hooks.slack.com/services/T000/B000/sekrit",
}
ROUTING = """\
receivers:
  pd: {type: pagerduty, routing_key: {env: PD}}
  team: {type: slack, webhook_url: {env: SLACK}}
  hook: {type: webhook, url: "https://hooks.example.com/sla", secret: {env: HOOK}}
  open: {type: webhook, url: "https://hooks.example.com/open"}
routes:
  - name: all
    escalation:
      - {on: breached, to: [pd, team, hook, open]}
"""
HOUR = 3_600_000
SUBJECT = "Breached: ticket 48213, first reply (level high)"


@pytest.fixture(scope="module")
def config() -> RoutingConfig:
    return parse_routing(ROUTING, "r.yaml", env=ENV)


def record(kind: SlaEventKind, due_ms: int, at_ms: int, conversation: str) -> SlaEventRecord:
    return sla_record(kind, due_ms=due_ms, at_ms=at_ms, conversation_id=conversation)


def notes(
    config: RoutingConfig, now_ms: int, conversation: str = "48213"
) -> dict[tuple[str, str], Notification]:
    """(receiver, kind) -> notification: a breach 12 minutes ago, then a late reply now."""
    due = now_ms - 12 * 60_000
    breached = plan(config, None, record(SlaEventKind.BREACHED, due, due, conversation), now_ms)
    ended = plan(
        config, breached.state, record(SlaEventKind.MISSED, due, now_ms, conversation), now_ms
    )
    return {(n.receiver, n.kind): n for n in (*breached.notifications, *ended.notifications)}


def post(
    url: str, body: bytes | dict[str, Any] | list[Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST and return (status, headers, body), for any status."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture
def rx() -> Iterator[LocalReceiver]:
    with LocalReceiver(secrets={"hook": HOOK_SECRET}, routing_keys={PD_KEY: "pd"}) as receiver:
        yield receiver


# --- Running -------------------------------------------------------------------------


def test_starts_on_a_free_loopback_port_and_stops() -> None:
    receiver = LocalReceiver()
    with pytest.raises(RuntimeError, match="not started"):
        _ = receiver.url
    receiver.start()
    try:
        assert receiver.running
        assert receiver.url == f"http://127.0.0.1:{receiver.port}"
        assert receiver.port > 0
        with urllib.request.urlopen(f"{receiver.url}/-/ready", timeout=5) as response:
            assert (response.status, response.read()) == (200, b"OK")
        with pytest.raises(RuntimeError, match="already started"):
            receiver.start()
    finally:
        receiver.stop()
    assert not receiver.running
    receiver.stop()  # twice is fine
    threads = [t.name for t in threading.enumerate()]
    assert "slawatch-local-receiver" not in threads


def test_two_receivers_get_two_ports() -> None:
    with LocalReceiver() as a, LocalReceiver() as b:
        assert a.port != b.port


# --- Webhooks ------------------------------------------------------------------------


def test_signed_webhook_is_verified_and_recorded(
    rx: LocalReceiver, config: RoutingConfig, tmp_path: Path
) -> None:
    now = wall_clock_ms()
    note = notes(config, now)[("hook", "trigger")]
    req = webhook.request(note, config.receivers["hook"], now)
    status, _, body = post(rx.webhook_url("hook"), req.body, req.headers)
    assert status == 200
    assert json.loads(body) == {"status": "accepted", "idempotency_key": note.id}
    (delivery,) = rx.deliveries
    assert delivery.channel == "webhook"
    assert delivery.name == "hook"
    assert delivery.path == "/webhook/hook"
    assert delivery.verified is True
    assert delivery.body == json.loads(req.body)
    assert delivery.headers[webhook.IDEMPOTENCY_KEY] == note.id
    assert delivery.headers[webhook.SIGNATURE] == req.headers[webhook.SIGNATURE]
    assert delivery.summary == SUBJECT
    assert now - 1000 <= delivery.received_at_ms <= wall_clock_ms()
    (attempt,) = rx.attempts
    assert (attempt.status, attempt.outcome, attempt.detail) == (200, "delivered", "")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("wrong secret", "bad signature or stale timestamp"),
        ("no signature", "no signature"),
        ("stale timestamp", "bad signature or stale timestamp"),
        ("body changed", "bad signature or stale timestamp"),
    ],
)
def test_a_webhook_that_does_not_verify_is_refused(
    rx: LocalReceiver, config: RoutingConfig, change: str, why: str
) -> None:
    now = wall_clock_ms()
    note = notes(config, now)[("hook", "trigger")]
    if change == "stale timestamp":
        now -= 10 * 60_000  # signed correctly, ten minutes ago: a replay
    req = webhook.request(note, config.receivers["hook"], now)
    headers, body = dict(req.headers), req.body
    if change == "wrong secret":
        headers[webhook.SIGNATURE] = webhook.sign("another", headers[webhook.TIMESTAMP], body)
    elif change == "no signature":
        del headers[webhook.SIGNATURE]
    elif change == "body changed":
        body = body.replace(b"48213", b"48214")
    status, _, answer = post(rx.webhook_url("hook"), body, headers)
    assert status == 401
    assert json.loads(answer) == {"error": why}
    assert rx.deliveries == []
    (attempt,) = rx.attempts
    assert (attempt.channel, attempt.name, attempt.status) == ("webhook", "hook", 401)
    assert (attempt.outcome, attempt.detail) == ("refused", why)


def test_a_webhook_without_a_secret_is_accepted_unverified(
    rx: LocalReceiver, config: RoutingConfig
) -> None:
    now = wall_clock_ms()
    resolve = notes(config, now)[("open", "resolve")]
    req = webhook.request(resolve, config.receivers["open"], now)
    assert webhook.SIGNATURE not in req.headers
    status, _, _ = post(rx.webhook_url("open"), req.body, req.headers)
    assert status == 200
    (delivery,) = rx.deliveries
    assert delivery.verified is None
    assert delivery.summary == "Resolved (missed): ticket 48213, first reply (level high)"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe{}", b"[1, 2]", b'"text"'])
def test_a_webhook_body_that_is_not_a_json_object_is_400(rx: LocalReceiver, body: bytes) -> None:
    status, _, answer = post(rx.webhook_url("open"), body)
    assert status == 400
    assert json.loads(answer) == {"error": "the body is not a JSON object"}
    assert rx.deliveries == []
    assert [a.outcome for a in rx.attempts] == ["invalid"]


def test_a_webhook_of_another_shape_is_still_recorded(rx: LocalReceiver) -> None:
    status, _, _ = post(rx.webhook_url("open"), {"hello": "world"})
    assert status == 200
    assert rx.deliveries[0].summary == "a webhook of another shape (1 fields)"


# --- Slack ---------------------------------------------------------------------------


def test_slack_message_and_digest_are_echoed(
    config: RoutingConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    now = wall_clock_ms()
    team = config.receivers["team"]
    many = [notes(config, now, str(n))[("team", "trigger")] for n in (48213, 48214, 48215)]
    with LocalReceiver(echo=True) as rx:
        status, _, answer = post(rx.slack_url("team"), slack.message(many[0], team, now))
        assert (status, answer) == (200, b"ok")
        status, _, _ = post(rx.slack_url("team"), slack.digest(many, team, now))
        assert status == 200
        status, _, _ = post(rx.slack_url("team"), {"channel": "#x"})
        assert status == 400
        first, second = rx.deliveries
    assert first.summary == f"{SUBJECT}, 12m 00s past due"
    assert second.summary == "3 SLA notifications: 3 breached"
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"alert → slack/team: {SUBJECT}, 12m 00s past due",
        "alert → slack/team: 3 SLA notifications: 3 breached",
        "alert ✗ slack/team: 400 invalid: no_text",
    ]


def test_slack_text_is_unescaped_in_the_summary(rx: LocalReceiver) -> None:
    status, _, _ = post(rx.slack_url("team"), {"text": "a &lt;b&gt; &amp;amp; c\nsecond line"})
    assert status == 200
    assert rx.deliveries[0].summary == "a <b> &amp; c"


@pytest.mark.parametrize(
    ("body", "answer"),
    [(b"nope", b"invalid_payload"), (b"[]", b"invalid_payload"), (b"{}", b"no_text")],
)
def test_slack_refuses_what_slack_refuses(rx: LocalReceiver, body: bytes, answer: bytes) -> None:
    status, _, text = post(rx.slack_url("team"), body)
    assert (status, text) == (400, answer)
    assert rx.deliveries == []


# --- PagerDuty -----------------------------------------------------------------------


def test_pagerduty_trigger_and_resolve(rx: LocalReceiver, config: RoutingConfig) -> None:
    now = wall_clock_ms()
    by_kind = notes(config, now)
    pd = config.receivers["pd"]
    trigger = pagerduty.event(by_kind[("pd", "trigger")], pd, now)
    resolve = pagerduty.event(by_kind[("pd", "resolve")], pd, now)
    for event in (trigger, resolve):
        status, headers, body = post(rx.pagerduty_url, event)
        assert status == 202
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {
            "status": "success",
            "message": "Event processed",
            "dedup_key": trigger["dedup_key"],
        }
    first, second = rx.deliveries
    assert (first.channel, first.name, first.path) == ("pagerduty", "pd", "/pagerduty/v2/enqueue")
    assert first.summary == SUBJECT
    assert second.summary == f"Resolved: {trigger['dedup_key']}"
    assert first.body == {**trigger, "routing_key": "(pd)"}  # the key itself is not kept


def test_pagerduty_trigger_without_dedup_key_gets_one(rx: LocalReceiver) -> None:
    event = {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "here", "severity": "info"},
    }
    status, _, body = post(rx.pagerduty_url, event)
    assert status == 202
    assert len(json.loads(body)["dedup_key"]) == 32


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"routing_key": None}, "'routing_key' is missing or blank"),
        ({"routing_key": "someone-else"}, "Invalid routing key"),
        ({"event_action": None}, "'event_action' is missing or blank"),
        ({"event_action": "escalate"}, "'event_action' must be one of"),
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is required for event"),
        ({"dedup_key": "k" * 256}, "'dedup_key' is longer than 255 characters"),
        ({"dedup_key": ""}, "'dedup_key' must be a non-blank string"),
        ({"payload": None}, "'payload' is missing or not an object"),
        ({"payload": {"source": "s", "severity": "info"}}, "'payload.summary' is missing"),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source' is missing"),
        ({"payload": {"summary": "s", "source": "s"}}, "'payload.severity' is missing"),
        (
            {"payload": {"summary": "s", "source": "s", "severity": "bad"}},
            "'payload.severity' must",
        ),
        (
            {"payload": {"summary": "s" * 1025, "source": "s", "severity": "info"}},
            "'payload.summary' is longer than 1024 characters",
        ),
    ],
)
def test_pagerduty_refuses_an_invalid_event(
    rx: LocalReceiver, change: dict[str, Any], error: str
) -> None:
    event: dict[str, Any] = {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "dedup_key": "slawatch:x",
        "payload": {"summary": "s", "source": "s", "severity": "critical"},
    }
    for name, value in change.items():
        if value is None:
            del event[name]
        else:
            event[name] = value
    status, _, body = post(rx.pagerduty_url, event)
    assert status == 400
    answer = json.loads(body)
    assert (answer["status"], answer["message"]) == ("invalid event", "Event object is invalid")
    assert len(answer["errors"]) == 1
    assert answer["errors"][0].startswith(error)
    assert rx.deliveries == []
    (attempt,) = rx.attempts
    assert (attempt.channel, attempt.outcome, attempt.status) == ("pagerduty", "invalid", 400)


def test_pagerduty_refuses_what_is_not_json(rx: LocalReceiver) -> None:
    status, _, body = post(rx.pagerduty_url, b"routing_key=x")
    assert status == 400
    assert json.loads(body)["errors"] == ["Event object is not a JSON object"]


def test_pagerduty_without_known_keys_names_a_key_by_its_hash(config: RoutingConfig) -> None:
    now = wall_clock_ms()
    event = pagerduty.event(notes(config, now)[("pd", "trigger")], config.receivers["pd"], now)
    with LocalReceiver(echo=False) as rx:
        assert post(rx.pagerduty_url, event)[0] == 202
        (delivery,) = rx.deliveries
    assert delivery.name.startswith("key-")
    assert PD_KEY not in delivery.line
    assert pagerduty_errors(event, None) == []


# --- Scripted failures ---------------------------------------------------------------


def test_fail_next_answers_the_statuses_then_accepts(rx: LocalReceiver) -> None:
    rx.fail_next("/slack/team", [503, 429], retry_after=7)
    body = {"text": "hello"}
    first = post(rx.slack_url("team"), body)
    assert (first[0], first[2]) == (503, b"scripted failure 503")
    assert first[1]["Retry-After"] == "7"
    assert post(rx.slack_url("other"), body)[0] == 200  # another path: not scripted
    assert post(rx.slack_url("team"), body)[0] == 429
    assert post(rx.slack_url("team"), body)[0] == 200
    assert [d.name for d in rx.deliveries] == ["other", "team"]
    assert [(a.name, a.status, a.outcome) for a in rx.attempts] == [
        ("team", 503, "failed"),
        ("other", 200, "delivered"),
        ("team", 429, "failed"),
        ("team", 200, "delivered"),
    ]


def test_fail_next_defaults_and_prefixes(rx: LocalReceiver) -> None:
    rx.fail_next("/pagerduty")  # 503, 503
    rx.fail_next("/", [500])  # any path, after the first script is used up
    event = {"routing_key": PD_KEY, "event_action": "resolve", "dedup_key": "k"}
    answers = [post(rx.pagerduty_url, event) for _ in range(4)]
    assert [a[0] for a in answers] == [503, 503, 500, 202]
    assert "Retry-After" not in answers[0][1]
    assert post(rx.webhook_url("open"), {"x": 1})[0] == 200


def test_fail_next_takes_failure_statuses_only(rx: LocalReceiver) -> None:
    with pytest.raises(ValueError, match="200"):
        rx.fail_next("/slack/team", [200])
    with pytest.raises(ValueError, match="must start with /"):
        rx.fail_next("slack/team")


def test_clear_forgets_everything(rx: LocalReceiver) -> None:
    rx.fail_next("/slack", [503])
    post(rx.slack_url("team"), {"text": "a"})
    rx.clear()
    assert rx.attempts == rx.deliveries == []
    assert post(rx.slack_url("team"), {"text": "a"})[0] == 200


# --- Limits, files, threads ----------------------------------------------------------


def test_a_body_over_the_limit_is_413(rx: LocalReceiver) -> None:
    big = {"text": "x" * MAX_BODY_BYTES}
    status, _, answer = post(rx.slack_url("team"), big)
    assert status == 413
    assert b"over 1048576" in answer
    assert rx.deliveries == []
    assert [(a.status, a.outcome) for a in rx.attempts] == [(413, "invalid")]


def test_a_chunked_body_over_the_limit_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    async def send(url: str) -> int:
        async with aiohttp.ClientSession() as session, session.post(url, data=chunks()) as r:
            await r.read()
            return r.status

    with LocalReceiver(max_body_bytes=16 * 1024) as rx:
        assert asyncio.run(send(rx.slack_url("team"))) == 413
        assert post(rx.slack_url("team"), {"text": "small"})[0] == 200  # still serving
        assert [a.status for a in rx.attempts] == [413, 200]


def test_deliveries_are_appended_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "deliveries.jsonl"
    with LocalReceiver(log_path=log) as rx:
        post(rx.slack_url("team"), {"text": "one"})
        post(rx.slack_url("team"), {})  # refused: not logged
        post(rx.slack_url("team"), {"text": "two"})
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["summary"] for row in rows] == ["one", "two"]
    assert rows[0]["channel"] == "slack"
    assert rows[0]["body"] == {"text": "one"}
    assert rows[0]["headers"]["Content-Type"] == "application/json"
    assert set(rows[0]) == {
        "channel", "name", "path", "headers", "body", "received_at_ms", "summary", "verified",
    }  # fmt: skip


def test_concurrent_requests_from_threads_are_all_recorded(rx: LocalReceiver) -> None:
    def send(n: int) -> None:
        for i in range(5):
            assert post(rx.slack_url(f"t{n}"), {"text": f"{n}-{i}"})[0] == 200

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    delivered = rx.wait_for(40, timeout_s=20)
    for t in threads:
        t.join()
    assert sorted(d.summary for d in delivered) == sorted(
        f"{n}-{i}" for n in range(8) for i in range(5)
    )


def test_wait_for_times_out_naming_what_came(rx: LocalReceiver) -> None:
    post(rx.slack_url("team"), {})
    with pytest.raises(TimeoutError, match=r"0 deliveries within 0.1 s, not 1: \['no_text'\]"):
        rx.wait_for(1, timeout_s=0.1)


# --- serve() and the command ---------------------------------------------------------


def test_serve_runs_on_the_callers_loop_until_stopped() -> None:
    async def scenario() -> Inbox:
        stop = asyncio.Event()
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        inbox = Inbox()
        task = asyncio.create_task(serve(inbox=inbox, ready=ready.set_result, stop=stop))
        url = await asyncio.wait_for(ready, 10)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/slack/team", json={"text": "hi"}) as response,
        ):
            assert (response.status, await response.text()) == (200, "ok")
        stop.set()
        assert await task is inbox
        return inbox

    inbox = asyncio.run(scenario())
    assert [d.summary for d in inbox.deliveries] == ["hi"]


def test_the_command_serves_until_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "HOOK_SECRET": HOOK_SECRET}
    command = [sys.executable, "-m", "slawatch.dev.receiver", "--secret", "hook=HOOK_SECRET"]
    process = subprocess.Popen(
        [*command, "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("slawatch receiver listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        body = b'{"a": 1}'
        timestamp = str(int(time.time()))
        signed = {
            webhook.TIMESTAMP: timestamp,
            webhook.SIGNATURE: webhook.sign(HOOK_SECRET, timestamp, body),
        }
        assert post(f"{url}/webhook/hook", body, signed)[0] == 200
        assert post(f"{url}/webhook/hook", body)[0] == 401
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.splitlines() == [
        "alert → webhook/hook: a webhook of another shape (1 fields)",
        "alert ✗ webhook/hook: 401 refused: no signature",
    ]
    assert len(log.read_text().splitlines()) == 1
