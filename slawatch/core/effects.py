"""What the timers emit: one record per thing that happened to a cycle."""

from __future__ import annotations

from msgspec import Struct

from slawatch.core.sla import CancelReason, Metric, SlaEventKind, Stop
from slawatch.core.state import Context


class SlaEvent(Struct, frozen=True, gc=False):
    """An SLA event (immutable; built in C: a fifth of a frozen dataclass's cost).
    ``event_id`` is stable per (conversation, metric, cycle, kind), so a consumer can drop
    the copies an at-least-once pipeline may deliver after a restart.

    ``at_ms`` is the event time it refers to: the at-risk instant, due, or the stop.
    ``elapsed_ms`` is the working time from start to stop (finals) or to ``at_ms``.
    ``level_changed`` may happen several times to a cycle; its id adds the event time.
    ``detected_at_ms`` is the wall-clock time slawatch decided it; for ``at_risk`` and
    ``breached`` the detection delay is ``detected_at_ms - at_ms``. ``context`` is a copy
    of the conversation's context as it was when the event was said (the state's own
    changes in place).
    """

    kind: SlaEventKind
    metric: Metric
    cycle: int
    key: str
    context: Context
    target_ms: int
    started_ms: int
    due_ms: int
    at_ms: int
    elapsed_ms: int
    detected_at_ms: int
    policy_version: str
    #: The cycle's at-risk instant (event time) as scheduled when this was decided.
    at_risk_ms: int = 0
    reason: CancelReason | None = None
    #: On final kinds: what stopped the cycle.
    stop: Stop | None = None
    #: For ``level_changed``: the level before.
    previous_level: str | None = None
    #: This event's number among its cycle's events (1, 2, …: a later one is larger).
    sequence: int = 0

    @property
    def event_id(self) -> str:
        base = f"{self.key}|{self.metric.value}|{self.cycle}|{self.kind.value}"
        if self.kind is SlaEventKind.LEVEL_CHANGED:  # the one kind a cycle can have twice
            return f"{base}@{self.at_ms}"
        return base

    @property
    def detection_delay_ms(self) -> int:
        return self.detected_at_ms - self.at_ms
