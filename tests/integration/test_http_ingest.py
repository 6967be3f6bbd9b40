"""HTTP ingest on real parts: a running `slawatch worker` with ``http_ingest`` on, and
`slawatch ingest-http` alone, on the embedded broker.

Against the worker: valid events (token and signed) reach the input topic, their bytes as
sent, keyed by conversation id, and become SLA events; invalid ones are 400 with the
reasons and never reach the topic; oversized is 413; no or a wrong credential is 401/403;
a bounded load test on loopback puts every accepted event on the topic exactly once
(it prints events/s and p99; it asserts correctness, not speed). A worker and
`slawatch ingest-http` on a broker of their own that stops, and `slawatch ingest-http`
with a broker that was never there: every post is 503 with Retry-After and nothing is
counted as accepted. schemathesis checks the ingest paths against /openapi.json.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from slawatch.config.settings import Settings
from slawatch.dev.bench_http import drive, make_events
from slawatch.dev.embedded import EmbeddedBroker, free_port
from slawatch.web.ingest_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.integration.conftest import run, worker_environment
from tests.integration.kafka_helpers import read_until
from tests.integration.workers import WorkerProcess, sla_records

pytestmark = pytest.mark.integration

TOKEN = "ingest-token-5b1"
SECRET = "ingest-hmac-secret-c40"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """(status, headers, JSON body or None)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def now_ms() -> int:
    return int(time.time() * 1000)


def ticket(n: int, type_: str, at_ms: int, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"http-{type_}-{n}",
        "type": type_,
        "occurred_at": at_ms,
        "ticket_id": f"HT-{n}",
        **fields,
    }


@pytest.fixture(scope="module")
def worker_settings(broker, redis_server, tmp_path_factory) -> Settings:
    """One worker for the module's tests (each test its own ids)."""
    from slawatch.config.settings import load_settings

    prefix = "http-ingest-worker"
    return load_settings(
        None,
        environ={},
        app_id=prefix,
        broker_url=broker.url,
        redis_url=redis_server.url,
        topic_tickets=f"{prefix}.tickets",
        topic_chats=f"{prefix}.chats",
        topic_calls=f"{prefix}.calls",
        topic_normalised=f"{prefix}.normalised",
        topic_sla_events=f"{prefix}.sla-events",
        topic_dead_letter=f"{prefix}.dead-letter",
        topic_policy=f"{prefix}.policy",
        web_port=free_port(),
        data_dir=tmp_path_factory.mktemp("http-ingest") / "data",
        ingest_poll_timeout_ms=20,
        worker_id=f"{prefix}-w1",
        log_sink_in_worker=False,
        http_ingest=True,
        http_ingest_token=TOKEN,
        http_ingest_hmac_secret=SECRET,
        http_ingest_max_body_bytes=200_000,
    )


@pytest.fixture(scope="module")
def worker(worker_settings, tmp_path_factory):
    process = WorkerProcess(worker_settings, tmp_path_factory.mktemp("logs") / "worker.log")
    try:
        process.wait_ready(timeout_s=90)
        yield process
    finally:
        process.stop()


def read_topic(settings: Settings, topic: str, enough, timeout_s: float = 30.0) -> list[Any]:
    return run(read_until(settings, topic, enough, timeout_s))


def test_valid_events_reach_the_topic_as_sent_and_become_sla_events(worker) -> None:
    s, port = worker.settings, worker.settings.web_port
    t0 = now_ms() - 30_000
    created = orjson.dumps(ticket(1, "ticket.created", t0, channel="email"))
    status, _, body = post(port, "/ingest/tickets", created, AUTH)
    assert (status, body) == (202, {"accepted": 1, "event_ids": ["http-ticket.created-1"]})
    # The reply, signed with a timestamp instead of the token.
    reply = orjson.dumps(
        [ticket(1, "message.sent", t0 + 5_000, message_id="m1", agent="a1", visibility="public")]
    )
    ts = int(time.time())
    signed = {SIGNATURE_HEADER: sign(SECRET.encode(), reply, ts), TIMESTAMP_HEADER: str(ts)}
    status, _, body = post(port, "/ingest/tickets", reply, signed)
    assert (status, body["accepted"]) == (202, 1)

    records = read_topic(s, s.topic_tickets, lambda rs: len(rs) >= 2)
    assert [(r.key, r.value) for r in records] == [(b"HT-1", created), (b"HT-1", reply[1:-1])]
    sla = sla_records(
        read_topic(
            s,
            s.topic_sla_events,
            lambda rs: any(r["kind"] == "met" for r in sla_records(rs)),
            timeout_s=60,
        )
    )
    met = [r for r in sla if r["conversation_id"] == "HT-1" and r["kind"] == "met"]
    assert [(r["metric"], r["elapsed_s"]) for r in met] == [("first_reply", 5.0)]
    assert worker.metric("slawatch_http_ingest_events_total", outcome="accepted") >= 2


def test_refused_oversized_and_unauthenticated_requests_put_nothing_on_the_topic(worker) -> None:
    s, port = worker.settings, worker.settings.web_port
    at = now_ms()
    good = ticket(20, "ticket.created", at, channel="email")
    bad = ticket(21, "ticket.created", at, channel="fax")
    status, _, body = post(port, "/ingest/tickets", orjson.dumps([good, bad]), AUTH)
    assert status == 400 and body["accepted"] == 0
    assert [(r["index"], r["reason"], r["field"]) for r in body["refused"]] == [
        (1, "invalid_value", "channel")
    ]
    huge = orjson.dumps([ticket(22, "ticket.created", at, channel="email", tags=["x" * 90])] * 1000)
    assert len(huge) > s.http_ingest_max_body_bytes
    assert post(port, "/ingest/tickets", huge, AUTH)[0] == 413
    assert post(port, "/ingest/tickets", orjson.dumps(good))[0] == 401
    assert post(port, "/ingest/tickets", orjson.dumps(good), {"Authorization": "Bearer no"})[0] == (
        403
    )
    stale = int(time.time()) - 3600
    body_bytes = orjson.dumps(good)
    old = {SIGNATURE_HEADER: sign(SECRET.encode(), body_bytes, stale), TIMESTAMP_HEADER: str(stale)}
    assert post(port, "/ingest/tickets", body_bytes, old)[0] == 403
    # A marker posted after them all is on the topic; nothing of theirs is.
    marker = ticket(23, "ticket.created", at, channel="web")
    assert post(port, "/ingest/tickets", orjson.dumps(marker), AUTH)[0] == 202
    records = read_topic(
        s, s.topic_tickets, lambda rs: any(b"http-ticket.created-23" in r.value for r in rs)
    )
    ids = {orjson.loads(r.value)["event_id"] for r in records}
    assert "http-ticket.created-23" in ids
    assert not ids & {"http-ticket.created-20", "http-ticket.created-21", "http-ticket.created-22"}
    assert worker.metric("slawatch_http_ingest_requests_total", status="413") == 1


def test_the_worker_s_document_covers_the_ingest_paths(worker) -> None:
    status, raw = worker.get("/openapi.json")
    assert status == 200
    paths = json.loads(raw)["paths"]
    assert {"/ingest/tickets", "/ingest/chats", "/ingest/calls", "/api/reports/log"} <= set(paths)


def test_a_bounded_load_on_loopback_puts_every_accepted_event_on_the_topic_once(worker) -> None:
    s = worker.settings
    base = f"http://127.0.0.1:{s.web_port}"
    events = make_events(3_000, "load", now_ms())
    single = asyncio.run(drive(base, events[:1_500], token=TOKEN, batch=1, concurrency=16))
    batched = asyncio.run(drive(base, events[1_500:], token=TOKEN, batch=50, concurrency=8))
    print(f"\nHTTP ingest into a running worker, loopback: {single.line()}")
    print(f"HTTP ingest into a running worker, loopback: {batched.line()}")
    assert single.statuses == {202: 1_500} and batched.statuses == {202: 30}
    accepted = set(single.accepted_ids) | set(batched.accepted_ids)
    assert len(accepted) == 3_000

    topics = [s.topic_tickets, s.topic_chats, s.topic_calls]
    seen: Counter[str] = Counter()
    for topic in topics:
        expected = sum(1 for family, _ in events if f"{s.app_id}.{family}" == topic)
        records = read_topic(
            s,
            topic,
            lambda rs, n=expected: sum(b'"load-' in r.value for r in rs) >= n,
            timeout_s=60,
        )
        for record in records:
            event = orjson.loads(record.value)
            if event["event_id"].startswith("load-"):
                seen[event["event_id"]] += 1
                id_field = {"tickets": "ticket_id", "chats": "chat_id", "calls": "call_id"}[
                    topic.rsplit(".", 1)[1]
                ]
                assert record.key == event[id_field].encode()
    assert set(seen) == accepted
    assert set(seen.values()) == {1}, [k for k, v in seen.items() if v > 1][:5]


# --- alone: slawatch ingest-http -------------------------------------------------------------


def ingest_http(settings: Settings, log_path: Path) -> WorkerProcess:
    """`slawatch ingest-http` as a child process with its own log."""
    return WorkerProcess(settings, log_path, command="ingest-http")


def _alone_settings(settings_factory, broker_url: str | None = None) -> Settings:
    overrides: dict[str, Any] = {
        "http_ingest": False,  # alone: the command serves it whatever this says
        "http_ingest_token": TOKEN,
        "http_ingest_produce_timeout_s": 3.0,
    }
    if broker_url is not None:
        overrides["broker_url"] = broker_url
    return settings_factory(**overrides)


@pytest.mark.parametrize("command", ["worker", "ingest-http"])
def test_with_its_broker_stopped_every_post_is_503_and_nothing_accepted(
    settings_factory, tmp_path, command
) -> None:
    """A worker with HTTP ingest on, and ``slawatch ingest-http``, on a broker of their
    own that stops under them."""
    own = EmbeddedBroker(tmp_path / "own-broker")
    own.start()
    try:
        settings = _alone_settings(settings_factory, own.url)
        if command == "worker":
            settings = settings.with_overrides(http_ingest=True)
        server = WorkerProcess(settings, tmp_path / f"{command}.log", command=command)
        try:
            port = settings.web_port
            server.wait_until(lambda: server.get("/readyz")[0] == 200, 60, "readiness")
            event = ticket(40, "ticket.created", now_ms(), channel="email")
            assert post(port, "/ingest/tickets", orjson.dumps(event), AUTH)[0] == 202
            records = read_topic(settings, settings.topic_tickets, lambda rs: len(rs) >= 1)
            assert [orjson.loads(r.value)["event_id"] for r in records] == [event["event_id"]]
            own.stop()
            started = time.monotonic()
            for n in (41, 42):
                event = ticket(n, "ticket.created", now_ms(), channel="email")
                status, headers, body = post(port, "/ingest/tickets", orjson.dumps([event]), AUTH)
                assert status == 503, body
                assert headers["Retry-After"] == "5" and body["accepted"] == 0
            assert time.monotonic() - started < 2 * (3.0 + 2)  # the produce timeout bounds it
            accepted = server.metric("slawatch_http_ingest_events_total", outcome="accepted")
            unavailable = server.metric("slawatch_http_ingest_events_total", outcome="unavailable")
            assert (accepted, unavailable) == (1, 2)
        finally:
            if command == "worker":  # a worker without its broker waits long to leave: kill
                server.kill()
            else:
                code = server.stop()
                assert code == 0, server.log_path.read_text(errors="replace")[-3000:]
    finally:
        own.stop()


def test_alone_without_a_broker_it_starts_and_answers_503(settings_factory, tmp_path) -> None:
    settings = _alone_settings(settings_factory, f"kafka://127.0.0.1:{free_port()}")
    server = ingest_http(settings, tmp_path / "ingest-http.log")
    try:
        server.wait_until(lambda: server.get("/readyz")[0] == 503, 60, "its pages")
        event = ticket(50, "ticket.created", now_ms(), channel="email")
        status, headers, body = post(
            settings.web_port, "/ingest/tickets", orjson.dumps(event), AUTH
        )
        assert (status, headers["Retry-After"], body["accepted"]) == (503, "5", 0)
        assert "broker" in body["error"] and "retry later" in body["error"]
    finally:
        server.stop()


def test_alone_without_a_credential_it_exits_with_one_line(settings_factory, tmp_path) -> None:
    settings = settings_factory()
    done = subprocess.run(
        [sys.executable, "-m", "slawatch", "ingest-http"],
        env=worker_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "slawatch: HTTP ingest needs a credential: set SLAWATCH_HTTP_INGEST_TOKEN or "
        "SLAWATCH_HTTP_INGEST_HMAC_SECRET (or their _FILE)"
    ]


# --- the OpenAPI document, by schemathesis ----------------------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture(scope="module")
def alone(broker, redis_server, tmp_path_factory):
    from slawatch.config.settings import load_settings

    prefix = "http-ingest-alone"
    settings = load_settings(
        None,
        environ={},
        app_id=prefix,
        broker_url=broker.url,
        redis_url=redis_server.url,
        topic_tickets=f"{prefix}.tickets",
        topic_chats=f"{prefix}.chats",
        topic_calls=f"{prefix}.calls",
        topic_normalised=f"{prefix}.normalised",
        topic_sla_events=f"{prefix}.sla-events",
        topic_dead_letter=f"{prefix}.dead-letter",
        topic_policy=f"{prefix}.policy",
        web_port=free_port(),
        data_dir=tmp_path_factory.mktemp("alone") / "data",
        http_ingest_token=TOKEN,
    )
    server = ingest_http(settings, tmp_path_factory.mktemp("alone-logs") / "ingest-http.log")
    try:
        server.wait_until(lambda: server.get("/readyz")[0] == 200, 60, "readiness")
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/ingest/tickets", "/ingest/chats", "/ingest/calls"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_ingest_keeps_its_openapi_document(alone, path, mode) -> None:
    """Bodies made from the document (and ones that break it) get what it promises: no
    5xx, a documented status, content type, headers and body; 401 without the token."""
    schema = schemathesis.openapi.from_url(
        f"http://127.0.0.1:{alone.settings.web_port}/openapi.json"
    )
    schema.validate()

    @given(case=schema[path]["POST"].as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def call(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    call()
