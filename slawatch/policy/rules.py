"""The ``rules`` section: ordered rules, each a condition on the conversation (``when``)
that sets a level (``set_level``) and may end the evaluation (``stop``).

A condition is a group (``all``, ``any``, ``not``) or one field with operators; every
operand is read here into what the core's :mod:`slawatch.core.rules` compiles. The
patterns of ``matches`` are compiled here, by RE2 (:mod:`slawatch.policy.regex`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import yaml

from slawatch.core.durations import InvalidDuration
from slawatch.core.rules import (
    OPERATORS,
    All,
    AnyOf,
    Condition,
    FieldType,
    Not,
    Rule,
    RuleError,
    Test,
    compile_condition,
    field_type,
)
from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms
from slawatch.policy.problems import PolicyReader, safe_duration_ms
from slawatch.policy.regex import RegexError
from slawatch.yamlfile import INVALID, NULL_TAG

#: The keys of one rule.
RULE_KEYS = ("name", "when", "set_level", "stop")
#: The groups that hold a list of conditions, and the one that negates a condition.
LIST_GROUPS = ("all", "any")
NOT = "not"
#: The operators whose operand is a date (or an instant).
DATE_OPERATORS = ("before", "after")


def _operand(r: PolicyReader, ftype: FieldType, op: str, node: yaml.Node, path: str) -> Any:
    """The operand of ``op`` as the core wants it (instants and durations in ms)."""
    if op in DATE_OPERATORS:
        text = r.text(node, path)
        if text is None:
            return INVALID
        try:
            return parse_timestamp_ms(text if text is None or "T" in text else f"{text}T00:00:00Z")
        except (InvalidTimestamp, ValueError, OverflowError):
            r.fail(
                node,
                path,
                f"{text!r} is not a date",
                hint="2026-01-01 or 2026-01-01T09:00:00+07:00",
            )
            return INVALID
    if op == "within" or (op in ("greater", "less") and ftype is FieldType.DURATION):
        value = r.duration(node, path)
        return INVALID if value is None else value
    if op == "matches":
        pattern = r.text(node, path)
        if pattern is None:
            return INVALID
        try:
            return r.regexes.compile(pattern)
        except RegexError as exc:
            r.fail(node, path, str(exc), hint=exc.hint)
            return INVALID
    # Text fields hold text: `queue: {equals: 42}` means the queue named "42".
    as_text = ftype in (FieldType.TEXT, FieldType.LIST)
    if op == "in" and isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            if not isinstance(item, yaml.ScalarNode) or item.tag == NULL_TAG:
                r.fail(
                    item, f"{path}[{i}]", "expected a single value", hint="in: [vip, enterprise]"
                )
                items.append(INVALID)
            else:
                items.append(item.value if as_text else _plain(r.value(item, f"{path}[{i}]")))
        return INVALID if any(item is INVALID for item in items) else items
    if op == "equals" and as_text and isinstance(node, yaml.ScalarNode) and node.tag != NULL_TAG:
        return node.value
    value = r.value(node, path)
    if value is INVALID:
        return INVALID
    value = _plain(value)
    if op in ("greater", "less") and isinstance(value, str):
        try:  # a custom field compared with a duration: its value is taken as milliseconds
            return safe_duration_ms(value)
        except InvalidDuration:
            pass
    return value


def _plain(value: Any) -> Any:
    """YAML dates and times as the text they were written as (custom fields hold text)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _condition(r: PolicyReader, node: yaml.Node, path: str) -> Condition | None:
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
    if key in LIST_GROUPS:
        parts = [
            _condition(r, item, f"{here}[{i}]")
            for i, item in enumerate(r.sequence(value_node, here))
        ]
        if not parts:
            r.fail(value_node, here, f"{key} needs at least one condition")
        if any(p is None for p in parts) or not parts:
            return None
        return All(tuple(parts)) if key == "all" else AnyOf(tuple(parts))  # type: ignore[arg-type]
    if key == NOT:
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
        if operand is INVALID:
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


def read_rules(r: PolicyReader, node: yaml.Node, levels: set[str]) -> list[Rule]:
    """The ``rules`` section, in order; a rule with problems is left out."""
    rules = []
    for i, rule_node in enumerate(r.sequence(node, "rules")):
        with r.guard(rule_node, f"rules[{i}]"):
            rule = _rule(r, i, rule_node, levels)
            if rule is not None:
                rules.append(rule)
    return rules


def _rule(r: PolicyReader, i: int, rule_node: yaml.Node, levels: set[str]) -> Rule | None:
    field = f"rules[{i}]"
    keys = r.mapping(rule_node, field, RULE_KEYS)
    if not keys:
        return None
    name = r.text(keys["name"][1], f"{field}.name") if "name" in keys else None
    if name is None:
        r.fail(rule_node, f"{field}.name", "every rule needs a name", hint="name: VIP customers")
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
        stop_value = r.value(keys["stop"][1], f"{field}.stop")
        if stop_value is not INVALID and not isinstance(stop_value, bool):
            r.fail(keys["stop"][1], f"{field}.stop", "expected true or false")
        stop = stop_value is True
    if "set_level" not in keys and not stop:
        r.fail(rule_node, field, "a rule does nothing without set_level or stop: true")
    if "when" in keys and condition is None:
        return None
    return Rule(name or "", condition, level, stop)
