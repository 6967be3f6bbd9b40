"""The Anonymous Bank call centre, February 1999 (../shared/data/anonymous_bank_1999):
real per-call records turned into slawatch call events.

Conversion (following the data's PROVENANCE.md):

- ``PHANTOM`` rows are not calls and are skipped; calls that hung up in the VRU without
  ever queueing are not queue calls and are skipped too;
- a call enters the queue at ``q_start``; when ``q_start`` is blank but ``q_time > 0`` (a
  few rows disagree) it entered when it left the VRU (``vru_exit``); a call that went
  straight to a free agent (no queue) entered and was answered at ``vru_exit``;
- it leaves the queue ``q_time`` seconds later (never the clock difference: some waits
  cross midnight): ``call.answered`` by ``server`` for outcome ``AGENT``, ``call.abandoned``
  for ``HANG``;
- Israel standard time, UTC+2 (February 1999 had no DST); ``type`` is the queue;
  priority 2 (priority customers) is ``high``, 0 and 1 are ``normal``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "anonymous_bank_1999"
ISRAEL_STANDARD_TIME = timezone(timedelta(hours=2))


@dataclass(frozen=True)
class BankCall:
    """One real call as the file has it (only what the conversion needs)."""

    call_key: str
    entered: datetime  # queue entry
    wait_s: int  # q_time
    answered: bool
    agent: str
    queue: str
    priority: str


def _clock(day: str, hms: str) -> datetime:
    date = datetime.strptime(day, "%y%m%d").replace(tzinfo=ISRAEL_STANDARD_TIME)
    h, m, s = (int(x) for x in hms.split(":"))
    return date + timedelta(hours=h, minutes=m, seconds=s)


def read_calls(path: Path = DATA / "february_1999.txt") -> Iterator[BankCall]:
    """Yield every queue call of the month (see the module docstring for the rules)."""
    with path.open(encoding="ascii", newline="") as rows:
        next(rows)  # header
        for line in rows:
            f = line.rstrip("\r\n").split("\t")
            vru_line, call_id, _cust, prio, kind, day = f[0], f[1], f[2], f[3], f[4], f[5]
            vru_exit, q_start, q_time, outcome, server = f[7], f[9], int(f[11]), f[12], f[16]
            if outcome == "PHANTOM":
                continue
            queued = q_start != "0:00:00" or q_time > 0
            if not queued and outcome != "AGENT":
                continue  # hung up in the VRU
            entered = _clock(day, q_start if q_start != "0:00:00" else vru_exit)
            yield BankCall(
                call_key=f"{vru_line}-{day}-{call_id}",
                entered=entered,
                wait_s=q_time,
                answered=outcome == "AGENT",
                agent=server if server != "NO_SERVER" else "unknown",
                queue=kind,
                priority="high" if prio == "2" else "normal",
            )


def to_events(call: BankCall) -> list[dict[str, Any]]:
    """The call as slawatch input events (JSON objects, as a producer would send them)."""
    left = call.entered + timedelta(seconds=call.wait_s)
    common = {"schema_version": 1, "call_id": call.call_key}
    queued = {**common, "event_id": f"{call.call_key}/q", "type": "call.queued",
              "occurred_at": call.entered.isoformat(), "queue": call.queue,
              "priority": call.priority}  # fmt: skip
    if call.answered:
        done = {**common, "event_id": f"{call.call_key}/a", "type": "call.answered",
                "occurred_at": left.isoformat(), "agent": call.agent,
                "queue": call.queue}  # fmt: skip
    else:
        done = {**common, "event_id": f"{call.call_key}/x", "type": "call.abandoned",
                "occurred_at": left.isoformat(), "queue": call.queue}  # fmt: skip
    return [queued, done]
