"""The policy file: calendars, levels, rules and the default level, in YAML.

:func:`parse_policy` reads the whole document and reports *every* problem it finds, each
with its line, the dotted path of the field and a hint, so ``slawatch check-config`` can
list them all at once. The same function checks a policy arriving on the policy topic.
The format is documented in the README (SLA policies) and described by
``schemas/json/policy.v1.json`` (schemas/policy_schema.py) for editors.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from slawatch.core.business_hours import BusinessCalendar, CalendarError, LocalSpan
from slawatch.core.calendar import AlwaysOpen, Calendar
from slawatch.core.durations import InvalidDuration, parse_duration_ms
from slawatch.core.policy import DEFAULT_PAUSE_STATUSES, PolicyError, SlaLevel, SlaPolicy
from slawatch.core.rules import (
    OPERATORS,
    All,
    AnyOf,
    Condition,
    FieldType,
    Not,
    Rule,
    RuleError,
    RuleSet,
    Test,
    compile_condition,
    field_type,
)
from slawatch.core.sla import Metric
from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms
from slawatch.errors import SlawatchError
from slawatch.schemas.events import STATUSES
from slawatch.schemas.policy_schema import ALWAYS_OPEN

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOP_LEVEL = (
    "version",
    "description",
    "default_level",
    "short_abandon",
    "calendars",
    "levels",
    "rules",
)
CALENDAR_KEYS = ("time_zone", "hours", "holidays", "exceptions")
LEVEL_KEYS = ("targets", "at_risk", "calendar", "pause_statuses")
RULE_KEYS = ("name", "when", "set_level", "stop")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file."""

    line: int
    field: str
    message: str
    hint: str = ""

    def render(self, source: str) -> str:
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{source}:{self.line}: {self.field}: {self.message}{hint}"


class PolicyFileError(SlawatchError):
    """A policy that cannot be used; holds every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        more = (
            f" (and {len(problems) - 1} more: slawatch check-config)" if len(problems) > 1 else ""
        )
        super().__init__(problems[0].render(source) + more)

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


class _Reader:
    """Walks the YAML nodes, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, node: yaml.Node | None, field: str, message: str, hint: str = "") -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(Problem(line, field, message, hint))

    def mapping(
        self, node: yaml.Node, field: str, known: tuple[str, ...] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, field, "expected a mapping (key: value lines)")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = f"{field}.{key}" if field else key
            if key in out:
                self.fail(key_node, path, "appears twice")
            elif known is not None and key not in known:
                self.fail(key_node, path, "unknown key", hint=f"known keys: {', '.join(known)}")
            else:
                out[key] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, field, "expected a list")
            return []
        return list(node.value)

    def text(self, node: yaml.Node, field: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.fail(node, field, "expected a single value")
            return None
        return str(node.value)

    def value(self, node: yaml.Node) -> Any:
        """A scalar or list as YAML types it (numbers, true/false, text)."""
        return yaml.SafeLoader("").construct_document(node)

    def duration(self, node: yaml.Node, field: str) -> int | None:
        text = self.text(node, field)
        if text is None:
            return None
        try:
            return parse_duration_ms(text)
        except InvalidDuration as exc:
            self.fail(node, field, str(exc), hint="a number and a unit: 90s, 15m, 8h, 3d")
            return None


# --- calendars --------------------------------------------------------------------------


def _minutes(hours: str, minutes: str) -> int | None:
    h, m = int(hours), int(minutes)
    if m >= 60 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _days(spec: str) -> list[int] | None:
    """``mon``, ``mon-fri``, ``sat-sun`` (a range may wrap: ``fri-mon``)."""
    spec = spec.strip().lower()
    if spec == "daily":
        return list(range(7))
    first, _, last = spec.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        return None
    a, b = DAYS.index(first), DAYS.index(last or first)
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def _local_datetime(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


def _calendar(r: _Reader, name: str, node: yaml.Node) -> Calendar | None:
    field = f"calendars.{name}"
    keys = r.mapping(node, field, CALENDAR_KEYS)
    if not keys:
        return None
    zone = None
    if "time_zone" not in keys:
        r.fail(node, field, "time_zone is missing", hint="an IANA zone: Asia/Ho_Chi_Minh")
    else:
        zone = r.text(keys["time_zone"][1], f"{field}.time_zone")
        try:
            if zone is not None:
                ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            r.fail(
                keys["time_zone"][1],
                f"{field}.time_zone",
                f"unknown time zone {zone!r}",
                hint="an IANA zone: Europe/London, America/New_York, Asia/Ho_Chi_Minh",
            )
            zone = None
    weekly: dict[int, list[tuple[int, int]]] = {}
    if "hours" not in keys:
        r.fail(node, field, "hours is missing", hint='mon-fri: ["09:00-17:00"]')
    else:
        for day_spec, (day_node, spans_node) in r.mapping(
            keys["hours"][1], f"{field}.hours"
        ).items():
            path = f"{field}.hours.{day_spec}"
            days = _days(day_spec)
            if days is None:
                r.fail(
                    day_node,
                    path,
                    "not a weekday or range of weekdays",
                    hint="mon, tue, ..., sun, a range like mon-fri, or daily",
                )
                continue
            for span_node in r.sequence(spans_node, path):
                text = r.text(span_node, path)
                match = _SPAN.match(text or "")
                span = None
                if match:
                    start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
                    if start is not None and end is not None and start < 1440 and start != end:
                        span = (start, end)
                if span is None:
                    r.fail(
                        span_node,
                        path,
                        f"{text!r} is not a span of hours",
                        hint='"09:00-17:00"; overnight "22:00-06:00"; "00:00-24:00"',
                    )
                    continue
                for day in days:
                    weekly.setdefault(day, []).append(span)
    holidays: list[date] = []
    for holiday_node in (
        r.sequence(keys["holidays"][1], f"{field}.holidays") if "holidays" in keys else []
    ):
        text = r.text(holiday_node, f"{field}.holidays") or ""
        first_text, sep, last_text = text.partition("..")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if sep else first
        except ValueError:
            r.fail(
                holiday_node,
                f"{field}.holidays",
                f"{text!r} is not a date or date range",
                hint="2027-02-06 or 2027-02-05 .. 2027-02-10",
            )
            continue
        if last < first:
            r.fail(holiday_node, f"{field}.holidays", "the range ends before it starts")
        holidays += [first + timedelta(days=i) for i in range((last - first).days + 1)]
    opened: list[LocalSpan] = []
    closed: list[LocalSpan] = []
    for exc_node in (
        r.sequence(keys["exceptions"][1], f"{field}.exceptions") if "exceptions" in keys else []
    ):
        path = f"{field}.exceptions"
        entry = r.mapping(exc_node, path, ("open", "closed"))
        if len(entry) != 1:
            if entry:
                r.fail(exc_node, path, "one of open or closed per entry")
            continue
        ((kind, (_, span_node)),) = entry.items()
        text = r.text(span_node, f"{path}.{kind}") or ""
        start_text, _, end_text = text.partition("..")
        span_start, span_end = _local_datetime(start_text), _local_datetime(end_text)
        if span_start is None or span_end is None:
            r.fail(
                span_node,
                f"{path}.{kind}",
                f"{text!r} is not a span of local times",
                hint='"2026-12-24 13:00 .. 2026-12-24 17:30" (no offset: the zone\'s local time)',
            )
            continue
        if span_end <= span_start:
            r.fail(span_node, f"{path}.{kind}", "the span ends before it starts")
            continue
        (opened if kind == "open" else closed).append(LocalSpan(span_start, span_end))
    if zone is None or "hours" not in keys:
        return None
    try:
        return BusinessCalendar(name, zone, weekly, holidays, opened, closed)
    except CalendarError as exc:
        r.fail(
            keys["hours"][1],
            f"{field}.hours",
            str(exc),
            hint="give at least one weekday an open span",
        )
        return None


# --- levels -----------------------------------------------------------------------------


def _level(
    r: _Reader, name: str, node: yaml.Node, calendars: dict[str, Calendar | None]
) -> SlaLevel | None:
    field = f"levels.{name}"
    problems_before = len(r.problems)
    keys = r.mapping(node, field, LEVEL_KEYS)
    targets: dict[Metric, int] = {}
    if "targets" not in keys:
        r.fail(node, field, "targets is missing", hint="targets: {first_reply: 1h, resolution: 3d}")
    else:
        metrics = [m.value for m in Metric]
        for metric, (metric_node, value_node) in r.mapping(
            keys["targets"][1], f"{field}.targets"
        ).items():
            if metric not in metrics:
                r.fail(
                    metric_node,
                    f"{field}.targets.{metric}",
                    "unknown metric",
                    hint=f"metrics: {', '.join(metrics)}",
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
                lead = parse_duration_ms(text)
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
            if status is not None and status not in STATUSES:
                r.fail(
                    status_node,
                    f"{field}.pause_statuses",
                    f"unknown status {status!r}",
                    hint=f"statuses: {', '.join(STATUSES)}",
                )
            values.append(status or "")
        pause = frozenset(values)
    if calendar is None or len(r.problems) > problems_before:
        return None
    return SlaLevel(name, targets, ratio, lead, pause, calendar)


# --- rules ------------------------------------------------------------------------------

_DATE_OPS = ("before", "after")


def _operand(r: _Reader, ftype: FieldType, op: str, node: yaml.Node, path: str) -> Any:
    """The operand of ``op`` as the core wants it (instants and durations in ms)."""
    if op in _DATE_OPS:
        text = r.text(node, path)
        if text is None:
            return _INVALID
        try:
            return parse_timestamp_ms(text if text is None or "T" in text else f"{text}T00:00:00Z")
        except InvalidTimestamp:
            r.fail(
                node,
                path,
                f"{text!r} is not a date",
                hint="2026-01-01 or 2026-01-01T09:00:00+07:00",
            )
            return _INVALID
    if op == "within" or (op in ("greater", "less") and ftype is FieldType.DURATION):
        value = r.duration(node, path)
        return _INVALID if value is None else value
    if op in ("equals", "in") and ftype in (FieldType.TEXT, FieldType.LIST):
        # Text fields hold text: `queue: {equals: 42}` means the queue named "42".
        if isinstance(node, yaml.SequenceNode):
            return [item.value if isinstance(item, yaml.ScalarNode) else r.value(item)
                    for item in node.value]  # fmt: skip
        if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
            return node.value
    value = _plain(r.value(node))
    if op in ("greater", "less") and isinstance(value, str):
        try:  # a custom field compared with a duration: its value is taken as milliseconds
            return parse_duration_ms(value)
        except InvalidDuration:
            pass
    return value


_INVALID = object()


def _plain(value: Any) -> Any:
    """YAML dates and times as the text they were written as (custom fields hold text)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _condition(r: _Reader, node: yaml.Node, path: str) -> Condition | None:
    keys = r.mapping(node, path)
    if len(keys) != 1:
        if isinstance(node, yaml.MappingNode):
            r.fail(
                node,
                path,
                "one group or field per condition",
                hint="wrap several in all: [...] or any: [...]",
            )
        return None
    ((key, (key_node, value_node)),) = keys.items()
    here = f"{path}.{key}"
    if key in ("all", "any"):
        parts = [
            _condition(r, item, f"{here}[{i}]")
            for i, item in enumerate(r.sequence(value_node, here))
        ]
        if not parts:
            r.fail(value_node, here, f"{key} needs at least one condition")
        if any(p is None for p in parts) or not parts:
            return None
        return All(tuple(parts)) if key == "all" else AnyOf(tuple(parts))  # type: ignore[arg-type]
    if key == "not":
        inner = _condition(r, value_node, here)
        return None if inner is None else Not(inner)
    try:
        ftype = field_type(key)
    except RuleError as exc:
        r.fail(key_node, here, str(exc), hint=exc.hint)
        return None
    problems_before = len(r.problems)
    tests: list[Condition] = []
    for op, (op_node, operand_node) in r.mapping(value_node, here).items():
        operand = _operand(r, ftype, op, operand_node, f"{here}.{op}")
        if operand is _INVALID:
            continue
        test = Test(key, op, operand)
        try:
            compile_condition(test)
        except RuleError as exc:
            r.fail(op_node, f"{here}.{op}", str(exc), hint=exc.hint)
            continue
        tests.append(test)
    if not tests and len(r.problems) == problems_before:
        r.fail(value_node, here, "no operator", hint=f"operators: {', '.join(OPERATORS)}")
    if len(r.problems) > problems_before:
        return None
    return tests[0] if len(tests) == 1 else All(tuple(tests))


def _rules(r: _Reader, node: yaml.Node, levels: set[str]) -> list[Rule]:
    rules = []
    for i, rule_node in enumerate(r.sequence(node, "rules")):
        field = f"rules[{i}]"
        keys = r.mapping(rule_node, field, RULE_KEYS)
        if not keys:
            continue
        name = r.text(keys["name"][1], f"{field}.name") if "name" in keys else None
        if name is None:
            r.fail(
                rule_node, f"{field}.name", "every rule needs a name", hint="name: VIP customers"
            )
        else:
            field = f"rules[{i}] ({name})"
        condition = _condition(r, keys["when"][1], f"{field}.when") if "when" in keys else None
        level = r.text(keys["set_level"][1], f"{field}.set_level") if "set_level" in keys else None
        if level is not None and level not in levels:
            r.fail(
                keys["set_level"][1],
                f"{field}.set_level",
                f"no level {level!r}",
                hint=f"levels: {', '.join(sorted(levels))}",
            )
        stop = False
        if "stop" in keys:
            stop_value = r.value(keys["stop"][1])
            if not isinstance(stop_value, bool):
                r.fail(keys["stop"][1], f"{field}.stop", "expected true or false")
            stop = stop_value is True
        if "set_level" not in keys and not stop:
            r.fail(rule_node, field, "a rule does nothing without set_level or stop: true")
        if "when" in keys and condition is None:
            continue
        rules.append(Rule(name or "", condition, level, stop))
    return rules


# --- the document -----------------------------------------------------------------------


def _compose(text: str, r: _Reader) -> yaml.Node | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        r.problems.append(
            Problem(
                mark.line + 1 if mark else 1,
                "(syntax)",
                f"not valid YAML: {getattr(exc, 'problem', exc)}",
            )
        )
        return None
    if node is None:
        r.problems.append(
            Problem(
                1, "(document)", "the file is empty", hint="start from the README's policy example"
            )
        )
    return node


def policy_version_of(text: str) -> str:
    """The version of a document without ``version``: a digest of its text."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_policy(text: str, source: str) -> SlaPolicy:
    """The policy in ``text``; :class:`PolicyFileError` lists every problem."""
    r = _Reader()
    root = _compose(text, r)
    if root is None:
        raise PolicyFileError(source, r.problems)
    if not isinstance(root, yaml.MappingNode):
        r.fail(root, "(top level)", "expected a mapping (key: value lines)",
               hint="start from the README's policy example")  # fmt: skip
        raise PolicyFileError(source, r.problems)
    top = r.mapping(root, "", TOP_LEVEL)
    version = policy_version_of(text)
    if "version" in top:
        version = r.text(top["version"][1], "version") or version
    short_abandon = 5_000
    if "short_abandon" in top:
        short_abandon = r.duration(top["short_abandon"][1], "short_abandon") or short_abandon
    calendars: dict[str, Calendar | None] = {}
    if "calendars" in top:
        for name, (name_node, node) in r.mapping(top["calendars"][1], "calendars").items():
            if name == ALWAYS_OPEN:
                r.fail(name_node, f"calendars.{name}", f"{ALWAYS_OPEN} is built in (always open)")
                continue
            calendars[name] = _calendar(r, name, node)
    levels: dict[str, SlaLevel | None] = {}
    if "levels" not in top:
        r.fail(root, "levels", "no levels", hint="levels: {normal: {targets: {first_reply: 8h}}}")
    else:
        for name, (_, node) in r.mapping(top["levels"][1], "levels").items():
            levels[name] = _level(r, name, node, calendars)
    default = None
    if "default_level" not in top:
        r.fail(root, "default_level", "missing", hint="the level of a conversation no rule matches")
    else:
        default = r.text(top["default_level"][1], "default_level")
        if default is not None and default not in levels:
            r.fail(
                top["default_level"][1],
                "default_level",
                f"no level {default!r}",
                hint=f"levels: {', '.join(levels) or '(none defined)'}",
            )
    rules = _rules(r, top["rules"][1], set(levels)) if "rules" in top else []
    if r.problems:
        raise PolicyFileError(source, sorted(r.problems, key=lambda p: p.line))
    assert default is not None
    try:
        return SlaPolicy(
            version=version,
            levels={name: level for name, level in levels.items() if level is not None},
            rules=RuleSet(rules, default),
            short_abandon_ms=short_abandon,
        )
    except (PolicyError, RuleError) as exc:  # checked above; kept as a last line of defence
        raise PolicyFileError(source, [Problem(1, "(policy)", str(exc))]) from None


def load_policy(path: Path) -> SlaPolicy:
    """The policy in the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SlawatchError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_policy(text, str(path))


def summary(policy: SlaPolicy) -> str:
    """One line: what a valid policy holds."""
    calendars = {
        level.calendar.name
        for level in policy.levels.values()
        if isinstance(level.calendar, BusinessCalendar)
    }
    return (
        f"policy {policy.version}: {len(policy.levels)} levels, {len(policy.rules.rules)} rules, "
        f"{len(calendars)} business calendars in use, default level {policy.default_level}"
    )
