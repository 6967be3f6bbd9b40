"""What every channel says about a notification: the words, the facts, the link."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from slawatch.alerting.config import LINK_FIELDS
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver, Secret
from slawatch.core.timestamps import format_timestamp_ms, parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_KIND_WORDS = {
    "at_risk": "at risk",
    "breached": "breached",
    "met": "met",
    "missed": "missed",
    "cancelled": "cancelled",
    "retracted": "breach retracted",
    "level_changed": "level changed",
}


def what(note: Notification) -> str:
    """What happened, in words: ``breached``, ``at risk``, ``resolved (met)``, ..."""
    kind = note.record.kind
    if note.kind == "repeat" and note.raised:  # still what it was raised for
        kind = note.raised[-1].kind
    if note.kind == "resolve":
        return f"resolved ({_KIND_WORDS.get(kind, kind)})"
    words = _KIND_WORDS.get(kind, kind)
    return f"still {words}" if note.kind == "repeat" else words


def subject_of(note: Notification) -> str:
    """One line: ``Breached: ticket 48213, first reply (level high)``."""
    r = note.record
    return (
        f"{what(note).capitalize()}: {r.conversation_kind} {r.conversation_id}, "
        f"{r.metric.replace('_', ' ')} (level {r.level})"
    )


def duration(ms: int) -> str:
    """``1h 05m``, ``12m 03s``, ``45s`` (of a non-negative span)."""
    s = max(ms, 0) // 1000
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3_600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {s:02d}s"
    return f"{s}s"


def timing(record: SlaEventRecord, now_ms: int) -> str:
    """How late: ``12m 03s past due`` or ``due in 15m 00s`` (at ``now_ms``)."""
    due_ms = parse_timestamp_ms(record.due_at)
    if now_ms >= due_ms:
        return f"{duration(now_ms - due_ms)} past due"
    return f"due in {duration(due_ms - now_ms)}"


def facts(note: Notification, now_ms: int) -> list[tuple[str, str]]:
    """The readable facts, in order, as (label, value); empty values left out."""
    r = note.record
    rows = [
        ("What", what(note)),
        (r.conversation_kind.capitalize(), r.conversation_id),
        ("Metric", f"{r.metric.replace('_', ' ')} (cycle {r.cycle})"),
        ("Due", r.due_at),
        ("Now", format_timestamp_ms(now_ms)),
        ("How late", timing(r, now_ms)),
        ("Assignee", r.assignee or "nobody"),
        ("Level", r.level if r.previous_level is None else f"{r.level} (was {r.previous_level})"),
        ("Priority", r.priority),
        ("Department", r.department or ""),
        ("Queue", r.queue or ""),
        ("Tenant", r.tenant or ""),
    ]
    return [(label, value) for label, value in rows if value]


def link(template: str | None, record: SlaEventRecord) -> str | None:
    """The template with ``{field}`` replaced by the record's field, URL-quoted; None
    without a template. A placeholder that is not in :data:`LINK_FIELDS` is an error."""
    if template is None:
        return None

    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in LINK_FIELDS:
            raise ValueError(f"link template: unknown field {{{name}}}; fields: {LINK_FIELDS}")
        value = getattr(record, name)
        return quote("" if value is None else str(value), safe="")

    return _PLACEHOLDER.sub(field, template)


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def secret_field(receiver: Receiver, name: str) -> Secret | None:
    value = receiver.fields.get(name)
    return value if isinstance(value, Secret) else None


def text_field(receiver: Receiver, name: str) -> str | None:
    value = receiver.fields.get(name)
    return value if isinstance(value, str) else None


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
