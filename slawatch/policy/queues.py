"""The ``queue_defaults`` and ``queues`` sections: what each call queue's KPIs are
measured against (:class:`~slawatch.core.kpi.QueueSettings`).

A queue's service-level ``target`` and ``goal`` ("80/20": 80 % of calls answered within
20 s), its ``short_abandon`` threshold and the ``timezone`` of its calendar day. Every key
a queue leaves out is the one of ``queue_defaults``; every key ``queue_defaults`` leaves
out is the built-in one (20 s, 80 %, the policy's ``short_abandon``, UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

import yaml

from slawatch.core.kpi import KpiError, QueueSettings
from slawatch.policy.calendars import read_time_zone
from slawatch.policy.levels import MAX_NAME_CHARS
from slawatch.policy.problems import PolicyReader

#: The keys of ``queue_defaults`` and of one queue.
QUEUE_KEYS = ("target", "goal", "short_abandon", "timezone")
#: The most queues a policy may set apart.
MAX_QUEUES = 10_000
#: A goal as a percent (``80%``) or as a share (``0.8``).
GOAL_PERCENT = r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$"
_PERCENT = re.compile(GOAL_PERCENT)
_SHARE = re.compile(r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$")
_GOAL_HINT = "a percent like 80% or a share like 0.8"


def read_queue_defaults(
    r: PolicyReader, node: yaml.Node, short_abandon_ms: int
) -> QueueSettings | None:
    """The ``queue_defaults`` section; None when it has problems. What it leaves out is
    built in: 20 s, 80 %, ``short_abandon_ms`` (the policy's), UTC."""
    base = QueueSettings(short_abandon_ms=short_abandon_ms)
    settings = None
    with r.guard(node, "queue_defaults"):
        settings = _settings(r, node, "queue_defaults", base)
    return settings


def read_queues(
    r: PolicyReader, node: yaml.Node, defaults: QueueSettings
) -> dict[str, QueueSettings | None]:
    """The ``queues`` section by queue name, each key left out taken from ``defaults``;
    None for a queue with problems."""
    queues: dict[str, QueueSettings | None] = {}
    for name, (name_node, queue_node) in r.mapping(node, "queues").items():
        if len(queues) == MAX_QUEUES:
            r.fail(name_node, f"queues.{name}", f"more than {MAX_QUEUES:,} queues",
                   hint="queues without their own targets use queue_defaults")  # fmt: skip
            break
        queues[name] = None
        if len(name) > MAX_NAME_CHARS:
            r.fail(name_node, f"queues.{name}", f"a name of {len(name)} characters; "
                   f"at most {MAX_NAME_CHARS}", hint="the queue name of call events")  # fmt: skip
            continue
        with r.guard(queue_node, f"queues.{name}"):
            queues[name] = _settings(r, queue_node, f"queues.{name}", defaults)
    return queues


def _settings(
    r: PolicyReader, node: yaml.Node, field: str, base: QueueSettings
) -> QueueSettings | None:
    """The settings at ``node``, each key left out taken from ``base``."""
    problems_before = r.found
    keys = r.mapping(node, field, QUEUE_KEYS)
    target_ms, goal = base.target_ms, base.goal
    short_abandon_ms, tz = base.short_abandon_ms, base.tz
    if "target" in keys:
        target_ms = r.duration(keys["target"][1], f"{field}.target") or target_ms
    if "goal" in keys:
        goal = _goal(r, keys["goal"][1], f"{field}.goal") or goal
    if "short_abandon" in keys:
        path = f"{field}.short_abandon"
        short_abandon_ms = r.duration(keys["short_abandon"][1], path) or short_abandon_ms
    if "timezone" in keys:
        zone = read_time_zone(r, keys["timezone"][1], f"{field}.timezone")
        tz = _zone(zone) if zone is not None else tz
    if r.found > problems_before:
        return None
    try:
        return QueueSettings(
            target_ms=target_ms, short_abandon_ms=short_abandon_ms, tz=tz, goal=goal
        )
    except KpiError as exc:  # each value was checked above; a last line of defence
        r.fail(node, field, str(exc))
        return None


def _goal(r: PolicyReader, node: yaml.Node, field: str) -> float | None:
    """``80%`` or ``0.8`` as 0.8; None, with the problem recorded, for anything else or a
    share not more than 0 % and at most 100 %."""
    text = r.text(node, field)
    if text is None:
        return None
    if _PERCENT.match(text):
        goal = float(text.strip().rstrip("%")) / 100
    elif _SHARE.match(text):
        goal = float(text)
        if goal > 1:
            r.fail(node, field, f"{text.strip()} is more than 1 (100%)",
                   hint=f"a share of calls: {_GOAL_HINT}")  # fmt: skip
            return None
    else:
        r.fail(node, field, f"{text!r} is neither a percent nor a share", hint=_GOAL_HINT)
        return None
    if not 0 < goal <= 1:
        r.fail(node, field, f"{text.strip()} is out of range: a goal is more than 0% and "
               "at most 100%", hint=_GOAL_HINT)  # fmt: skip
        return None
    return goal


def _zone(name: str) -> tzinfo:
    """``UTC`` as :data:`datetime.UTC`, any other IANA name as its :class:`ZoneInfo`."""
    return UTC if name == "UTC" else ZoneInfo(name)
