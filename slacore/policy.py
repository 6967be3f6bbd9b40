"""What an SLA promises: targets per metric and priority, the at-risk threshold, which
statuses pause the clock, and the calendar the clock runs on.

The policies issue adds levels, rules and business-hours calendars on top; the timer
state machine only asks a policy the questions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slacore.calendar import AlwaysOpen, Calendar
from slacore.sla import Metric

PRIORITIES = ("low", "normal", "high", "urgent")

#: Built-in targets in seconds, per metric and priority: common help-desk and call-centre
#: commitments (80/20 for calls: answer within 20 s at normal priority).
DEFAULT_TARGETS_S: Mapping[Metric, Mapping[str, float]] = {
    Metric.FIRST_REPLY: {"urgent": 900, "high": 3600, "normal": 4 * 3600, "low": 8 * 3600},
    Metric.NEXT_REPLY: {"urgent": 1800, "high": 2 * 3600, "normal": 8 * 3600, "low": 24 * 3600},
    Metric.CHAT_REPLY: {"urgent": 30, "high": 45, "normal": 60, "low": 90},
    Metric.CALL_ANSWER: {"urgent": 10, "high": 15, "normal": 20, "low": 30},
    Metric.RESOLUTION: {
        "urgent": 4 * 3600,
        "high": 24 * 3600,
        "normal": 3 * 86400,
        "low": 7 * 86400,
    },
}


class PolicyError(ValueError):
    """A policy that cannot work (a negative target, an at-risk threshold outside 0..1)."""


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """The rules the timers apply. Immutable: a new version is a new object."""

    version: str = "builtin-1"
    level: str = "default"
    targets_ms: Mapping[Metric, Mapping[str, int]] = field(
        default_factory=lambda: scaled_targets(DEFAULT_TARGETS_S, 1.0)
    )
    #: At risk once this share of the target has elapsed ...
    at_risk_ratio: float = 0.75
    #: ... or, when set, this long before due (whichever the policy says).
    at_risk_lead_ms: int | None = None
    pause_statuses: frozenset[str] = frozenset({"pending", "on_hold"})
    #: A caller who hangs up this soon after queueing did not really wait.
    short_abandon_ms: int = 5_000
    calendar: Calendar = field(default_factory=AlwaysOpen)

    def __post_init__(self) -> None:
        if not 0 < self.at_risk_ratio <= 1:
            raise PolicyError(f"at_risk_ratio must be in (0, 1], got {self.at_risk_ratio}")
        if self.at_risk_lead_ms is not None and self.at_risk_lead_ms < 0:
            raise PolicyError("at_risk_lead_ms must not be negative")
        for metric, by_priority in self.targets_ms.items():
            for priority, target in by_priority.items():
                if target <= 0:
                    raise PolicyError(f"{metric}/{priority}: target must be positive")

    def target_ms(self, metric: Metric, priority: str) -> int | None:
        """The target for ``metric`` at ``priority``; None when the metric is not tracked."""
        by_priority = self.targets_ms.get(metric)
        if not by_priority:
            return None
        return by_priority.get(priority, by_priority.get("normal"))

    def at_risk_after_ms(self, target_ms: int) -> int:
        """Working time after the start at which a cycle becomes at risk."""
        if self.at_risk_lead_ms is not None:
            return max(0, target_ms - self.at_risk_lead_ms)
        return int(target_ms * self.at_risk_ratio)


def scaled_targets(
    targets_s: Mapping[Metric, Mapping[str, float]], time_scale: float
) -> dict[Metric, dict[str, int]]:
    """Targets in milliseconds, each divided by ``time_scale`` (demos compress time)."""
    if time_scale <= 0:
        raise PolicyError("time scale must be positive")
    return {
        metric: {p: max(1, round(s * 1000 / time_scale)) for p, s in by_priority.items()}
        for metric, by_priority in targets_s.items()
    }
