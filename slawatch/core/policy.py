"""What an SLA promises: levels of targets, the rules that pick a conversation's level,
and the calendar each level's clock runs on.

A :class:`SlaLevel` sets a target per metric, when a cycle counts as at risk, which
statuses pause resolution, and its calendar. A :class:`SlaPolicy` holds the levels, the
ordered rules (slacore/rules.py) and a version; it is immutable, so a reloaded policy is
a new object and everything decided under the old one keeps its version. It also holds
what each call queue's KPIs are measured against (:class:`~slawatch.core.kpi.QueueSettings`:
the service-level target and goal, the short-abandon threshold, the time zone of its day),
per queue with a default, and the credits its contracts pay back for missed commitments
(:class:`~slawatch.core.credits.CreditTerm`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from slawatch.core.calendar import AlwaysOpen, Calendar
from slawatch.core.credits import CreditTerm
from slawatch.core.kpi import QueueSettings
from slawatch.core.rules import Rule, RuleSet, Test
from slawatch.core.sla import Metric
from slawatch.core.state import Context
from slawatch.core.vocabulary import PRIORITIES

DEFAULT_PAUSE_STATUSES = frozenset({"pending", "on_hold"})

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
    """A policy that cannot work (a negative target, an unknown level)."""


#: Stands for "not given" in :attr:`SlaPolicy.queue_defaults` (compared by identity): the
#: policy then builds its defaults from its own ``short_abandon_ms``.
_DERIVED_QUEUE_DEFAULTS = QueueSettings()


@dataclass(frozen=True, slots=True)
class SlaLevel:
    """One level of service: targets per metric (a metric without one is not tracked)."""

    name: str
    targets_ms: Mapping[Metric, int]
    #: At risk once this share of the target has elapsed ...
    at_risk_ratio: float = 0.75
    #: ... or, when set, this long before due.
    at_risk_lead_ms: int | None = None
    pause_statuses: frozenset[str] = DEFAULT_PAUSE_STATUSES
    calendar: Calendar = field(default_factory=AlwaysOpen)
    #: ``at_risk_ratio`` in millionths, so a share of a target is integer arithmetic:
    #: 70 % of 11 s is 7.7 s, not the 7.699 s a float product truncates to.
    _at_risk_ppm: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.at_risk_ratio <= 1:
            raise PolicyError(f"at_risk_ratio must be in (0, 1], got {self.at_risk_ratio}")
        object.__setattr__(self, "_at_risk_ppm", round(self.at_risk_ratio * 1_000_000))
        if self.at_risk_lead_ms is not None and self.at_risk_lead_ms < 0:
            raise PolicyError("at_risk_lead_ms must not be negative")
        for metric, target in self.targets_ms.items():
            if target <= 0:
                raise PolicyError(f"{self.name}.{metric}: target must be positive")

    def target_ms(self, metric: Metric) -> int | None:
        return self.targets_ms.get(metric)

    def at_risk_after_ms(self, target_ms: int) -> int:
        """Working time after the start at which a cycle becomes at risk."""
        if self.at_risk_lead_ms is not None:
            return max(0, target_ms - self.at_risk_lead_ms)
        return target_ms * self._at_risk_ppm // 1_000_000


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Levels, the rules that choose among them, the version that names the whole, and what
    each call queue's KPIs are measured against."""

    version: str
    levels: Mapping[str, SlaLevel]
    rules: RuleSet
    #: A caller who hangs up this soon after queueing did not really wait.
    short_abandon_ms: int = 5_000
    #: What a call queue without its own settings is measured against; when not given,
    #: 80/20 in UTC with the policy's ``short_abandon_ms``.
    queue_defaults: QueueSettings = _DERIVED_QUEUE_DEFAULTS
    #: Call queues with their own settings, by queue name.
    queues: Mapping[str, QueueSettings] = field(default_factory=dict)
    #: What is owed back per customer and month for missed commitments (reports only:
    #: no timer depends on it).
    credits: tuple[CreditTerm, ...] = ()

    def __post_init__(self) -> None:
        if self.queue_defaults is _DERIVED_QUEUE_DEFAULTS:
            derived = QueueSettings(short_abandon_ms=self.short_abandon_ms)
            object.__setattr__(self, "queue_defaults", derived)  # frozen: set once, here
        if self.rules.default_level not in self.levels:
            raise PolicyError(f"default level {self.rules.default_level!r} is not defined")
        for rule in self.rules.rules:
            if rule.level is not None and rule.level not in self.levels:
                raise PolicyError(f"rule {rule.name!r} sets undefined level {rule.level!r}")
        for term in self.credits:
            undefined = [v for v in term.values if term.scope == "level" and v not in self.levels]
            if undefined:
                raise PolicyError(f"credit term {term.label!r}: undefined level {undefined[0]!r}")

    @property
    def default_level(self) -> str:
        return self.rules.default_level

    def level(self, name: str) -> SlaLevel:
        """The level called ``name``; the default one if this version has no such level."""
        found = self.levels.get(name)
        return found if found is not None else self.levels[self.rules.default_level]

    def level_for(self, context: Context, now_ms: int) -> str:
        """The level the rules give ``context`` at event time ``now_ms``."""
        return self.rules.level_for(context, now_ms)

    def queue_settings(self, queue: str | None) -> QueueSettings:
        """What call queue ``queue`` is measured against: its own settings, or the
        defaults (also for no queue)."""
        if queue is None:
            return self.queue_defaults
        return self.queues.get(queue, self.queue_defaults)

    def scaled(self, time_scale: float) -> SlaPolicy:
        """Every target and lead divided by ``time_scale`` (demos compress time)."""
        if time_scale <= 0:
            raise PolicyError("time scale must be positive")
        if time_scale == 1:
            return self

        def scale(ms: int) -> int:
            return max(1, round(ms / time_scale))

        def scale_queue(settings: QueueSettings) -> QueueSettings:
            # The goal and the time zone stay; a zero short abandon (none) stays zero.
            return replace(
                settings,
                target_ms=scale(settings.target_ms),
                short_abandon_ms=scale(settings.short_abandon_ms)
                if settings.short_abandon_ms
                else 0,
            )

        levels = {
            name: SlaLevel(
                name=level.name,
                targets_ms={m: scale(t) for m, t in level.targets_ms.items()},
                at_risk_ratio=level.at_risk_ratio,
                at_risk_lead_ms=None
                if level.at_risk_lead_ms is None
                else scale(level.at_risk_lead_ms),
                pause_statuses=level.pause_statuses,
                calendar=level.calendar,
            )
            for name, level in self.levels.items()
        }
        return SlaPolicy(
            version=self.version,
            levels=levels,
            rules=self.rules,
            short_abandon_ms=scale(self.short_abandon_ms),
            queue_defaults=scale_queue(self.queue_defaults),
            queues={name: scale_queue(settings) for name, settings in self.queues.items()},
            credits=self.credits,
        )


def policy_by_priority(
    targets_ms: Mapping[Metric, Mapping[str, int]],
    *,
    version: str,
    at_risk_ratio: float = 0.75,
    short_abandon_ms: int = 5_000,
    calendar: Calendar | None = None,
) -> SlaPolicy:
    """One level per priority (named after it) and one rule per priority choosing it:
    the shape of the built-in policy. A priority without its own target for a metric uses
    the ``normal`` one."""
    levels: dict[str, SlaLevel] = {}
    for priority in PRIORITIES:
        targets = {}
        for metric, by_priority in targets_ms.items():
            target = by_priority.get(priority, by_priority.get("normal"))
            if target is not None:
                targets[metric] = target
        levels[priority] = SlaLevel(
            name=priority,
            targets_ms=targets,
            at_risk_ratio=at_risk_ratio,
            calendar=calendar if calendar is not None else AlwaysOpen(),
        )
    rules = [
        Rule(name=f"priority {p}", condition=Test("priority", "equals", p), level=p, stop=True)
        for p in PRIORITIES
    ]
    return SlaPolicy(
        version=version,
        levels=levels,
        rules=RuleSet(rules, default_level="normal"),
        short_abandon_ms=short_abandon_ms,
    )


def builtin_policy() -> SlaPolicy:
    """The policy a worker runs without a policy file: :data:`DEFAULT_TARGETS_S`, 24x7."""
    targets = {
        metric: {p: round(s * 1000) for p, s in by_priority.items()}
        for metric, by_priority in DEFAULT_TARGETS_S.items()
    }
    return policy_by_priority(targets, version="builtin-1")
