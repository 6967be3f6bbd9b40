"""PagerDuty Events API v2: the JSON body of ``POST /v2/enqueue``.

One PagerDuty alert per cycle and receiver: every trigger and repeat of the cycle to
that receiver carries the same ``dedup_key``, so the one resolve the receiver gets
closes it. In a storm (more due than the receiver's rate), one *digest* trigger stands
for many cycles (:func:`digest_event`), and is resolved when the last of them ends. A
one-off notice (``missed``, ``level_changed``) is a trigger of its own ``dedup_key``
(severity ``error`` and ``info``), never resolved by slawatch. A resolve carries only
``routing_key``, ``event_action`` and ``dedup_key``, as the API asks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from slawatch.alerting.channels.common import (
    clip,
    facts,
    link,
    secret_field,
    short_hash,
    subject_of,
)
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.core.timestamps import format_timestamp_ms

#: PagerDuty's limits.
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
SEVERITY = {
    "at_risk": "warning",
    "breached": "critical",
    "missed": "error",
    "level_changed": "info",
}
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
#: PagerDuty's severities, most severe first.
_SEVERITY_ORDER = ("critical", "error", "warning", "info")


def dedup_key(note: Notification) -> str:
    """Stable per cycle and receiver (per notification for a notice), at most 255
    characters: a longer one is ``slawatch:sha256:<hex>`` of it."""
    base = note.id if note.kind == "notice" else f"{note.cycle_id}|{note.receiver}"
    key = f"slawatch:{base}"
    if len(key) > MAX_DEDUP_KEY:
        key = f"slawatch:sha256:{short_hash(base)}"
    return key


def event(
    note: Notification,
    receiver: Receiver,
    now_ms: int,
    *,
    link_template: str | None = None,
    source: str = "slawatch",
) -> dict[str, Any]:
    """The Events API v2 body for ``note`` to ``receiver`` (a pagerduty receiver)."""
    if receiver.type != "pagerduty":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")
    routing_key = secret_field(receiver, "routing_key")
    if routing_key is None:
        raise ValueError(f"receiver {receiver.name!r} has no routing_key")
    body: dict[str, Any] = {
        "routing_key": routing_key.reveal(),  # the one place the API requires it
        "event_action": "resolve" if note.kind == "resolve" else "trigger",
        "dedup_key": dedup_key(note),
    }
    if note.kind == "resolve":
        return body
    r = note.record
    details: dict[str, Any] = {label: value for label, value in facts(note, now_ms)}
    details.update(
        notification_id=note.id, notification_kind=note.kind, step=note.step, event=asdict(r)
    )
    body["payload"] = {
        "summary": clip(subject_of(note), MAX_SUMMARY),
        "source": clip(source, 255),
        "severity": SEVERITY.get(r.kind, "info"),
        "timestamp": r.at,
        "component": r.metric,
        "group": r.department or r.queue or r.conversation_kind,
        "class": r.kind,
        "custom_details": details,
    }
    body["client"] = "slawatch"
    url = link(link_template, r)
    if url:
        body["links"] = [{"href": url, "text": f"{r.conversation_kind} {r.conversation_id}"}]
    return body


#: Most notifications listed in one digest event's details.
MAX_DIGEST_LISTED = 100


def digest_key(receiver: str, note_ids: Sequence[str]) -> str:
    """The ``dedup_key`` of a digest: stable for the same notifications to a receiver."""
    return f"slawatch:digest:{short_hash(receiver + '|' + '|'.join(sorted(note_ids)))[:32]}"


def digest_event(
    notes: Sequence[Notification],
    receiver: Receiver,
    now_ms: int,
    *,
    link_template: str | None = None,
    source: str = "slawatch",
) -> dict[str, Any]:
    """One trigger for many notifications (a storm, past the receiver's rate): one
    incident whose details list each (the first :data:`MAX_DIGEST_LISTED`). Its
    ``dedup_key`` is :func:`digest_key`; the notifier resolves it when the last of its
    cycles ends."""
    if receiver.type != "pagerduty":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")
    if not notes:
        raise ValueError("a digest of no notifications")
    routing_key = secret_field(receiver, "routing_key")
    if routing_key is None:
        raise ValueError(f"receiver {receiver.name!r} has no routing_key")
    counts = Counter(subject_of(n).split(":", 1)[0].lower() for n in notes)
    summary = f"{len(notes)} SLA alerts: " + ", ".join(f"{k} {w}" for w, k in counts.most_common())
    severities = [SEVERITY.get(n.record.kind, "info") for n in notes]
    severity = min(severities, key=_SEVERITY_ORDER.index)
    listed = [
        {
            "summary": subject_of(n),
            "due": n.record.due_at,
            "assignee": n.record.assignee,
            "department": n.record.department,
            "queue": n.record.queue,
            "link": link(link_template, n.record),
            "notification_id": n.id,
        }
        for n in notes[:MAX_DIGEST_LISTED]
    ]
    return {
        "routing_key": routing_key.reveal(),
        "event_action": "trigger",
        "dedup_key": digest_key(receiver.name, [n.id for n in notes]),
        "payload": {
            "summary": clip(summary, MAX_SUMMARY),
            "source": clip(source, 255),
            "severity": severity,
            "timestamp": format_timestamp_ms(now_ms),
            "component": "sla",
            "class": "digest",
            "custom_details": {
                "count": len(notes),
                "listed": len(listed),
                "alerts": listed,
            },
        },
        "client": "slawatch",
    }


def resolve_event(receiver: Receiver, key: str) -> dict[str, Any]:
    """A resolve of the incident ``key`` (a digest's, when its last cycle ended)."""
    routing_key = secret_field(receiver, "routing_key")
    if routing_key is None:
        raise ValueError(f"receiver {receiver.name!r} has no routing_key")
    return {"routing_key": routing_key.reveal(), "event_action": "resolve", "dedup_key": key}
