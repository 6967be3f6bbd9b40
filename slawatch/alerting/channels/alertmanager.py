"""Alertmanager: the JSON list ``POST /api/v2/alerts`` takes.

Labels are what Alertmanager groups, routes and deduplicates on, so they hold bounded
values only: ``alertname`` (``SlaAtRisk``, ``SlaBreached``, ``SlaMissed``,
``SlaLevelChanged``), ``metric``, ``level``, ``priority``, ``department``, ``queue``,
``tenant``, ``severity``, ``source=slawatch``. The ticket, chat or call id is in the
annotations, unless ``identity_labels=True`` adds ``conversation_kind``,
``conversation_id`` and ``cycle`` as labels (then Alertmanager tells two conversations
apart; without them, two open breaches with equal labels are one alert to it).

An active alert has no ``endsAt`` (Alertmanager ends it after its ``resolve_timeout``
unless it is sent again) or, with ``hold_s``, one that far in the future. A repeat (the
refresh) sends again, and a resolve ends with ``endsAt`` now, the alerts the cycle raised
as they were raised (``Notification.raised``: the record of its first ``at_risk`` and
``breached`` triggers), so they match what Alertmanager holds even after the level,
priority, department or queue changed; only those whose start has passed (one whose start
is still ahead would be a new, active alert until then). A resolve without ``raised``
(queued by an older version) ends the cycle's ``SlaAtRisk`` and ``SlaBreached`` alerts
whose start has passed, with the labels of the record in hand.
"""

from __future__ import annotations

from typing import Any

from slawatch.alerting.channels.common import facts, link, subject_of
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.core.timestamps import format_timestamp_ms, parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord

ALERTNAMES = {
    "at_risk": "SlaAtRisk",
    "breached": "SlaBreached",
    "missed": "SlaMissed",
    "level_changed": "SlaLevelChanged",
}
SEVERITY = {"at_risk": "warning", "breached": "critical", "missed": "warning"}
#: The alerts a resolve ends, and the record field each started at.
RESOLVES = (("at_risk", "at_risk_at"), ("breached", "due_at"))
_LABEL_FIELDS = ("metric", "level", "priority", "department", "queue", "tenant")


def labels(record: SlaEventRecord, kind: str, *, identity_labels: bool = False) -> dict[str, str]:
    """The alert's labels (empty values left out: Alertmanager treats them as absent)."""
    out = {"alertname": ALERTNAMES[kind], "source": "slawatch"}
    for name in _LABEL_FIELDS:
        value = getattr(record, name)
        if value:
            out[name] = str(value)
    out["severity"] = SEVERITY.get(kind, "info")
    if identity_labels:
        out["conversation_kind"] = record.conversation_kind
        out["conversation_id"] = record.conversation_id
        out["cycle"] = str(record.cycle)
    return out


def alerts(
    note: Notification,
    receiver: Receiver,
    now_ms: int,
    *,
    link_template: str | None = None,
    identity_labels: bool = False,
    hold_s: int | None = None,
) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for ``note`` (to ``receiver``, an
    alertmanager receiver; its ``url`` is where the sender posts)."""
    if receiver.type != "alertmanager":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")
    r = note.record
    url = link(link_template, r)
    rows = facts(note, now_ms)
    annotations = {
        "summary": subject_of(note),
        "description": "\n".join(f"{label}: {value}" for label, value in rows),
        "conversation_id": r.conversation_id,
        "conversation_key": r.conversation_key,
        "event_id": r.event_id,
        "notification_id": note.id,
    }
    if url:
        annotations["link"] = url
    now = format_timestamp_ms(now_ms)
    hold = None if hold_s is None else format_timestamp_ms(now_ms + hold_s * 1000)
    # (kind, started, the record its labels come from): one per alert
    kinds: list[tuple[str, str, SlaEventRecord]]
    ends_at: str | None
    if note.kind == "resolve" and note.raised:  # the alerts raised, as they were raised
        kinds = [(x.kind, x.at, x) for x in note.raised if parse_timestamp_ms(x.at) <= now_ms]
        ends_at = now
    elif note.kind == "resolve":
        # Only the alerts that may have fired: one whose start is still ahead (a cycle met
        # before due has no breach) would be a new, active alert until then.
        kinds = [
            (kind, started, r)
            for kind, field in RESOLVES
            if (started := getattr(r, field)) and parse_timestamp_ms(started) <= now_ms
        ]
        ends_at = now
    elif note.kind == "repeat" and note.raised:  # kept alive: the alerts as raised
        kinds, ends_at = [(x.kind, x.at, x) for x in note.raised], hold
    else:
        kinds, ends_at = [(r.kind, r.at, r)], hold
    out = []
    for kind, started, labelled_by in kinds:
        alert: dict[str, Any] = {
            "labels": labels(labelled_by, kind, identity_labels=identity_labels),
            "annotations": dict(annotations),
            "startsAt": started,
        }
        if ends_at is not None:
            alert["endsAt"] = ends_at
        if url:
            alert["generatorURL"] = url
        out.append(alert)
    return out
