"""Turn Asterisk ``queue_log`` lines into slawatch's call event contracts.

One line gives at most one event, keyed by the call (``callid``, the caller channel's
uniqueid). The mapping, line by line (README, "Asterisk queue_log", has it as a table):

=====================  ====================  ============================================
verb (data fields)     event                 fields
=====================  ====================  ============================================
ENTERQUEUE             ``call.queued``       ``queue``; ``caller`` = callerid;
(url|callerid|pos)                           ``custom_fields.position`` = position
CONNECT                ``call.answered``     ``agent`` = the member column; ``queue``
(holdtime|uid|ring)
ABANDON, EXITEMPTY,    ``call.abandoned``    ``queue``; ``position`` = position at exit
EXITWITHTIMEOUT
(pos|origpos|wait)
EXITWITHKEY            ``call.abandoned``    ``queue``; ``position``
(key|pos|origpos|wait)
COMPLETECALLER         ``call.ended``        ``ended_by`` = ``caller``
COMPLETEAGENT          ``call.ended``        ``ended_by`` = ``agent``
TRANSFER,              ``call.transferred``  ``to_agent`` = the extension transferred to
BLINDTRANSFER
(ext|context|...)
ATTENDEDTRANSFER       ``call.ended``        ``ended_by`` = ``agent``
=====================  ====================  ============================================

The call-answer clock needs no hold or wait field: it runs from ``call.queued`` to
``call.answered`` or ``call.abandoned`` on the lines' own times, and Asterisk writes the
CONNECT line ``holdtime`` seconds after the ENTERQUEUE line (the tests compare both on
the real sample). ``occurred_at`` is the line's epoch.

An ATTENDEDTRANSFER names a bridge or an application, not an agent or a queue, so it
cannot be a ``call.transferred`` (which needs one); it ends the queue's part of the
call, as the COMPLETE* lines do. Every other verb is not a call event and is ignored
(:data:`IGNORED` says why for the ones Asterisk and PBXware write).

Event ids are made from the line's content (:func:`event_id`), so the same line read
twice (a restart after a crash, before the read position was saved) gives the same id
and the workers drop the second as a duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from slawatch.connectors.queue_log import QueueLogLine, UnreadableLine
from slawatch.schemas.reasons import RejectReason

#: Verb -> the event type it becomes.
EVENT_TYPES: Final[dict[str, str]] = {
    "ENTERQUEUE": "call.queued",
    "CONNECT": "call.answered",
    "ABANDON": "call.abandoned",
    "EXITEMPTY": "call.abandoned",
    "EXITWITHTIMEOUT": "call.abandoned",
    "EXITWITHKEY": "call.abandoned",
    "COMPLETECALLER": "call.ended",
    "COMPLETEAGENT": "call.ended",
    "TRANSFER": "call.transferred",
    "BLINDTRANSFER": "call.transferred",
    "ATTENDEDTRANSFER": "call.ended",
}

#: Data field (0-based) holding the caller's position when the call left the queue.
_EXIT_POSITION: Final = {"ABANDON": 0, "EXITEMPTY": 0, "EXITWITHTIMEOUT": 0, "EXITWITHKEY": 1}

_AGENT_STATE = "an agent's or member's state, not a call's"
#: Verbs that are not call events, and why they are ignored.
IGNORED: Final[dict[str, str]] = {
    "RINGNOANSWER": "an agent's phone rang unanswered; the call still waits and its "
    "call-answer clock runs on",
    "RINGCANCELED": "the ringing of one agent stopped; the call still waits",
    "AGENTDUMP": "the agent hung up during the announcement; the call still waits",
    "SYSCOMPAT": "an agent's channel could not be bridged; the call still waits",
    "DID": "the number dialled, written before ENTERQUEUE; no state of the call",
    "INFO": "free text from the dialplan",
    "QUEUESTART": "the queue application started; not about a call",
    "CONFIGRELOAD": "the queue configuration was reloaded; not about a call",
    "ADDMEMBER": _AGENT_STATE,
    "REMOVEMEMBER": _AGENT_STATE,
    "PAUSE": _AGENT_STATE,
    "UNPAUSE": _AGENT_STATE,
    "PAUSEALL": _AGENT_STATE,
    "UNPAUSEALL": _AGENT_STATE,
    "PENALTY": _AGENT_STATE,
    "AGENTLOGIN": _AGENT_STATE,
    "AGENTLOGOFF": _AGENT_STATE,
    "AGENTCALLBACKLOGIN": _AGENT_STATE,
    "AGENTCALLBACKLOGOFF": _AGENT_STATE,
    # PBXware's own verbs for agents' outbound calls
    "OUTDIAL": "an agent's outbound call (PBXware); not a queued call",
    "OUTANSWER": "an agent's outbound call (PBXware); not a queued call",
    "OUTCANCEL": "an agent's outbound call (PBXware); not a queued call",
    "OUTCHANUNAVAIL": "an agent's outbound call (PBXware); not a queued call",
    "OUTCONGESTION": "an agent's outbound call (PBXware); not a queued call",
    "OUTBUSY": "an agent's outbound call (PBXware); not a queued call",
    "OUTTRANSFER": "an agent's outbound call (PBXware); not a queued call",
}
#: Why any other verb is ignored.
UNKNOWN_VERB: Final = "not a queue_log verb this connector maps"

_NONE = ("", "NONE")


@dataclass(frozen=True, slots=True)
class Ignored:
    """A line that is no call event, and why."""

    event: str
    why: str


def event_id(line: QueueLogLine) -> str:
    """A stable id made from the line's content: the same line gives the same id, in
    either layout, however often it is read."""
    digest = hashlib.blake2b(line.text().encode(), digest_size=8).hexdigest()
    readable = f"aql:{line.callid}:{line.epoch}:{line.event}:{digest}"
    if len(readable) <= 128:
        return readable
    return "aql:" + hashlib.blake2b(line.text().encode(), digest_size=32).hexdigest()


def to_event(line: QueueLogLine, tenant: str | None = None) -> dict[str, Any] | Ignored:
    """The call event of ``line`` (a JSON object, not yet validated), or :class:`Ignored`.

    Raise :class:`~slawatch.connectors.queue_log.UnreadableLine` when a call line lacks
    what its event needs (a call id, an agent, a queue, a transfer target) or has a
    position that is not a number."""
    kind = EVENT_TYPES.get(line.event)
    if kind is None:
        return Ignored(line.event, IGNORED.get(line.event, UNKNOWN_VERB))
    if line.callid in _NONE:
        raise UnreadableLine(RejectReason.MISSING_FIELD, f"{line.event} without a call id")
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id(line),
        "type": kind,
        "occurred_at": line.epoch_ms,
        "call_id": line.callid,
    }
    if tenant is not None:
        event["tenant"] = tenant
    queue = None if line.queue in _NONE else line.queue
    verb = line.event
    if verb == "ENTERQUEUE":
        if queue is None:
            raise UnreadableLine(RejectReason.MISSING_FIELD, "ENTERQUEUE without a queue")
        event["queue"] = queue
        caller = line.field(1)
        if caller not in _NONE:
            event["caller"] = caller
        position = _position(line, 2)
        if position is not None:
            event["custom_fields"] = {"position": position}
    elif verb == "CONNECT":
        if line.agent in _NONE:
            raise UnreadableLine(RejectReason.MISSING_FIELD, "CONNECT without an agent")
        event["agent"] = line.agent
        if queue is not None:
            event["queue"] = queue
    elif kind == "call.abandoned":
        if queue is not None:
            event["queue"] = queue
        position = _position(line, _EXIT_POSITION[verb])
        if position is not None:
            event["position"] = position
    elif verb in ("TRANSFER", "BLINDTRANSFER"):
        extension = line.field(0)
        if extension in _NONE:
            raise UnreadableLine(
                RejectReason.MISSING_FIELD, f"{verb} without the extension transferred to"
            )
        event["to_agent"] = extension
    else:  # COMPLETECALLER, COMPLETEAGENT, ATTENDEDTRANSFER
        event["ended_by"] = "caller" if verb == "COMPLETECALLER" else "agent"
    return event


def _position(line: QueueLogLine, index: int) -> int | None:
    """The position in data field ``index``; None when absent or 0 (PBXware's unknown)."""
    text = line.field(index)
    if not text:
        return None
    if not text.isdigit():
        raise UnreadableLine(
            RejectReason.WRONG_TYPE,
            f"{line.event}: position (data field {index + 1}) {text[:40]!r} is not a number",
        )
    value = int(text)
    return value or None
