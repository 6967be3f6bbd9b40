"""The ``routes`` section of a routing file: which SLA events go to which receivers.

Routes are tried in order; the first whose ``match`` fits the SLA event applies, and the
search stops there unless the route says ``continue: true``. A route's ``escalation``
steps say, per kind of event, who is told: at once, or ``after`` a while if the cycle is
still open, and again every ``repeat`` while it stays open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from slawatch.core.sla import Metric, SlaEventKind
from slawatch.policy.problems import PolicyReader

#: What ``match`` may test: fields of the SLA event record.
MATCH_FIELDS = (
    "kind",
    "metric",
    "level",
    "priority",
    "department",
    "queue",
    "tenant",
    "customer_group",
)
#: The closed vocabularies among them.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "kind": tuple(k.value for k in SlaEventKind),
    "metric": tuple(m.value for m in Metric),
}
#: Kinds that open or raise an alert: a step on them triggers, may wait and may repeat.
ALERT_KINDS = ("at_risk", "breached")
#: Kinds a step may be ``on``: the alert kinds, and two one-off notices.
STEP_KINDS = (*ALERT_KINDS, "missed", "level_changed")
ROUTE_KEYS = ("name", "match", "escalation", "continue")
STEP_KEYS = ("on", "after", "to", "repeat")
#: The shortest repeat interval.
MIN_REPEAT_MS = 60_000
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Step:
    """One escalation step. ``id`` is stable while the route keeps its name and the step
    its place: ``<route name>.<step number from 1>``."""

    id: str
    on: str
    to: tuple[str, ...]
    after_ms: int | None = None
    repeat_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    match: Mapping[str, frozenset[str]] = field(hash=False)
    steps: tuple[Step, ...]
    continue_: bool = False

    def matches(self, values: Mapping[str, str | None]) -> bool:
        """True when every field in ``match`` has one of its values (a missing value
        matches nothing)."""
        return all(values.get(name) in allowed for name, allowed in self.match.items())


def read_routes(r: PolicyReader, node: yaml.Node, receivers: set[str]) -> list[Route | None]:
    """The ``routes`` section in order; None for a route with problems."""
    routes: list[Route | None] = []
    names: set[str] = set()
    for i, route_node in enumerate(r.sequence(node, "routes")):
        with r.guard(route_node, f"routes[{i}]"):
            route = _route(r, i, route_node, receivers)
            if route is not None and route.name in names:
                r.fail(route_node, f"routes[{i}].name", f"{route.name!r} is used twice",
                       hint="step ids are made from route names")  # fmt: skip
                route = None
            if route is not None:
                names.add(route.name)
            routes.append(route)
    return routes


def _route(r: PolicyReader, i: int, node: yaml.Node, receivers: set[str]) -> Route | None:
    here = f"routes[{i}]"
    before = r.found
    keys = r.mapping(node, here, ROUTE_KEYS)
    name = f"route-{i + 1}"
    if "name" in keys:
        text = r.text(keys["name"][1], f"{here}.name")
        if text is not None and not _NAME.match(text):
            r.fail(keys["name"][1], f"{here}.name",
                   "a name is 1 to 64 letters, digits, '_', '-' or '.'")  # fmt: skip
        name = text or name
    match: dict[str, frozenset[str]] = {}
    if "match" in keys:
        match = _match(r, keys["match"][1], f"{here}.match")
    continue_ = False
    if "continue" in keys:
        value = r.value(keys["continue"][1], f"{here}.continue")
        if not isinstance(value, bool):
            r.fail(keys["continue"][1], f"{here}.continue", "expected true or false")
        else:
            continue_ = value
    steps: list[Step] = []
    if "escalation" not in keys:
        r.fail(node, f"{here}.escalation", "missing",
               hint="escalation: [{on: breached, to: [oncall]}]")  # fmt: skip
    else:
        for j, step_node in enumerate(r.sequence(keys["escalation"][1], f"{here}.escalation")):
            step = _step(r, f"{here}.escalation[{j}]", f"{name}.{j + 1}", step_node, receivers)
            if step is not None:
                steps.append(step)
        if isinstance(keys["escalation"][1], yaml.SequenceNode) and not steps and r.found == before:
            r.fail(keys["escalation"][1], f"{here}.escalation", "no steps",
                   hint="escalation: [{on: breached, to: [oncall]}]")  # fmt: skip
    if r.found > before:
        return None
    return Route(name, match, tuple(steps), continue_)


def _match(r: PolicyReader, node: yaml.Node, here: str) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for key, (_, value_node) in r.mapping(node, here, MATCH_FIELDS).items():
        where = f"{here}.{key}"
        items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        if not items:
            r.fail(value_node, where, "an empty list matches nothing")
            continue
        values = set()
        for item in items:
            text = r.text(item, where)
            if text is None:
                continue
            allowed = VOCABULARIES.get(key)
            if allowed is not None and text not in allowed:
                r.fail(item, where, f"unknown {key} {text!r}", hint=f"{key}s: {', '.join(allowed)}")
                continue
            values.add(text)
        out[key] = frozenset(values)
    return out


def _step(
    r: PolicyReader, here: str, step_id: str, node: yaml.Node, receivers: set[str]
) -> Step | None:
    before = r.found
    keys = r.mapping(node, here, STEP_KEYS)
    on = None
    if "on" not in keys:
        r.fail(node, f"{here}.on", "missing", hint=f"on: one of {', '.join(STEP_KINDS)}")
    else:
        on = r.text(keys["on"][1], f"{here}.on")
        if on is not None and on not in STEP_KINDS:
            r.fail(keys["on"][1], f"{here}.on", f"a step cannot be on {on!r}",
                   hint=f"one of {', '.join(STEP_KINDS)}; met, missed, cancelled and retracted "
                   "resolve every receiver alerted")  # fmt: skip
    to: list[str] = []
    if "to" not in keys:
        r.fail(node, f"{here}.to", "missing", hint="to: [receiver, ...]")
    else:
        to_node = keys["to"][1]
        items = to_node.value if isinstance(to_node, yaml.SequenceNode) else [to_node]
        if not items:
            r.fail(to_node, f"{here}.to", "an empty list", hint="to: [receiver, ...]")
        for item in items:
            name = r.text(item, f"{here}.to")
            if name is not None and name not in receivers:
                known = ", ".join(sorted(receivers)) or "(none defined)"
                r.fail(item, f"{here}.to", f"no receiver {name!r}", hint=f"receivers: {known}")
            elif name is not None and name not in to:
                to.append(name)
    timed = {}
    for key in ("after", "repeat"):
        if key in keys:
            timed[key] = r.duration(keys[key][1], f"{here}.{key}")
            if key == "repeat" and (timed[key] or MIN_REPEAT_MS) < MIN_REPEAT_MS:
                r.fail(keys[key][1], f"{here}.repeat", "at least 1m", hint="repeat: 30m")
                timed[key] = None
            if on is not None and on not in ALERT_KINDS:
                r.fail(keys[key][0], f"{here}.{key}", f"a step on {on} is sent once",
                       hint=f"{key} is for steps on {' or '.join(ALERT_KINDS)}")  # fmt: skip
    if r.found > before or on is None:
        return None
    return Step(step_id, on, tuple(to), timed.get("after"), timed.get("repeat"))
