"""Drive the SLA state machine with real event models and an explicit watermark."""

from __future__ import annotations

from typing import Any

import orjson

from slawatch.core.clock import ManualClock
from slawatch.core.effects import SlaEvent
from slawatch.core.events import InputEvent
from slawatch.core.machine import advance, apply, next_deadline
from slawatch.core.policy import SlaPolicy, policy_by_priority
from slawatch.core.sla import Metric
from slawatch.core.state import ConversationState
from slawatch.schemas import EVENT_TYPES, EventValidator, Rejection
from tests.samples import event

T0 = 1_790_000_000_000  # event time origin of the scenarios
S = 1000  # one second in ms
M = 60 * S

#: Small targets, easy to reason about: 10 min first reply, 20 min next reply, 60 s chat,
#: 20 s call answer, 1 h resolution, at risk at 75 %.
POLICY = policy_by_priority(
    {
        Metric.FIRST_REPLY: {"normal": 10 * M, "urgent": 2 * M},
        Metric.NEXT_REPLY: {"normal": 20 * M},
        Metric.CHAT_REPLY: {"normal": 60 * S},
        Metric.CALL_ANSWER: {"normal": 20 * S},
        Metric.RESOLUTION: {"normal": 60 * M},
    },
    version="test-1",
)

_validator = EventValidator(
    max_event_bytes=1 << 20, max_future_skew_ms=1 << 50, clock=ManualClock(T0)
)


def ev(type_: str, at_s: float, n: int | None = None, **fields: Any) -> InputEvent:
    """A validated event of ``type_`` at ``T0 + at_s`` seconds (id unique unless ``n``)."""
    ev.counter += 1  # type: ignore[attr-defined]
    number = n if n is not None else ev.counter  # type: ignore[attr-defined]
    raw = event(type_, number, occurred_at=T0 + int(at_s * 1000), **fields)
    raw[EVENT_TYPES[type_].ID_FIELD] = "X-1"
    result = _validator.validate(orjson.dumps(raw), None)
    assert not isinstance(result, Rejection), result
    return result


ev.counter = 0  # type: ignore[attr-defined]


class Timeline:
    """One conversation: apply events, move the watermark, collect what is emitted."""

    def __init__(self, policy: SlaPolicy = POLICY) -> None:
        self.policy = policy
        self.state: ConversationState | None = None
        self.emitted: list[SlaEvent] = []
        self.watermark_ms = T0 - 1

    def send(self, *events: InputEvent) -> list[SlaEvent]:
        out: list[SlaEvent] = []
        for e in events:
            self.state, effects = apply(self.state, e, self.policy, now_ms=self.watermark_ms)
            out += effects
        self.emitted += out
        return out

    def to(self, at_s: float) -> list[SlaEvent]:
        """Move the watermark to ``T0 + at_s`` seconds and advance the timers."""
        return self.to_ms(T0 + int(at_s * 1000))

    def to_ms(self, watermark_ms: int) -> list[SlaEvent]:
        """Move the watermark to ``watermark_ms`` (never back) and advance the timers."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        if self.state is None:
            return []
        self.state, effects = advance(self.state, self.watermark_ms, self.policy, self.watermark_ms)
        self.emitted += effects
        return effects

    def deadline(self) -> int | None:
        assert self.state is not None
        return next_deadline(self.state)

    def kinds(self, metric: Metric | None = None) -> list[str]:
        return [
            f"{e.metric.value}#{e.cycle}:{e.kind.value}"
            for e in self.emitted
            if metric is None or e.metric is metric
        ]
