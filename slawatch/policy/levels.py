"""The ``levels`` section: per level, its targets, when it is at risk, its calendar and the
statuses that pause its clocks."""

from __future__ import annotations

import re

import yaml

from slawatch.core.calendar import AlwaysOpen, Calendar
from slawatch.core.durations import InvalidDuration
from slawatch.core.policy import DEFAULT_PAUSE_STATUSES, SlaLevel
from slawatch.core.sla import Metric
from slawatch.core.vocabulary import STATUSES
from slawatch.policy.calendars import ALWAYS_OPEN
from slawatch.policy.problems import PolicyReader, safe_duration_ms

#: The keys of one level.
LEVEL_KEYS = ("targets", "at_risk", "calendar", "pause_statuses")
#: The metrics a level may set a target for (the keys of ``targets``).
METRICS = tuple(m.value for m in Metric)
#: The statuses ``pause_statuses`` may name.
PAUSE_STATUSES = STATUSES
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


#: The longest level name (every SLA event carries it; the event schema allows 256).
MAX_NAME_CHARS = 128


def read_levels(
    r: PolicyReader, node: yaml.Node, calendars: dict[str, Calendar | None]
) -> dict[str, SlaLevel | None]:
    """The ``levels`` section by name; None for a level with problems."""
    levels: dict[str, SlaLevel | None] = {}
    for name, (name_node, level_node) in r.mapping(node, "levels").items():
        levels[name] = None
        if len(name) > MAX_NAME_CHARS:
            r.fail(name_node, f"levels.{name}", f"a name of {len(name)} characters; "
                   f"at most {MAX_NAME_CHARS}", hint="SLA events carry it")  # fmt: skip
            continue
        with r.guard(level_node, f"levels.{name}"):
            levels[name] = _level(r, name, level_node, calendars)
    return levels


def _level(
    r: PolicyReader, name: str, node: yaml.Node, calendars: dict[str, Calendar | None]
) -> SlaLevel | None:
    field = f"levels.{name}"
    problems_before = r.found
    keys = r.mapping(node, field, LEVEL_KEYS)
    targets: dict[Metric, int] = {}
    if "targets" not in keys:
        r.fail(node, field, "targets is missing", hint="targets: {first_reply: 1h, resolution: 3d}")
    else:
        for metric, (metric_node, value_node) in r.mapping(
            keys["targets"][1], f"{field}.targets"
        ).items():
            if metric not in METRICS:
                r.fail(
                    metric_node,
                    f"{field}.targets.{metric}",
                    "unknown metric",
                    hint=f"metrics: {', '.join(METRICS)}",
                )
                continue
            target = r.duration(value_node, f"{field}.targets.{metric}")
            if target is not None:
                targets[Metric(metric)] = target
    ratio, lead = 0.75, None
    if "at_risk" in keys:
        node_at_risk = keys["at_risk"][1]
        text = r.text(node_at_risk, f"{field}.at_risk") or ""
        percent = _PERCENT.match(text)
        if percent:
            ratio = float(percent.group(1)) / 100
            if not 0 < ratio <= 1:
                r.fail(
                    node_at_risk,
                    f"{field}.at_risk",
                    "a share of the target is more than 0% and at most 100%",
                )
                ratio = 0.75
        else:
            try:
                lead = safe_duration_ms(text)
            except InvalidDuration:
                r.fail(
                    node_at_risk,
                    f"{field}.at_risk",
                    f"{text!r} is neither a percent nor a duration",
                    hint="75% (of the target elapsed) or 10m (before due)",
                )
    calendar: Calendar | None = AlwaysOpen()
    if "calendar" in keys:
        cal_name = r.text(keys["calendar"][1], f"{field}.calendar")
        if cal_name is not None and cal_name != ALWAYS_OPEN:
            if cal_name not in calendars:
                known = ", ".join([ALWAYS_OPEN, *calendars])
                r.fail(
                    keys["calendar"][1],
                    f"{field}.calendar",
                    f"no calendar {cal_name!r}",
                    hint=f"calendars: {known}",
                )
            calendar = calendars.get(cal_name)
    pause = DEFAULT_PAUSE_STATUSES
    if "pause_statuses" in keys:
        values = []
        for status_node in r.sequence(keys["pause_statuses"][1], f"{field}.pause_statuses"):
            status = r.text(status_node, f"{field}.pause_statuses")
            if status is not None and status not in PAUSE_STATUSES:
                r.fail(
                    status_node,
                    f"{field}.pause_statuses",
                    f"unknown status {status!r}",
                    hint=f"statuses: {', '.join(PAUSE_STATUSES)}",
                )
            values.append(status or "")
        pause = frozenset(values)
    if calendar is None or r.found > problems_before:
        return None
    return SlaLevel(name, targets, ratio, lead, pause, calendar)
