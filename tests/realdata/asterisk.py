"""A real Asterisk ``queue_log`` (../shared/data/asterisk_queue_log, PBXware, Nov-Dec 2018)
turned into slawatch call events.

Standard lines are ``epoch|callid|queue|agent|EVENT|data1|data2|data3``. Mapping:
ENTERQUEUE -> ``call.queued``; CONNECT -> ``call.answered`` (agent from the agent column);
ABANDON and EXITWITHTIMEOUT -> ``call.abandoned`` (the caller left the queue unanswered,
by hanging up or by the queue's timeout); COMPLETECALLER and COMPLETEAGENT ->
``call.ended``. RINGNOANSWER (an agent's phone rang unanswered) and queue and member
housekeeping lines are not call events. The export stops at 1,000 rows, so its last calls
may have no outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "asterisk_queue_log"

_TYPES = {
    "ENTERQUEUE": "call.queued",
    "CONNECT": "call.answered",
    "ABANDON": "call.abandoned",
    "EXITWITHTIMEOUT": "call.abandoned",
    "COMPLETECALLER": "call.ended",
    "COMPLETEAGENT": "call.ended",
}


@dataclass(frozen=True)
class QueueLogLine:
    epoch_s: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


def read_lines(path: Path = DATA / "queue_log_standard_derived.log") -> Iterator[QueueLogLine]:
    for raw in path.read_text(encoding="utf-8").splitlines():
        epoch, callid, queue, agent, event, *data = raw.split("|")
        yield QueueLogLine(int(epoch), callid, queue, agent, event, tuple(data))


def to_event(line: QueueLogLine, n: int) -> dict[str, Any] | None:
    """The line as a slawatch input event, or None when it is not a call event."""
    kind = _TYPES.get(line.event)
    if kind is None:
        return None
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"{line.callid}/{n}",
        "type": kind,
        "occurred_at": line.epoch_s * 1000,
        "call_id": line.callid,
    }
    if kind == "call.queued":
        event["queue"] = line.queue
    elif kind == "call.answered":
        event["agent"] = line.agent
        event["queue"] = line.queue
    elif kind == "call.abandoned":
        event["queue"] = line.queue
    return event
