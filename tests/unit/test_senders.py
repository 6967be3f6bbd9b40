"""The senders (slawatch/alerting/senders/): one attempt each, against real servers.

Each HTTP sender posts to a real ``aiohttp.web`` server on 127.0.0.1 that records the
requests and answers as scripted; the e-mail sender talks to a real ``aiosmtpd`` server.
Receivers come from a routing file read by ``parse_routing``. Secrets are distinctive
strings, and no outcome's detail may hold one, whatever the server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from slawatch.alerting.channels import alertmanager, mail, pagerduty, slack, webhook
from slawatch.alerting.config import RoutingConfig, parse_routing
from slawatch.alerting.escalation import Notification, plan
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders import (
    SENDERS,
    AlertmanagerSender,
    EmailSender,
    Outcome,
    PagerDutySender,
    Sender,
    SlackSender,
    WebhookSender,
    sender_for,
)
from slawatch.alerting.senders.alertmanager import alerts_url
from slawatch.alerting.senders.detail import one_line, shown_url
from slawatch.alerting.senders.email import tls_options
from slawatch.alerting.senders.http import MAX_RETRY_AFTER_S, retry_after
from slawatch.core.sla import SlaEventKind
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord
from tests.samples import sla_record

PD_KEY = "sekrit-pd-routing-key-0d1e"
SLACK_TOKEN = "sekrit-slack-token-7c2b9f"
HOOK_SECRET = "sekrit-webhook-secret-5a3e"
SMTP_PASSWORD = "sekrit-smtp-password-91f4"
SECRETS = (PD_KEY, SLACK_TOKEN, HOOK_SECRET, SMTP_PASSWORD)
TEMPLATE = "https://helpdesk.example.com/tickets/{conversation_id}"
DUE_MS = parse_timestamp_ms("2026-11-22T10:00:00.000Z")
NOW_MS = DUE_MS + 12 * 60_000 + 3_000
HOUR = 3_600_000
#: The timeout of the receivers that a test lets time out.
SHORT = "200ms"


# --- Notifications and receivers ------------------------------------------------------


def record(
    kind: SlaEventKind, conversation_id: str = "48213", at_ms: int = DUE_MS
) -> SlaEventRecord:
    return sla_record(
        kind, due_ms=DUE_MS, at_ms=at_ms, detected_after_ms=683, conversation_id=conversation_id
    )


def routing(receivers: str, env: dict[str, str] | None = None) -> RoutingConfig:
    """A routing file of ``receivers`` (YAML lines under ``receivers:``), every one of
    them told of every breach."""
    names = [line.split(":", 1)[0].strip() for line in receivers.splitlines() if line[2] != " "]
    text = (
        f"receivers:\n{receivers}routes:\n  - name: all\n    escalation:\n"
        f"      - {{on: breached, to: [{', '.join(names)}]}}\n"
    )
    return parse_routing(text, "r.yaml", env=env or {})


def notes(config: RoutingConfig, name: str, count: int = 1) -> list[Notification]:
    """``count`` breach triggers (conversations 48213, 48214, ...) to receiver ``name``."""
    out = []
    for i in range(count):
        step = plan(config, None, record(SlaEventKind.BREACHED, str(48213 + i)), NOW_MS)
        out += [n for n in step.notifications if n.receiver == name]
    return out


def assert_no_secret(*outcomes: Outcome) -> None:
    for outcome in outcomes:
        for secret in SECRETS:
            assert secret not in outcome.detail, outcome
        assert "\n" not in outcome.detail


# --- A real HTTP server ---------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    """Never answer (until the server stops)."""
    stall: bool = False
    """Send the status, the headers and ``body``, then never finish the body."""


class Server:
    """An ``aiohttp.web`` server on 127.0.0.1 that records every request and gives the
    scripted answers in order (200 with an empty body when the script runs out)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.script: list[Answer] = []
        self.release = asyncio.Event()
        self.port = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        answer = self.script.pop(0) if self.script else Answer()
        if answer.hang:
            await self.release.wait()
        if answer.stall:
            response = web.StreamResponse(status=answer.status, headers=answer.headers)
            response.content_length = len(answer.body) + 1000
            await response.prepare(request)
            await response.write(answer.body.encode())
            await self.release.wait()
            return response
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)


@contextlib.asynccontextmanager
async def http_server() -> AsyncIterator[Server]:
    server = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def opened(sender: Sender) -> AsyncIterator[Sender]:
    try:
        yield sender
    finally:
        await sender.close()


def free_port() -> int:
    """A port nothing listens on (bound, read and closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def close_server(server: asyncio.Server, writers: list[asyncio.StreamWriter]) -> None:
    """Stop a raw asyncio server and close the connections it accepted."""
    server.close()
    for writer in writers:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    await server.wait_closed()


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


# --- Pure parts -----------------------------------------------------------------------


def test_retry_after_reads_seconds_and_dates_and_caps_them() -> None:
    now = 1_800_000_000.0
    assert retry_after("120") == 120.0
    assert retry_after(" 7 ") == 7.0
    assert retry_after("0") == 0.0
    assert retry_after("-5") == 0.0
    assert retry_after("999999") == MAX_RETRY_AFTER_S
    date = format_datetime(datetime.fromtimestamp(now + 90, tz=UTC), usegmt=True)
    assert retry_after(date, now_s=now) == pytest.approx(90.0)
    past = format_datetime(datetime.fromtimestamp(now - 90, tz=UTC), usegmt=True)
    assert retry_after(past, now_s=now) == 0.0
    for bad in (None, "", "soon", "nan", "inf", "Mon, 99 Foo 2026"):
        assert retry_after(bad) is None


def test_alertmanager_url_gets_the_api_path_once() -> None:
    assert alerts_url("http://am:9093") == "http://am:9093/api/v2/alerts"
    assert alerts_url("http://am:9093/") == "http://am:9093/api/v2/alerts"
    assert alerts_url("http://am:9093/prefix/") == "http://am:9093/prefix/api/v2/alerts"
    assert alerts_url("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts"
    assert alerts_url("http://am:9093/api/v2/alerts/") == "http://am:9093/api/v2/alerts"


def test_shown_urls_and_lines() -> None:
    assert shown_url("https://u:pw@h.example.com/x?y=1") == "https://u:***@h.example.com/x?y=1"
    assert shown_url("https://h.example.com/x") == "https://h.example.com/x"
    assert one_line("a\r\n  b\tc\x1b[31m") == "a b c [31m"
    assert one_line("x" * 300) == "x" * 199 + "…"


def test_tls_modes() -> None:
    assert tls_options("auto", 465) == (True, False)
    assert tls_options("auto", 587) == (False, None)
    assert tls_options("auto", 25) == (False, None)
    assert tls_options("starttls", 587) == (False, True)
    assert tls_options("implicit", 2465) == (True, False)
    assert tls_options("none", 465) == (False, False)
    with pytest.raises(ValueError):
        tls_options("maybe", 25)


def test_sender_for_each_type() -> None:
    config = routing(
        '  am: {type: alertmanager, url: "http://am:9093"}\n'
        "  pd: {type: pagerduty, routing_key: {env: PD}}\n"
        "  team: {type: slack, webhook_url: {env: SLACK}}\n"
        '  hook: {type: webhook, url: "https://hooks.example.com/sla"}\n'
        "  mail: {type: email, to: [a@example.com], from: s@example.com, "
        'smtp: "smtp.example.com:587"}\n',
        {"PD": PD_KEY, "SLACK": f"https://hooks.slack.com/services/T0/B0/{SLACK_TOKEN}"},
    )
    kinds = {name: type(sender_for(r)) for name, r in config.receivers.items()}
    assert kinds == {
        "am": AlertmanagerSender,
        "pd": PagerDutySender,
        "team": SlackSender,
        "hook": WebhookSender,
        "mail": EmailSender,
    }
    assert set(SENDERS) == {"alertmanager", "pagerduty", "slack", "webhook", "email"}
    assert (AlertmanagerSender.batch_size, PagerDutySender.batch_size) == (100, 1)
    assert SlackSender.digests and EmailSender.digests and not WebhookSender.digests
    pd = sender_for(config.receivers["pd"], link_template=TEMPLATE)
    assert isinstance(pd, PagerDutySender) and pd.url == pagerduty.DEFAULT_URL
    assert pd.link_template == TEMPLATE
    with pytest.raises(ValueError, match="no sender"):
        sender_for(Receiver("x", "carrier-pigeon", {}))


# --- Alertmanager ---------------------------------------------------------------------


def test_alertmanager_posts_a_batch_in_one_request() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = routing(
                f'  am: {{type: alertmanager, url: "{server.url("/")}", identity_labels: true}}\n'
            )
            am = config.receivers["am"]
            batch = notes(config, "am", 3)
            async with opened(sender_for(am, link_template=TEMPLATE)) as sender:
                outcome = await sender.send(batch, NOW_MS)
            assert outcome.status == "delivered", outcome
            assert outcome.detail == "HTTP 200 from alertmanager receiver 'am'"
            (seen,) = server.seen
            assert (seen.method, seen.path) == ("POST", "/api/v2/alerts")
            assert seen.headers["Content-Type"] == "application/json"
            expected = [
                alert
                for note in batch
                for alert in alertmanager.alerts(
                    note, am, NOW_MS, link_template=TEMPLATE, identity_labels=True
                )
            ]
            assert seen.json() == expected and len(expected) == 3
            assert [a["labels"]["conversation_id"] for a in expected] == ["48213", "48214", "48215"]

    run(test)


def test_alertmanager_posts_nothing_when_no_alert_started() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = routing(f'  am: {{type: alertmanager, url: "{server.url()}"}}\n')
            met_ms = DUE_MS - HOUR // 2  # before at risk: neither alert ever started
            met = record(SlaEventKind.MET, at_ms=met_ms)
            cycle = "|".join(met.event_id.split("|")[:-1])
            resolve = Notification(f"{cycle}|am|resolve", cycle, "am", "resolve", "resolve", met)
            async with opened(sender_for(config.receivers["am"])) as sender:
                outcome = await sender.send([resolve], met_ms)
            assert outcome == Outcome("delivered", "no alert to send to alertmanager receiver 'am'")
            assert server.seen == []

    run(test)


def test_alertmanager_400_fails_and_503_retries() -> None:
    async def test() -> None:
        async with http_server() as server:
            url = server.url("/am/api/v2/alerts")
            config = routing(f'  am: {{type: alertmanager, url: "{url}"}}\n')
            server.answer(
                Answer(400, '{"code":400,"message":"start time must be before end time"}'),
                Answer(503, "Service Unavailable", {"Retry-After": "30"}),
            )
            note = notes(config, "am")
            async with opened(sender_for(config.receivers["am"])) as sender:
                bad = await sender.send(note, NOW_MS)
                busy = await sender.send(note, NOW_MS)
            assert [s.path for s in server.seen] == ["/am/api/v2/alerts"] * 2
            assert bad.status == "failed"
            assert bad.detail == (
                "HTTP 400 from alertmanager receiver 'am': "
                '{"code":400,"message":"start time must be before end time"}'
            )
            assert busy == Outcome(
                "retry", "HTTP 503 from alertmanager receiver 'am': Service Unavailable", 30.0
            )

    run(test)


# --- PagerDuty ------------------------------------------------------------------------


def test_pagerduty_202_400_429_and_never_the_routing_key() -> None:
    async def test() -> None:
        async with http_server() as server:
            url = server.url("/v2/enqueue")
            config = routing(
                f'  pd: {{type: pagerduty, routing_key: {{env: PD}}, url: "{url}"}}\n',
                {"PD": PD_KEY},
            )
            pd = config.receivers["pd"]
            invalid = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [f"Routing key {PD_KEY} is not known", "'payload.summary' is missing"],
            }
            server.answer(
                Answer(202, '{"status":"success","message":"Event processed","dedup_key":"x"}'),
                Answer(400, json.dumps(invalid)),
                Answer(429, "Too Many Requests"),
                Answer(400, f"not json, but the key {PD_KEY}"),
            )
            (note,) = notes(config, "pd")
            async with opened(sender_for(pd, link_template=TEMPLATE)) as sender:
                outcomes = [await sender.send([note], NOW_MS) for _ in range(4)]
            ok, bad, busy, odd = outcomes
            assert ok.status == "delivered" and ok.detail == "HTTP 202 from pagerduty receiver 'pd'"
            assert bad.status == "failed"
            assert bad.detail == (
                "HTTP 400 from pagerduty receiver 'pd': Event object is invalid: "
                "Routing key env:PD is not known; 'payload.summary' is missing"
            )
            assert busy == Outcome(
                "retry", "HTTP 429 from pagerduty receiver 'pd': Too Many Requests"
            )
            assert (
                odd.detail == "HTTP 400 from pagerduty receiver 'pd': not json, but the key env:PD"
            )
            assert_no_secret(*outcomes)
            seen = server.seen[0]
            assert seen.path == "/v2/enqueue"
            assert seen.json() == pagerduty.event(note, pd, NOW_MS, link_template=TEMPLATE)
            assert seen.json()["routing_key"] == PD_KEY  # where the API needs it, only

    run(test)


# --- Slack ----------------------------------------------------------------------------


def slack_routing(server: Server, timeout: str = "10s") -> RoutingConfig:
    url = server.url(f"/services/T000/B000/{SLACK_TOKEN}")
    return routing(
        "  team:\n    type: slack\n    webhook_url: {env: SLACK}\n"
        f"    channel: '#support-sla'\n    timeout: {timeout}\n",
        {"SLACK": url},
    )


def test_slack_message_and_digest() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = slack_routing(server)
            team = config.receivers["team"]
            server.answer(Answer(200, "ok"), Answer(200, "ok"))
            one, *more = notes(config, "team", 3)
            async with opened(sender_for(team, link_template=TEMPLATE)) as sender:
                first = await sender.send([one], NOW_MS)
                digest = await sender.send([one, *more], NOW_MS)
            assert first.status == digest.status == "delivered"
            assert first.detail == "HTTP 200 from slack receiver 'team'"
            single, many = server.seen
            assert single.path == f"/services/T000/B000/{SLACK_TOKEN}"
            assert single.headers["Content-Type"] == "application/json; charset=utf-8"
            assert single.json() == slack.message(one, team, NOW_MS, link_template=TEMPLATE)
            assert many.json() == slack.digest([one, *more], team, NOW_MS, link_template=TEMPLATE)
            assert many.json()["text"].startswith("3 SLA notifications: 3 breached")

    run(test)


def test_slack_failures_never_show_the_webhook_url() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = slack_routing(server)
            echo = f"no such hook: /services/T000/B000/{SLACK_TOKEN} (at {server.url('/')})"
            server.answer(
                Answer(404, "no_service"),
                Answer(400, "invalid_payload"),
                Answer(410, "channel_is_archived"),
                Answer(429, "rate_limited", {"Retry-After": "7"}),
                Answer(503, echo),
            )
            note = notes(config, "team")
            async with opened(sender_for(config.receivers["team"])) as sender:
                outcomes = [await sender.send(note, NOW_MS) for _ in range(5)]
            gone, invalid, archived, limited, down = outcomes
            assert gone == Outcome("failed", "HTTP 404 from slack receiver 'team': no_service")
            assert invalid.status == archived.status == "failed"
            assert archived.detail.endswith(": channel_is_archived")
            assert limited == Outcome(
                "retry", "HTTP 429 from slack receiver 'team': rate_limited", 7.0
            )
            assert down.status == "retry"
            assert down.detail.startswith("HTTP 503 from slack receiver 'team': no such hook: ")
            assert "(env:SLACK)" in down.detail
            assert_no_secret(*outcomes)

    run(test)


def test_connection_refused_retries_without_the_url() -> None:
    async def test() -> None:
        url = f"http://127.0.0.1:{free_port()}/services/T000/B000/{SLACK_TOKEN}"
        config = routing("  team: {type: slack, webhook_url: {env: SLACK}}\n", {"SLACK": url})
        async with opened(sender_for(config.receivers["team"])) as sender:
            outcome = await sender.send(notes(config, "team"), NOW_MS)
        assert outcome.status == "retry"
        assert outcome.detail == (
            "connection refused (ECONNREFUSED) connecting to slack receiver 'team' "
            "(the webhook URL (env:SLACK))"
        )
        assert_no_secret(outcome)

    run(test)


def test_a_server_that_never_answers_times_out() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = slack_routing(server, timeout=SHORT)
            server.answer(Answer(hang=True))
            async with opened(sender_for(config.receivers["team"])) as sender:
                started = time.monotonic()
                outcome = await sender.send(notes(config, "team"), NOW_MS)
                took = time.monotonic() - started
            assert outcome == Outcome(
                "retry",
                "timeout after 0.2s posting to slack receiver 'team' (the webhook URL (env:SLACK))",
            )
            assert 0.15 < took < 2.0
            assert len(server.seen) == 1

    run(test)


def test_an_answer_whose_body_never_ends_counts_by_its_status() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = slack_routing(server, timeout=SHORT)
            server.answer(Answer(200, "o", stall=True), Answer(503, "overloa", stall=True))
            note = notes(config, "team")
            async with opened(sender_for(config.receivers["team"])) as sender:
                accepted = await sender.send(note, NOW_MS)
                busy = await sender.send(note, NOW_MS)
            # Slack has the message: sending it again would post it twice.
            assert accepted == Outcome("delivered", "HTTP 200 from slack receiver 'team'")
            assert busy == Outcome("retry", "HTTP 503 from slack receiver 'team': overloa")

    run(test)


def test_a_server_that_hangs_up_retries() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def test() -> None:
        server = await asyncio.start_server(rude, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            config = routing(f'  hook: {{type: webhook, url: "http://127.0.0.1:{port}/x"}}\n')
            async with opened(sender_for(config.receivers["hook"])) as sender:
                outcome = await sender.send(notes(config, "hook"), NOW_MS)
        finally:
            await close_server(server, writers)
        assert outcome == Outcome(
            "retry",
            "the server closed the connection: webhook receiver 'hook' "
            f"(http://127.0.0.1:{port}/x)",
        )

    run(test)


# --- Webhooks and the classification table ---------------------------------------------


def hook_routing(server: Server, secret: bool = True) -> RoutingConfig:
    line = ", secret: {env: HOOK}" if secret else ""
    return routing(
        f'  hook: {{type: webhook, url: "{server.url("/hooks/sla?src=slawatch")}"{line}}}\n',
        {"HOOK": HOOK_SECRET},
    )


def test_webhook_posts_the_signed_request_at_the_wall_clocks_time() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = hook_routing(server)
            hook = config.receivers["hook"]
            server.answer(Answer(204))
            (note,) = notes(config, "hook")
            async with opened(sender_for(hook, link_template=TEMPLATE)) as sender:
                before_ms = time.time_ns() // 1_000_000
                outcome = await sender.send([note], NOW_MS)
                after_ms = time.time_ns() // 1_000_000
            assert outcome == Outcome("delivered", "HTTP 204 from webhook receiver 'hook'")
            (seen,) = server.seen
            assert seen.path == "/hooks/sla?src=slawatch"
            # Signed when sent, by the wall clock (the receiver checks the timestamp
            # against its own), whatever clock the notifier plans on (NOW_MS is 2026-11).
            sent_ms = parse_timestamp_ms(seen.json()["sent_at"])
            assert before_ms <= sent_ms <= after_ms
            expected = webhook.request(note, hook, sent_ms, link_template=TEMPLATE)
            assert seen.body == expected.body
            for name, value in expected.headers.items():
                assert seen.headers[name] == value
            assert seen.headers[webhook.IDEMPOTENCY_KEY] == note.id
            assert webhook.verify_signature(
                HOOK_SECRET,
                seen.headers[webhook.TIMESTAMP],
                seen.body,
                seen.headers[webhook.SIGNATURE],
            )
            assert HOOK_SECRET.encode() not in seen.body
            assert all(HOOK_SECRET not in v for v in seen.headers.values())

    run(test)


CLASSIFICATION = [
    (200, "delivered"),
    (201, "delivered"),
    (202, "delivered"),
    (204, "delivered"),
    (301, "failed"),
    (302, "failed"),
    (400, "failed"),
    (401, "failed"),
    (403, "failed"),
    (404, "failed"),
    (409, "failed"),
    (410, "failed"),
    (413, "failed"),
    (422, "failed"),
    (408, "retry"),
    (425, "retry"),
    (429, "retry"),
    (500, "retry"),
    (502, "retry"),
    (503, "retry"),
    (504, "retry"),
]


def test_the_classification_table() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = hook_routing(server, secret=False)
            for status, _ in CLASSIFICATION:
                headers = {"Location": server.url("/elsewhere")} if 300 <= status < 400 else {}
                server.answer(Answer(status, f"answer {status}", headers))
            note = notes(config, "hook")
            async with opened(sender_for(config.receivers["hook"])) as sender:
                got = [(s, (await sender.send(note, NOW_MS)).status) for s, _ in CLASSIFICATION]
            assert got == CLASSIFICATION
            # A redirect is not followed (a POST would become a GET).
            assert {(s.method, s.path) for s in server.seen} == {
                ("POST", "/hooks/sla?src=slawatch")
            }
            assert len(server.seen) == len(CLASSIFICATION)

    run(test)


def test_a_long_body_is_one_clipped_line() -> None:
    async def test() -> None:
        async with http_server() as server:
            config = hook_routing(server)
            server.answer(Answer(500, "<html>\n<body>\n" + "oops " * 500 + HOOK_SECRET))
            async with opened(sender_for(config.receivers["hook"])) as sender:
                outcome = await sender.send(notes(config, "hook"), NOW_MS)
            head = "HTTP 500 from webhook receiver 'hook': "
            assert outcome.detail.startswith(head + "<html> <body> oops oops")
            assert len(outcome.detail) == len(head) + 200 and outcome.detail.endswith("…")
            assert outcome.retry_after_s is None

    run(test)


# --- E-mail ---------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler: records each message; refuses recipients as scripted."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.rcpt_answers: list[str] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.rcpt_answers.pop(0) if self.rcpt_answers else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = data.login == b"slawatch" and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtpd() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def mail_routing(port: int, extra: str = "", password: str = SMTP_PASSWORD) -> RoutingConfig:
    return routing(
        "  mail:\n    type: email\n    to: [oncall@example.com, lead@example.com]\n"
        f"    from: slawatch@example.com\n    smtp: '127.0.0.1:{port}'\n    timeout: 5s\n{extra}",
        {"SMTP": password},
    )


def part(msg: Any, subtype: str) -> str:
    body = msg.get_body((subtype,))
    assert body is not None
    content: str = body.get_content()
    return content


def parsed(envelope: Envelope) -> Any:
    content = envelope.content
    assert isinstance(content, bytes)
    return message_from_bytes(content, policy=email.policy.default)


def test_email_one_message_and_a_digest(smtpd: tuple[Mailbox, int]) -> None:
    box, port = smtpd

    async def test() -> None:
        config = mail_routing(port)
        one, *more = notes(config, "mail", 3)
        async with opened(sender_for(config.receivers["mail"], link_template=TEMPLATE)) as s:
            first = await s.send([one], NOW_MS)
            digest = await s.send([one, *more], NOW_MS)
            again = await s.send([*more, one], NOW_MS + 60_000)
        for outcome in (first, digest, again):
            assert outcome.status == "delivered", outcome
            assert outcome.detail.startswith(
                f"accepted by email receiver 'mail' (smtp 127.0.0.1:{port}): "
            )
        assert_no_secret(first, digest, again)

    run(test)
    single, many, many_again = box.messages
    assert single.mail_from == "slawatch@example.com"
    assert single.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    msg = parsed(single)
    assert msg["Subject"] == "[slawatch] Breached: ticket 48213, first reply (level high)"
    digest = parsed(many)
    assert digest["Subject"] == "[slawatch] 3 SLA notifications: 3 breached"
    assert digest["X-Slawatch-Notification"] == "digest"
    # The same notifications, in any order, at any time: the same Message-ID.
    assert digest["Message-ID"] == parsed(many_again)["Message-ID"] != msg["Message-ID"]
    text = part(digest, "plain")
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == 3
    assert lines[1] == (
        "- Breached: ticket 48214, first reply (level high), 12m 03s past due, agent-07: "
        "https://helpdesk.example.com/tickets/48214"
    )
    page = part(digest, "html")
    assert page.count("<tr>") == 4
    assert '<a href="https://helpdesk.example.com/tickets/48215">ticket 48215</a>' in page


def test_email_digest_escapes_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    config = mail_routing(25)
    box = config.receivers["mail"]
    evil = '<script>alert("x")</script>&'
    breach = plan(config, None, record(SlaEventKind.BREACHED, evil), NOW_MS).notifications
    batch = [*breach, *notes(config, "mail", 3)]
    monkeypatch.setattr(mail, "MAX_DIGEST_ROWS", 2)
    msg = mail.digest(batch, box, NOW_MS, link_template=TEMPLATE)
    assert msg["Subject"] == "[slawatch] 4 SLA notifications: 4 breached"
    page = part(msg, "html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "%3Cscript%3E" in page  # the link, quoted
    assert page.count("<tr>") == 3 and "... and 2 more" in page
    text = part(msg, "plain")
    assert "... and 2 more" in text and evil in text  # plain text is not markup
    with pytest.raises(ValueError, match="no notifications"):
        mail.digest([], box, NOW_MS)


def test_email_logs_in_and_a_refused_login_fails_without_the_password(
    smtpd: tuple[Mailbox, int],
) -> None:
    box, port = smtpd
    login = "    username: slawatch\n    password: {env: SMTP}\n"
    wrong = "sekrit-wrong-password-3b8d"

    async def test() -> None:
        good = mail_routing(port, login)
        bad = mail_routing(port, login, password=wrong)
        async with opened(sender_for(good.receivers["mail"])) as s:
            ok = await s.send(notes(good, "mail"), NOW_MS)
        async with opened(sender_for(bad.receivers["mail"])) as s:
            refused = await s.send(notes(bad, "mail"), NOW_MS)
        assert ok.status == "delivered", ok
        assert refused.status == "failed", refused
        assert refused.detail.startswith(
            f"login as 'slawatch' refused by email receiver 'mail' (smtp 127.0.0.1:{port}): 535"
        )
        assert wrong not in refused.detail
        assert_no_secret(ok, refused)

    run(test)
    assert box.logins[0] == (b"slawatch", SMTP_PASSWORD.encode())
    assert box.logins[-1] == (b"slawatch", wrong.encode())
    assert len(box.messages) == 1


def test_email_password_without_username_logs_in_as_the_from_address(
    smtpd: tuple[Mailbox, int],
) -> None:
    box, port = smtpd

    async def test() -> None:
        config = mail_routing(port, "    password: {env: SMTP}\n")
        async with opened(sender_for(config.receivers["mail"])) as s:
            outcome = await s.send(notes(config, "mail"), NOW_MS)
        assert outcome.status == "failed"  # the test server only knows "slawatch"
        assert "login as 'slawatch@example.com' refused" in outcome.detail
        assert_no_secret(outcome)

    run(test)
    assert box.logins  # once per AUTH mechanism the server offers (PLAIN, LOGIN)
    assert set(box.logins) == {(b"slawatch@example.com", SMTP_PASSWORD.encode())}


def test_email_550_fails_451_retries_and_a_partial_refusal_is_delivered(
    smtpd: tuple[Mailbox, int],
) -> None:
    box, port = smtpd

    async def test() -> None:
        config = mail_routing(port)
        note = notes(config, "mail")
        async with opened(sender_for(config.receivers["mail"])) as s:
            box.rcpt_answers = ["550 5.1.1 No such user", "550 5.1.1 No such user"]
            unknown = await s.send(note, NOW_MS)
            box.rcpt_answers = ["451 4.7.1 Greylisted, try again later", "550 5.1.1 No such user"]
            greylisted = await s.send(note, NOW_MS)
            box.rcpt_answers = ["250 OK", "552 5.2.2 Mailbox full"]
            partial = await s.send(note, NOW_MS)
        where = f"email receiver 'mail' (smtp 127.0.0.1:{port})"
        assert unknown == Outcome(
            "failed",
            f"recipients refused by {where}: oncall@example.com: 550 5.1.1 No such user; "
            "lead@example.com: 550 5.1.1 No such user",
        )
        assert greylisted.status == "retry"
        assert "451 4.7.1 Greylisted" in greylisted.detail
        assert partial == Outcome(
            "delivered",
            f"accepted by {where} but refused for lead@example.com: 552 5.2.2 Mailbox full",
        )

    run(test)
    (only,) = box.messages
    assert only.rcpt_tos == ["oncall@example.com"]


def test_email_starttls_required_but_not_offered_fails(smtpd: tuple[Mailbox, int]) -> None:
    _, port = smtpd

    async def test() -> None:
        config = mail_routing(port, "    tls: starttls\n")
        async with opened(sender_for(config.receivers["mail"])) as s:
            outcome = await s.send(notes(config, "mail"), NOW_MS)
        assert outcome.status == "failed"
        assert "STARTTLS" in outcome.detail

    run(test)


def test_email_connection_refused_and_timeout_retry() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # and no greeting, ever

    async def test() -> None:
        closed = mail_routing(free_port())
        async with opened(sender_for(closed.receivers["mail"])) as s:
            refused = await s.send(notes(closed, "mail"), NOW_MS)
        assert refused.status == "retry"
        assert refused.detail.startswith("connection refused (ECONNREFUSED) connecting to email")

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            config = routing(
                "  mail: {type: email, to: [a@example.com], from: s@example.com, "
                f"smtp: '127.0.0.1:{port}', timeout: {SHORT}}}\n"
            )
            async with opened(sender_for(config.receivers["mail"])) as s:
                started = time.monotonic()
                outcome = await s.send(notes(config, "mail"), NOW_MS)
                took = time.monotonic() - started
        finally:
            await close_server(server, writers)
        assert outcome == Outcome(
            "retry", f"timeout after 0.2s sending to email receiver 'mail' (smtp 127.0.0.1:{port})"
        )
        assert took < 2.0

    run(test)
