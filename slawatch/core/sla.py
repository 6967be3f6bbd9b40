"""The vocabulary of SLA commitments: metrics, what can happen to a cycle, what stopped it,
why, and the one word for where a cycle stands (the stream, the log and the docs use these
words and no others)."""

from __future__ import annotations

from enum import StrEnum


class Metric(StrEnum):
    """A kind of commitment. A conversation may run several, each in cycles."""

    FIRST_REPLY = "first_reply"
    """A new ticket waits for the first public agent reply."""
    NEXT_REPLY = "next_reply"
    """A customer's later message waits for the next public agent reply."""
    CHAT_REPLY = "chat_reply"
    """A customer's chat message waits for an agent's chat message."""
    CALL_ANSWER = "call_answer"
    """A queued call waits to be answered."""
    RESOLUTION = "resolution"
    """A ticket waits to be solved (paused while waiting on the customer or on hold)."""


class SlaEventKind(StrEnum):
    """What slawatch says about a cycle. Each kind at most once per cycle."""

    AT_RISK = "at_risk"
    """The at-risk threshold passed while the cycle was still open."""
    BREACHED = "breached"
    """Due passed while the cycle was still open: the alert."""
    MET = "met"
    """Final: it stopped at or before due."""
    MISSED = "missed"
    """Final: it stopped after due (carries the elapsed time)."""
    CANCELLED = "cancelled"
    """Final: it can no longer be met or missed (ticket closed, caller hung up early, …)."""
    RETRACTED = "retracted"
    """A late event proved an emitted breach wrong: the stop occurred before due."""
    LEVEL_CHANGED = "level_changed"
    """The conversation's SLA level changed: the open cycle now runs on the new level's
    target and calendar (a new due). Can happen more than once per cycle."""


FINAL_KINDS = frozenset({SlaEventKind.MET, SlaEventKind.MISSED, SlaEventKind.CANCELLED})


class CycleStatus(StrEnum):
    """Where a cycle stands, in the SLA log and the reports. The finals are named as the
    stream's final kinds; the others say what the stream has declared of an open cycle."""

    OPEN = "open"
    """Still running (or paused), not yet at risk."""
    AT_RISK = "at_risk"
    """Still open, past its at-risk threshold."""
    BREACHED = "breached"
    """Still open, past due: the alert went out and nothing has stopped it yet."""
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"


#: The final kinds, as statuses.
FINAL_STATUS = {
    SlaEventKind.MET: CycleStatus.MET,
    SlaEventKind.MISSED: CycleStatus.MISSED,
    SlaEventKind.CANCELLED: CycleStatus.CANCELLED,
}


class Stop(StrEnum):
    """What stopped a cycle: on every final event (``met``, ``missed``, ``cancelled``) and
    log record, so an answered call is told from an abandoned one whatever the outcome."""

    REPLIED = "replied"
    """An agent's public reply (first and next reply), an agent's chat message (chat)."""
    ANSWERED = "answered"
    """An agent answered the call."""
    ABANDONED = "abandoned"
    """The caller hung up while waiting (``call.abandoned``)."""
    CALL_ENDED = "call_ended"
    """The call ended before an answer (``call.ended`` while it waited)."""
    CHAT_ENDED = "chat_ended"
    """The chat ended while the customer waited."""
    SOLVED = "solved"
    """The ticket was solved (resolution stops; open reply cycles are cancelled)."""
    CLOSED = "closed"
    DELETED = "deleted"
    TRANSFERRED = "transferred"
    """The waiting call moved to another queue."""
    LEVEL_CHANGED = "level_changed"
    """The new SLA level does not track the metric."""


class CancelReason(StrEnum):
    """Why a cycle was cancelled."""

    CLOSED = "closed"
    DELETED = "deleted"
    SOLVED = "solved"
    """A reply cycle still open when the ticket was solved."""
    SHORT_ABANDON = "short_abandon"
    """The caller hung up within the short-abandon threshold (a misdial, not a wait)."""
    ABANDONED_BEFORE_DUE = "abandoned_before_due"
    """The caller hung up before the target: neither met nor missed."""
    CHAT_ENDED = "chat_ended"
    """The chat ended, before due, while the customer waited."""
    TRANSFERRED = "transferred"
    """A queued call moved to another queue, where a new cycle starts."""
    LEVEL_CHANGED = "level_changed"
    """The conversation's new SLA level does not track this metric."""
