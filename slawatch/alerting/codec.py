"""How the notifier's records are written in Redis: JSON, with a version.

:class:`~slawatch.alerting.escalation.AlertState` (one per cycle) and
:class:`~slawatch.alerting.escalation.Notification` (one per message waiting to go out)
round-trip through :func:`encode_state` / :func:`decode_state` and
:func:`encode_note` / :func:`decode_note`. A record of another version, or one that does
not decode, raises :class:`CodecError`; the notifier treats such a state as absent (it
was written by something else) and such a notification as a dead letter.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import orjson

from slawatch.alerting.escalation import AlertState, Notification, Timer
from slawatch.schemas.sla_events import SlaEventRecord

VERSION = 1
_RECORD_FIELDS = frozenset(f.name for f in fields(SlaEventRecord))


class CodecError(ValueError):
    """A stored record that cannot be read back."""


def record_from(values: Any) -> SlaEventRecord:
    """An :class:`SlaEventRecord` from its JSON object (unknown fields refused)."""
    if not isinstance(values, dict) or set(values) - _RECORD_FIELDS:
        raise CodecError("not an SLA event record")
    try:
        return SlaEventRecord(**values)
    except TypeError as exc:
        raise CodecError(f"not an SLA event record: {exc}") from None


def encode_state(state: AlertState) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "cycle": state.cycle_id,
            "record": state.record,  # orjson writes a dataclass as its fields
            "open": state.open,
            "notified": [list(pair) for pair in state.notified],
            "sent": sorted(state.sent),
            "armed": sorted(state.armed),
            "timers": [
                [t.step, list(t.receivers), t.due_ms, t.repeat_ms, t.triggered_ms]
                for t in state.timers
            ],
            "raised": list(state.raised),
        }
    )


def decode_state(data: bytes) -> AlertState:
    try:
        doc = orjson.loads(data)
        if doc.get("v") != VERSION:
            raise CodecError(f"alert state version {doc.get('v')!r}")
        return AlertState(
            cycle_id=doc["cycle"],
            record=record_from(doc["record"]),
            open=bool(doc["open"]),
            notified=tuple((r, s) for r, s in doc["notified"]),
            sent=frozenset(doc["sent"]),
            armed=frozenset(doc["armed"]),
            timers=tuple(
                Timer(step, tuple(receivers), due, repeat, triggered)
                for step, receivers, due, repeat, triggered in doc["timers"]
            ),
            raised=tuple(record_from(r) for r in doc.get("raised", ())),
        )
    except CodecError:
        raise
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"unreadable alert state: {type(exc).__name__}") from None


def encode_note(
    note: Notification, *, attempts: int = 0, queued_ms: int = 0, alone: bool = False
) -> bytes:
    """A notification waiting in the outbox, with its attempts so far, when it was first
    queued, and whether it is to be sent alone (its batch or digest failed)."""
    return orjson.dumps(
        {
            "v": VERSION,
            "id": note.id,
            "cycle": note.cycle_id,
            "receiver": note.receiver,
            "step": note.step,
            "kind": note.kind,
            "record": note.record,
            "after": list(note.after),
            "not_before": note.not_before_ms,
            "raised": list(note.raised),
            "attempts": attempts,
            "alone": alone,
            "queued_ms": queued_ms,
        }
    )


def decode_note(data: bytes) -> tuple[Notification, int, int, bool]:
    """The notification, its attempts so far, when it was first queued, and whether it
    is to be sent alone."""
    try:
        doc = orjson.loads(data)
        if doc.get("v") != VERSION:
            raise CodecError(f"notification version {doc.get('v')!r}")
        if doc["kind"] not in ("trigger", "repeat", "resolve", "notice"):
            raise CodecError(f"notification kind {doc['kind']!r}")
        note = Notification(
            doc["id"], doc["cycle"], doc["receiver"], doc["step"], doc["kind"],
            record_from(doc["record"]), tuple(str(x) for x in doc.get("after", ())),
            doc.get("not_before"),
            tuple(record_from(r) for r in doc.get("raised", ())),
        )  # fmt: skip
        return note, int(doc["attempts"]), int(doc["queued_ms"]), bool(doc.get("alone"))
    except CodecError:
        raise
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"unreadable notification: {type(exc).__name__}") from None
