"""The SLA log: one record per SLA cycle, built from the SLA events about it.

``slawatch replay`` writes it, and the same builder reads it back from the ``sla-events``
topic, so the stream and the replay are compared on one definition (and a consumer of
the topic can build the same log). What a record says is event-time truth, not when
slawatch noticed: a breach the stream declared early and then retracted (a stop that was
still unread) is not a breach here, and ``at_risk_at`` is the instant the cycle crossed
its at-risk threshold, if it did before it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from slawatch.core.sla import SlaEventKind
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord

#: A cycle's status in the log.
STATUSES = ("met", "breached", "cancelled", "open")
_FINAL_STATUS = {
    SlaEventKind.MET.value: "met",
    SlaEventKind.MISSED.value: "breached",
    SlaEventKind.CANCELLED.value: "cancelled",
}


@dataclass(slots=True)
class _Cycle:
    record: SlaEventRecord
    final: SlaEventRecord | None = None
    at_risk_declared: bool = False
    breach_declared: bool = False


@dataclass(slots=True)
class CycleLog:
    """Fold SLA events (in the order they were emitted per conversation) into cycles."""

    _cycles: dict[tuple[str, str, int], _Cycle] = field(default_factory=dict)
    #: Open cycles that have not had an SLA event (only a replay, which holds the states,
    #: knows them): their log records, ready made.
    _quiet: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)

    def add(self, record: SlaEventRecord) -> None:
        key = (record.conversation_key, record.metric, record.cycle)
        cycle = self._cycles.get(key)
        if cycle is None:
            cycle = self._cycles[key] = _Cycle(record)
        kind = record.kind
        if kind == SlaEventKind.AT_RISK:
            cycle.at_risk_declared = True
        elif kind == SlaEventKind.BREACHED:
            cycle.breach_declared = True
        elif kind == SlaEventKind.RETRACTED:
            cycle.breach_declared = False
        if kind in _FINAL_STATUS:
            cycle.final = record
        if kind != SlaEventKind.RETRACTED or cycle.final is None:
            cycle.record = record  # the latest word on level, version and schedule

    def __contains__(self, key: tuple[str, str, int]) -> bool:
        return key in self._cycles or key in self._quiet

    def add_quiet(self, record: dict[str, Any]) -> None:
        """An open cycle nothing has been said about yet (status ``open``)."""
        self._quiet[(record["conversation_key"], record["metric"], record["cycle"])] = record

    def __len__(self) -> int:
        return len(self._cycles) + len(self._quiet)

    def records(self) -> Iterator[dict[str, Any]]:
        """The log, sorted by conversation, metric and cycle."""
        for key in sorted((*self._cycles, *self._quiet)):
            cycle = self._cycles.get(key)
            yield _log_record(cycle) if cycle is not None else self._quiet[key]


def _log_record(cycle: _Cycle) -> dict[str, Any]:
    latest, final = cycle.record, cycle.final
    if final is not None:
        status = _FINAL_STATUS[final.kind]
        stopped_at: str | None = final.at
        reached_risk = parse_timestamp_ms(latest.at_risk_at) <= parse_timestamp_ms(final.at)
        at_risk_at = latest.at_risk_at if reached_risk else None
        breached_at = latest.due_at if status == "breached" else None
        business_seconds: float | None = final.elapsed_s
    else:
        status = "breached" if cycle.breach_declared else "open"
        stopped_at = None
        at_risk_at = latest.at_risk_at if cycle.at_risk_declared else None
        breached_at = latest.due_at if cycle.breach_declared else None
        business_seconds = None
    return {
        "conversation_key": latest.conversation_key,
        "conversation_kind": latest.conversation_kind,
        "conversation_id": latest.conversation_id,
        "tenant": latest.tenant,
        "metric": latest.metric,
        "cycle": latest.cycle,
        "level": latest.level,
        "policy_version": latest.policy_version,
        "target_s": latest.target_s,
        "started_at": latest.started_at,
        "due_at": latest.due_at,
        "stopped_at": stopped_at,
        "status": status,
        "business_seconds": business_seconds,
        "at_risk_at": at_risk_at,
        "breached_at": breached_at,
    }


def cycle_log(records: Iterable[SlaEventRecord]) -> CycleLog:
    log = CycleLog()
    for record in records:
        log.add(record)
    return log
