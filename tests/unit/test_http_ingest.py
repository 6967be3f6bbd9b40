"""HTTP ingest without a broker: who may post (token, signature, 401 vs 403), the size
limit, one event or an array, per-event reasons and all-or-nothing, the settings, the
OpenAPI document. What reaches the broker, and 503, are tests/integration/test_http_ingest.py.

The handler's ``send`` is the seam to the producer; here it records what it was given, so
a test can say that nothing was sent (every refusal) or what was (topic, keys, bytes).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry

from slawatch.config.settings import Secret, Settings, load_settings
from slawatch.core.clock import ManualClock
from slawatch.errors import ConfigError, SlawatchError
from slawatch.schemas.validation import EventValidator
from slawatch.web.access import access_middleware
from slawatch.web.ingest import (
    HttpIngest,
    HttpIngestMetrics,
    Refusal,
    add_ingest_routes,
    split_events,
)
from slawatch.web.ingest_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Credentials,
    Verdict,
    credentials_from,
    sign,
)
from slawatch.web.openapi import openapi_document
from tests.samples import NOW_MS, event

TOKEN = "tok-3f9a"
SECRET = b"hmac-secret-77"
NOW_S = NOW_MS / 1000
CREDENTIALS = Credentials(token=TOKEN.encode(), hmac_secret=SECRET, max_age_s=300)


def headers(**values: str) -> CIMultiDict[str]:
    return CIMultiDict({k.replace("_", "-"): v for k, v in values.items()})


# --- credentials -------------------------------------------------------------------------


def test_a_valid_bearer_token_is_enough() -> None:
    check = CREDENTIALS.before_body(headers(Authorization=f"Bearer {TOKEN}"))
    assert check.verdict is Verdict.ACCEPTED


def test_no_credential_is_missing_and_a_wrong_one_refused() -> None:
    assert CREDENTIALS.before_body(headers()).verdict is Verdict.MISSING
    assert CREDENTIALS.before_body(headers(Authorization="Basic abc")).verdict is Verdict.MISSING
    wrong = CREDENTIALS.before_body(headers(Authorization="Bearer nope"))
    assert wrong.verdict is Verdict.REFUSED and "not valid" in wrong.why
    no_token_here = Credentials(token=None, hmac_secret=SECRET, max_age_s=300)
    assert no_token_here.before_body(headers(Authorization=f"Bearer {TOKEN}")).verdict is (
        Verdict.REFUSED
    )


def test_a_signature_is_checked_against_the_body_as_sent() -> None:
    body = b'{"a": 1}'
    signed = headers(X_Slawatch_Signature=sign(SECRET, body))
    assert CREDENTIALS.before_body(signed).verdict is Verdict.NEEDS_BODY
    assert CREDENTIALS.with_body(signed, body, NOW_S).verdict is Verdict.ACCEPTED
    # Upper-case hex is the same signature; one byte more in the body is not.
    upper = headers(X_Slawatch_Signature="sha256=" + sign(SECRET, body)[7:].upper())
    assert CREDENTIALS.with_body(upper, body, NOW_S).verdict is Verdict.ACCEPTED
    assert CREDENTIALS.with_body(signed, body + b" ", NOW_S).verdict is Verdict.REFUSED
    other_key = headers(X_Slawatch_Signature=sign(b"other", body))
    assert CREDENTIALS.with_body(other_key, body, NOW_S).verdict is Verdict.REFUSED
    bare_hex = headers(X_Slawatch_Signature=sign(SECRET, body)[7:])
    assert "sha256=<hex>" in CREDENTIALS.with_body(bare_hex, body, NOW_S).why


def test_what_is_signed_is_timestamp_dot_body_when_a_timestamp_is_sent() -> None:
    import hashlib
    import hmac

    body = b'[{"x": 2}]'
    ts = int(NOW_S) - 10
    expected = hmac.new(SECRET, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body, ts) == f"sha256={expected}"
    good = headers(X_Slawatch_Signature=sign(SECRET, body, ts), X_Slawatch_Timestamp=str(ts))
    assert CREDENTIALS.with_body(good, body, NOW_S).verdict is Verdict.ACCEPTED
    # The timestamp cannot be moved without the signature: a body-only signature with it fails.
    moved = headers(X_Slawatch_Signature=sign(SECRET, body), X_Slawatch_Timestamp=str(ts))
    assert CREDENTIALS.with_body(moved, body, NOW_S).verdict is Verdict.REFUSED


def test_the_readme_s_openssl_recipe_signs_alike() -> None:
    """README, Webhooks (HTTP): printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac."""
    body, ts = '[{"event_id":"e-1","note":"caf\u00e9 %s"}]', 1_764_755_000
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET.decode(), "-r"],
        input=f"{ts}.{body}".encode(),
        capture_output=True,
        check=True,
    )
    assert "sha256=" + done.stdout.decode().split(" ")[0] == sign(SECRET, body.encode(), ts)


def test_a_stale_or_future_or_unreadable_timestamp_is_refused() -> None:
    body = b"{}"
    for ts in (int(NOW_S) - 301, int(NOW_S) + 301):
        signed = headers(X_Slawatch_Signature=sign(SECRET, body, ts), X_Slawatch_Timestamp=str(ts))
        check = CREDENTIALS.with_body(signed, body, NOW_S)
        assert check.verdict is Verdict.REFUSED and "301s" in check.why
    edge = int(NOW_S) - 300
    signed = headers(X_Slawatch_Signature=sign(SECRET, body, edge), X_Slawatch_Timestamp=str(edge))
    assert CREDENTIALS.with_body(signed, body, NOW_S).verdict is Verdict.ACCEPTED
    for unreadable in ("yesterday", "-5", "1e9", "9" * 400, "١٢٣"):
        bad = headers(X_Slawatch_Signature=sign(SECRET, body), X_Slawatch_Timestamp=unreadable)
        assert "unix seconds" in CREDENTIALS.with_body(bad, body, NOW_S).why


def test_a_signature_to_a_server_without_a_secret_is_refused() -> None:
    token_only = Credentials(token=TOKEN.encode(), hmac_secret=None, max_age_s=300)
    signed = headers(X_Slawatch_Signature=sign(SECRET, b"{}"))
    assert token_only.before_body(signed).verdict is Verdict.NEEDS_BODY
    assert token_only.with_body(signed, b"{}", NOW_S).verdict is Verdict.REFUSED


# --- settings ----------------------------------------------------------------------------


def test_ingest_on_without_a_credential_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="needs a credential"):
        load_settings(None, environ={"SLAWATCH_HTTP_INGEST": "true"})
    on = load_settings(
        None, environ={"SLAWATCH_HTTP_INGEST": "true", "SLAWATCH_HTTP_INGEST_TOKEN": "t"}
    )
    assert on.http_ingest and repr(on.http_ingest_token) == "Secret('**********')"


def test_the_secrets_come_from_their_files(tmp_path: Path) -> None:
    token, secret = tmp_path / "token", tmp_path / "secret"
    token.write_text("from-file\nignored\n")
    secret.write_text("s3cret\n")
    settings = load_settings(
        None,
        environ={
            "SLAWATCH_HTTP_INGEST": "true",
            "SLAWATCH_HTTP_INGEST_TOKEN_FILE": str(token),
            "SLAWATCH_HTTP_INGEST_HMAC_SECRET_FILE": str(secret),
        },
    )
    credentials = credentials_from(settings)
    assert (credentials.token, credentials.hmac_secret) == (b"from-file", b"s3cret")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(None, environ={"SLAWATCH_HTTP_INGEST_TOKEN_FILE": str(tmp_path / "no")})
    with pytest.raises(ConfigError, match="not both"):
        load_settings(
            None,
            environ={
                "SLAWATCH_HTTP_INGEST_TOKEN": "a",
                "SLAWATCH_HTTP_INGEST_TOKEN_FILE": str(token),
            },
        )
    token.unlink()  # gone since the settings were read: one line naming the setting
    with pytest.raises(SlawatchError, match="SLAWATCH_HTTP_INGEST_TOKEN_FILE: cannot read"):
        credentials_from(settings)
    with pytest.raises(SlawatchError, match="needs a credential"):
        credentials_from(Settings())


# --- the body ----------------------------------------------------------------------------


def test_one_object_is_one_event_with_its_bytes_as_sent() -> None:
    body = b' {"type":  "x", "n": 1e400}'
    assert split_events(body) == [body]


def test_an_array_gives_each_element_s_bytes_as_sent() -> None:
    assert split_events(b'[{"a": 1}, {"b":  [2, 3]}, 7]') == [b'{"a": 1}', b'{"b":  [2, 3]}', b"7"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"[]", "missing_field"), (b"[{]", "not_json"), (b"42", "not_object"), (b"", "not_object")],
)
def test_a_body_that_holds_no_events_is_refused_whole(body: bytes, reason: str) -> None:
    refusal = split_events(body)
    assert isinstance(refusal, Refusal) and refusal.index is None and refusal.reason == reason


# --- the handler -------------------------------------------------------------------------


class Recorded:
    """What the handler sent: (topic, [(key, value)]) per request that reached the producer."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[bytes, bytes]]]] = []

    async def __call__(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        self.sent.append((topic, list(records)))


def _serve(
    check: Callable[[TestClient, Recorded, CollectorRegistry], Awaitable[None]],
    *,
    max_body_bytes: int = 1_048_576,
    web_token: str | None = None,
) -> None:
    settings = Settings(
        http_ingest=True,
        http_ingest_token=Secret(TOKEN),
        http_ingest_hmac_secret=Secret(SECRET.decode()),
        http_ingest_max_body_bytes=max_body_bytes,
    )
    clock = ManualClock(NOW_MS)
    validator = EventValidator(max_event_bytes=65536, max_future_skew_ms=300_000, clock=clock)
    registry = CollectorRegistry()
    recorded = Recorded()
    ingest = HttpIngest(
        settings,
        credentials_from(settings),
        validator,
        recorded,
        HttpIngestMetrics(registry),
        clock,
    )

    async def main() -> None:
        app = web.Application(middlewares=[access_middleware(web_token)])
        add_ingest_routes(app, ingest)
        async with TestClient(TestServer(app)) as client:
            await check(client, recorded, registry)

    asyncio.run(main())


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _requests(registry: CollectorRegistry, family: str, status: str) -> float:
    value = registry.get_sample_value(
        "slawatch_http_ingest_requests_total", {"family": family, "status": status}
    )
    return value or 0.0


def test_valid_events_go_to_their_topic_keyed_by_conversation_id_as_sent() -> None:
    one = orjson.dumps(event("ticket.created", 1))
    many = [event("message.received", n, ticket_id=f"T-{n}") for n in (2, 3)]

    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        answer = await client.post("/ingest/tickets", data=one, headers=AUTH)
        assert answer.status == 202
        assert await answer.json() == {"accepted": 1, "event_ids": ["evt-ticket.created-1"]}
        answer = await client.post("/ingest/tickets", data=orjson.dumps(many), headers=AUTH)
        assert (await answer.json())["accepted"] == 2
        assert recorded.sent == [
            ("tickets", [(b"T-1", one)]),
            ("tickets", [(b"T-2", orjson.dumps(many[0])), (b"T-3", orjson.dumps(many[1]))]),
        ]
        assert _requests(registry, "tickets", "202") == 2
        accepted = registry.get_sample_value(
            "slawatch_http_ingest_events_total", {"family": "tickets", "outcome": "accepted"}
        )
        assert accepted == 3

    _serve(check)


def test_a_signed_request_passes_and_a_tampered_one_is_403() -> None:
    body = orjson.dumps(event("call.queued", 1))

    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        ts = str(int(NOW_S))
        signed = {SIGNATURE_HEADER: sign(SECRET, body, int(ts)), TIMESTAMP_HEADER: ts}
        assert (await client.post("/ingest/calls", data=body, headers=signed)).status == 202
        tampered = await client.post("/ingest/calls", data=body + b"\n", headers=signed)
        assert tampered.status == 403
        assert "does not match" in (await tampered.json())["error"]
        assert len(recorded.sent) == 1

    _serve(check)


def test_401_without_a_credential_403_with_a_wrong_one_and_nothing_sent() -> None:
    body = orjson.dumps(event("chat.started", 1))

    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        missing = await client.post("/ingest/chats", data=body)
        assert missing.status == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await client.post("/ingest/chats", data=body, headers={"Authorization": "Bearer x"})
        assert wrong.status == 403
        assert recorded.sent == []
        assert _requests(registry, "chats", "401") == 1
        assert _requests(registry, "chats", "403") == 1

    _serve(check)


def test_the_web_token_does_not_apply_to_ingest() -> None:
    """A worker with a web token: the ingest path asks for its own credential only."""
    body = orjson.dumps(event("chat.started", 1))

    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        assert (await client.post("/ingest/chats", data=body, headers=AUTH)).status == 202
        web_only = {"Authorization": "Bearer web-token"}
        assert (await client.post("/ingest/chats", data=body, headers=web_only)).status == 403

    _serve(check, web_token="web-token")


def test_a_body_over_the_limit_is_413_by_its_length_or_as_it_streams() -> None:
    big = orjson.dumps([event("ticket.created", n) for n in range(40)])
    assert len(big) > 2000

    async def chunks() -> Any:
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        by_length = await client.post("/ingest/tickets", data=big, headers=AUTH)
        assert by_length.status == 413
        assert "2000 bytes" in (await by_length.json())["error"]
        streamed = await client.post("/ingest/tickets", data=chunks(), headers=AUTH)
        assert streamed.status == 413
        fits = orjson.dumps(event("ticket.created", 1))
        assert (await client.post("/ingest/tickets", data=fits, headers=AUTH)).status == 202
        assert len(recorded.sent) == 1

    _serve(check, max_body_bytes=2000)


def test_one_refused_event_refuses_the_request_with_every_reason() -> None:
    events = [
        event("message.sent", 1),  # fine
        {k: v for k, v in event("message.sent", 2).items() if k != "agent"},
        event("call.answered", 3),  # a call on the tickets path
        event("ticket.created", 4, priority="asap"),
        "not an object",
    ]

    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        answer = await client.post("/ingest/tickets", data=orjson.dumps(events), headers=AUTH)
        assert answer.status == 400
        body = await answer.json()
        assert body["accepted"] == 0 and body["error"].startswith("4 of 5 event(s) refused")
        got = [(r["index"], r["reason"], r["field"], r["event_id"]) for r in body["refused"]]
        assert got == [
            (1, "missing_field", "agent", "evt-message.sent-2"),
            (2, "wrong_topic", None, "evt-call.answered-3"),
            (3, "invalid_value", "priority", "evt-ticket.created-4"),
            (4, "not_object", None, None),
        ]
        assert recorded.sent == []  # all or nothing: not even event 0
        refused = registry.get_sample_value(
            "slawatch_http_ingest_events_total", {"family": "tickets", "outcome": "refused"}
        )
        assert refused == 4

    _serve(check)


def test_a_body_that_is_not_events_is_400_for_the_whole() -> None:
    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        for data in (b"[]", b"not json", b"[1,"):
            answer = await client.post("/ingest/calls", data=data, headers=AUTH)
            assert answer.status == 400
            (refusal,) = (await answer.json())["refused"]
            assert refusal["index"] is None
        single_broken = await client.post("/ingest/calls", data=b'{"type": ', headers=AUTH)
        assert (await single_broken.json())["refused"][0]["reason"] == "not_json"
        assert recorded.sent == []

    _serve(check)


def test_only_the_three_families_are_routes() -> None:
    async def check(client: TestClient, recorded: Recorded, registry: CollectorRegistry) -> None:
        assert (await client.post("/ingest/sla-events", data=b"{}", headers=AUTH)).status == 404
        assert (await client.get("/ingest/tickets", headers=AUTH)).status == 405

    _serve(check)


# --- the OpenAPI document ----------------------------------------------------------------


def test_the_document_has_the_ingest_paths_only_when_ingest_is_served() -> None:
    worker = openapi_document(default_time_zone="UTC")
    assert not any(path.startswith("/ingest/") for path in worker["paths"])
    with_ingest = openapi_document(default_time_zone="UTC", ingest=True)
    assert {"/ingest/tickets", "/ingest/chats", "/ingest/calls"} <= set(with_ingest["paths"])
    assert "/api/reports/log" in with_ingest["paths"]
    alone = openapi_document(default_time_zone="UTC", reports=False, ingest=True)
    assert set(alone["paths"]) == {
        "/openapi.json",
        "/ingest/tickets",
        "/ingest/chats",
        "/ingest/calls",
    }
    post = alone["paths"]["/ingest/calls"]["post"]
    assert set(post["responses"]) == {"202", "400", "401", "403", "413", "503"}
    types = alone["components"]["schemas"]["CallEvent"]["properties"]["type"]["enum"]
    assert types == sorted(t for t in types if t.startswith("call.")) and len(types) == 5
