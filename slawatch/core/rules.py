"""SLA rules: ordered conditions on a conversation's attributes that choose its SLA level.

A condition is a field test (``priority equals urgent``) or a group: ``all`` of several,
``any`` of several, ``not`` one. Rules are evaluated in order against the conversation's
current :class:`~slawatch.core.state.Context`; a matching rule sets the level (later matches
override earlier ones) and, with ``stop``, ends the evaluation. No match: the default.

Conditions are compiled once, when the policy loads, into plain functions of
``(context, now_ms)``; ``now_ms`` is the event time of the event being evaluated, so the
same events give the same levels live and in a replay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from slawatch.core.state import Context
from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms

Predicate = Callable[[Context, int], bool]


@runtime_checkable
class Matcher(Protocol):
    """A compiled regular expression, the operand of ``matches``.

    The core has no regex engine of its own: Python's ``re`` backtracks, and one pattern
    such as ``(a+)+$`` would stall the timers for as long as the text allows. The policy
    file compiles its patterns with RE2 (:mod:`slawatch.policy.regex`), which matches in
    time linear in the text, and hands the compiled pattern here."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None:
        """A match anywhere in ``text`` (anything but None), or None."""
        ...


class RuleError(ValueError):
    """A condition that cannot be evaluated; ``hint`` says what would be accepted."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class FieldType(Enum):
    TEXT = "text"
    LIST = "list of text"
    DATE = "date"
    FLAG = "true/false"
    DURATION = "duration"
    ANY = "custom value"


def _custom(ctx: Context, name: str) -> Any:
    for key, value in ctx.custom_fields:
        if key == name:
            return value
    return None


def _age(ctx: Context, now_ms: int) -> int | None:
    return None if ctx.last_message_ms is None else now_ms - ctx.last_message_ms


#: Field name -> (type, reader). Custom fields are ``custom_fields.<name>``.
FIELDS: dict[str, tuple[FieldType, Callable[[Context, int], Any]]] = {
    "kind": (FieldType.TEXT, lambda c, n: c.kind.value),
    "channel": (FieldType.TEXT, lambda c, n: c.channel),
    "status": (FieldType.TEXT, lambda c, n: c.status),
    "priority": (FieldType.TEXT, lambda c, n: c.priority),
    "department": (FieldType.TEXT, lambda c, n: c.department),
    "assignee": (FieldType.TEXT, lambda c, n: c.assignee),
    "assignee_status": (FieldType.TEXT, lambda c, n: c.assignee_status),
    "customer_group": (FieldType.TEXT, lambda c, n: c.customer_group),
    "queue": (FieldType.TEXT, lambda c, n: c.queue),
    "tenant": (FieldType.TEXT, lambda c, n: c.tenant),
    "referrer_url": (FieldType.TEXT, lambda c, n: c.referrer_url),
    "tags": (FieldType.LIST, lambda c, n: c.tags),
    "created": (FieldType.DATE, lambda c, n: c.created_ms),
    "changed": (FieldType.DATE, lambda c, n: c.changed_ms),
    "deleted": (FieldType.FLAG, lambda c, n: c.deleted),
    "created_via_invitation": (FieldType.FLAG, lambda c, n: c.created_via_invitation),
    "last_message.author": (FieldType.TEXT, lambda c, n: c.last_message_author),
    "last_message.age": (FieldType.DURATION, _age),
}
CUSTOM_PREFIX = "custom_fields."

#: Operator -> the field types it applies to.
OPERATORS: dict[str, frozenset[FieldType]] = {
    "equals": frozenset({FieldType.TEXT, FieldType.FLAG, FieldType.ANY}),
    "in": frozenset({FieldType.TEXT, FieldType.LIST, FieldType.ANY}),
    "contains": frozenset({FieldType.TEXT, FieldType.LIST, FieldType.ANY}),
    "starts_with": frozenset({FieldType.TEXT, FieldType.ANY}),
    "matches": frozenset({FieldType.TEXT, FieldType.ANY}),
    "exists": frozenset(FieldType),
    "before": frozenset({FieldType.DATE, FieldType.ANY}),
    "after": frozenset({FieldType.DATE, FieldType.ANY}),
    "within": frozenset({FieldType.DATE}),
    "greater": frozenset({FieldType.DURATION, FieldType.ANY}),
    "less": frozenset({FieldType.DURATION, FieldType.ANY}),
}


def field_type(name: str) -> FieldType:
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return FieldType.ANY
    try:
        return FIELDS[name][0]
    except KeyError:
        raise RuleError(
            f"unknown field {name!r}",
            hint=f"fields: {', '.join(FIELDS)}, {CUSTOM_PREFIX}<name>",
        ) from None


def _reader(name: str) -> Callable[[Context, int], Any]:
    if name.startswith(CUSTOM_PREFIX):
        custom = name[len(CUSTOM_PREFIX) :]
        return lambda c, n: _custom(c, custom)
    return FIELDS[name][1]


# --- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Test:
    """``field operator operand``; the operand's form depends on the operator:

    equals: a scalar; in: a list of scalars; contains, starts_with: text; matches: a
    compiled regular expression (a :class:`Matcher`, searched anywhere); exists:
    true or false; before, after: an instant (epoch ms); within: a duration (ms, the
    date lies in the last ``within`` before the event); greater, less: a number (ms for
    durations).
    """

    __test__ = False  # not a pytest test class, whatever its name

    field: str
    operator: str
    operand: Any


@dataclass(frozen=True, slots=True)
class All:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


Condition = Test | All | AnyOf | Not


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _instant(value: Any) -> int | None:
    """A date field's value, or a custom field holding an RFC 3339 text or epoch ms."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return parse_timestamp_ms(value)
        except InvalidTimestamp:
            return None
    return None


def _compile_test(test: Test) -> Predicate:
    ftype = field_type(test.field)
    op, operand = test.operator, test.operand
    if op not in OPERATORS:
        raise RuleError(f"unknown operator {op!r}", hint=f"operators: {', '.join(OPERATORS)}")
    if ftype not in OPERATORS[op]:
        usable = [name for name, types in OPERATORS.items() if ftype in types]
        raise RuleError(
            f"{op!r} does not apply to {test.field} ({ftype.value})",
            hint=f"use one of: {', '.join(usable)}",
        )
    read = _reader(test.field)
    if op == "exists":
        if not isinstance(operand, bool):
            raise RuleError("exists takes true or false", hint="exists: true")
        want = operand
        return lambda c, n: (read(c, n) not in (None, (), "")) is want
    if op == "equals":
        if not isinstance(operand, str | int | float | bool):
            raise RuleError("equals takes one value", hint="equals: urgent")
        if ftype is FieldType.FLAG and not isinstance(operand, bool):
            raise RuleError(f"{test.field} is true or false", hint="equals: true")
        flag = isinstance(operand, bool)
        # True == 1 in Python; a rule never means that.
        return lambda c, n: (v := read(c, n)) == operand and isinstance(v, bool) is flag
    if op == "in":
        if not isinstance(operand, list | tuple) or not operand:
            raise RuleError("in takes a non-empty list", hint="in: [vip, enterprise]")
        if not all(isinstance(v, str | int | float | bool) for v in operand):
            raise RuleError("in takes a list of single values", hint="in: [vip, enterprise]")
        values = frozenset(operand)
        if ftype is FieldType.LIST:
            return lambda c, n: not values.isdisjoint(read(c, n))
        flags = {isinstance(v, bool) for v in operand}
        return lambda c, n: (v := read(c, n)) in values and isinstance(v, bool) in flags
    if op in ("contains", "starts_with"):
        if not isinstance(operand, str):
            raise RuleError(f"{op} takes text", hint=f"{op}: billing")
        if ftype is FieldType.LIST:
            return lambda c, n: operand in read(c, n)
        if op == "contains":
            return lambda c, n: _text_op(read(c, n), lambda v: operand in v)
        return lambda c, n: _text_op(read(c, n), lambda v: v.startswith(operand))
    if op == "matches":
        if not isinstance(operand, Matcher):
            raise RuleError(
                "matches takes a compiled regular expression",
                hint="slawatch.policy.regex.compile_regex('^https://')",
            )
        search = operand.search
        return lambda c, n: _text_op(read(c, n), lambda v: search(v) is not None)
    if op in ("before", "after"):
        if isinstance(operand, bool) or not isinstance(operand, int):
            raise RuleError(f"{op} takes a date", hint=f"{op}: 2026-01-01T00:00:00Z")
        if op == "before":
            return lambda c, n: _lt(_instant(read(c, n)), operand)
        return lambda c, n: _lt(operand, _instant(read(c, n)))
    if op == "within":
        if isinstance(operand, bool) or not isinstance(operand, int) or operand <= 0:
            raise RuleError("within takes a duration", hint="within: 7d")
        return lambda c, n: _within(read(c, n), n, operand)
    # greater / less
    if isinstance(operand, bool) or not isinstance(operand, int | float):
        raise RuleError(f"{op} takes a number", hint=f"{op}: 30m (durations) or 1000")
    if op == "greater":
        return lambda c, n: _lt(operand, _number(read(c, n)))
    return lambda c, n: _lt(_number(read(c, n)), operand)


def _text_op(value: Any, check: Callable[[str], bool]) -> bool:
    return isinstance(value, str) and check(value)


def _lt(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and a < b


def _within(value: int | None, now_ms: int, window_ms: int) -> bool:
    return value is not None and now_ms - window_ms <= value <= now_ms


def compile_condition(condition: Condition) -> Predicate:
    """A function of ``(context, now_ms)``; raises :class:`RuleError` for a bad test."""
    if isinstance(condition, Test):
        return _compile_test(condition)
    if isinstance(condition, Not):
        inner = compile_condition(condition.condition)
        return lambda c, n: not inner(c, n)
    parts = tuple(compile_condition(part) for part in condition.conditions)
    return _all(parts) if isinstance(condition, All) else _any(parts)


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    # Plain loops: all() over a generator costs a generator per evaluation.
    if len(parts) == 1:
        return parts[0]

    def every(c: Context, n: int) -> bool:
        for part in parts:  # noqa: SIM110 - all() over a generator is the cost avoided here
            if not part(c, n):
                return False
        return True

    return every


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 1:
        return parts[0]

    def some(c: Context, n: int) -> bool:
        for part in parts:  # noqa: SIM110 - as above
            if part(c, n):
                return True
        return False

    return some


# --- rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """When ``condition`` holds (None: always), set ``level`` (if given); ``stop`` ends
    the evaluation."""

    name: str
    condition: Condition | None
    level: str | None
    stop: bool = False


class RuleSet:
    """Ordered rules, compiled."""

    __slots__ = ("_compiled", "default_level", "rules")

    def __init__(self, rules: Sequence[Rule], default_level: str) -> None:
        self.rules = tuple(rules)
        self.default_level = default_level
        self._compiled = tuple(
            (None if r.condition is None else compile_condition(r.condition), r.level, r.stop)
            for r in self.rules
        )

    def level_for(self, context: Context, now_ms: int) -> str:
        level = self.default_level
        for predicate, rule_level, stop in self._compiled:
            if predicate is None or predicate(context, now_ms):
                if rule_level is not None:
                    level = rule_level
                if stop:
                    break
        return level
