"""Generic webhooks: a signed JSON body with the SLA event and the routing context.

Headers: ``X-Slawatch-Timestamp`` (Unix seconds), ``X-Slawatch-Signature`` (``sha256=``
and the hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with the receiver's secret;
left out when the receiver has no secret) and ``Idempotency-Key`` (the notification id,
or ``sha256:<hex>`` of it when it is not a short printable ASCII header value). The
secret signs; it is never in the body or a header. A receiver checks a request with
:func:`verify_signature` (self-contained, to copy).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from slawatch.alerting.channels.common import link, secret_field, short_hash
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.core.timestamps import format_timestamp_ms

VERSION = 1
TIMESTAMP = "X-Slawatch-Timestamp"
SIGNATURE = "X-Slawatch-Signature"
IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_HEADER = 200


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What to POST: the exact body bytes (the signature covers them) and the headers."""

    body: bytes
    headers: dict[str, str] = field(hash=False)


def body_of(note: Notification, now_ms: int, *, link_template: str | None = None) -> dict[str, Any]:
    """The JSON document sent (before encoding)."""
    return {
        "version": VERSION,
        "sent_at": format_timestamp_ms(now_ms),
        "notification": {
            "id": note.id,
            "kind": note.kind,
            "receiver": note.receiver,
            "step": note.step,
            "cycle_id": note.cycle_id,
        },
        "link": link(link_template, note.record),
        "event": note.record,  # a dataclass: orjson writes it as its fields
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body`` keyed with ``secret``."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def idempotency_key(note_id: str) -> str:
    if len(note_id) <= MAX_HEADER and note_id.isascii() and note_id.isprintable():
        return note_id
    return f"sha256:{short_hash(note_id)}"


def request(
    note: Notification, receiver: Receiver, now_ms: int, *, link_template: str | None = None
) -> WebhookRequest:
    """The signed request for ``note`` to ``receiver`` (a webhook receiver)."""
    if receiver.type != "webhook":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")
    doc = body_of(note, now_ms, link_template=link_template)
    body = orjson.dumps(doc)  # compact UTF-8 JSON
    timestamp = str(now_ms // 1000)
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP: timestamp,
        IDEMPOTENCY_KEY: idempotency_key(note.id),
    }
    secret = secret_field(receiver, "secret")
    if secret is not None:
        headers[SIGNATURE] = sign(secret.reveal(), timestamp, body)
    return WebhookRequest(body, headers)


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes | str,
    signature: str,
    now: float | None = None,
    tolerance_s: float = 300,
) -> bool:
    """True when ``signature`` (the ``X-Slawatch-Signature`` header) is the HMAC of
    ``timestamp`` (the ``X-Slawatch-Timestamp`` header) and the raw ``body`` with
    ``secret``, and the timestamp is within ``tolerance_s`` of ``now`` (Unix seconds; the
    clock by default), so a captured request cannot be replayed later.

    Standard library only, to copy into a receiver. Compare in constant time."""
    if now is None:
        now = time.time()
    # Headers arrive as text: anything but ASCII digits (int() takes other digits too)
    # and an ASCII signature (compare_digest raises on other text) is refused.
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    raw = body.encode("utf-8") if isinstance(body, str) else body
    expected = hmac.new(key, timestamp.encode("ascii") + b"." + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, signature)
