"""The SLA rules core (slacore/rules.py): every field, every operator, the compile-time
checks, groups and rule-set evaluation, on :class:`Context` objects built by hand.

The case tables below are checked for coverage: every field in ``FIELDS`` (and a custom
field) and every operator in ``OPERATORS`` must have at least one matching and one
non-matching case, so a field or operator added without a test fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from slawatch.core.keys import ConversationKind
from slawatch.core.rules import (
    FIELDS,
    OPERATORS,
    All,
    AnyOf,
    Condition,
    Not,
    Rule,
    RuleError,
    RuleSet,
    Test,
    compile_condition,
)
from slawatch.core.state import Context
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.policy.regex import compile_regex

S = 1000
M = 60 * S
H = 60 * M
D = 24 * H
NOW = 1_790_000_000_000  # the event time the predicates are evaluated at
CUSTOM = "custom_fields.<name>"


def ctx(**changes: Any) -> Context:
    kind = changes.pop("kind", ConversationKind.TICKET)
    custom = changes.pop("custom", None)
    if custom is not None:
        changes["custom_fields"] = tuple(sorted(custom.items()))
    return Context(kind=kind, conversation_id="T-1", **changes)


def holds(condition: Condition, context: Context, now_ms: int = NOW) -> bool:
    return compile_condition(condition)(context, now_ms)


@dataclass(frozen=True)
class Case:
    field: str
    op: str
    operand: Any
    context: dict[str, Any]
    expected: bool
    now_ms: int = NOW

    @property
    def covered_field(self) -> str:
        return CUSTOM if self.field.startswith("custom_fields.") else self.field

    def id(self) -> str:
        return f"{self.field}-{self.op}-{self.operand!r}-{self.context!r}->{self.expected}"


T = ConversationKind.TICKET
C = ConversationKind.CHAT
CALL = ConversationKind.CALL
RENEWAL = "2027-01-01T00:00:00+07:00"  # 2026-12-31T17:00:00Z
NEW_YEAR_UTC = parse_timestamp_ms("2027-01-01T00:00:00Z")

CASES = [
    # --- kind
    Case("kind", "equals", "chat", {"kind": C}, True),
    Case("kind", "equals", "chat", {"kind": T}, False),
    Case("kind", "in", ["call", "chat"], {"kind": CALL}, True),
    Case("kind", "in", ["call", "chat"], {"kind": T}, False),
    # --- channel
    Case("channel", "equals", "email", {"channel": "email"}, True),
    Case("channel", "equals", "email", {"channel": "chat"}, False),
    Case("channel", "equals", "email", {}, False),
    # --- status
    Case("status", "in", ["new", "open"], {"status": "open"}, True),
    Case("status", "in", ["new", "open"], {"status": "pending"}, False),
    Case("status", "in", ["new", "open"], {}, False),
    # --- priority (defaults to "normal")
    Case("priority", "equals", "urgent", {"priority": "urgent"}, True),
    Case("priority", "equals", "urgent", {}, False),
    Case("priority", "matches", "^(urgent|high)$", {"priority": "high"}, True),
    Case("priority", "matches", "^(urgent|high)$", {"priority": "higher"}, False),
    # --- department: starts_with and contains (substring) on text
    Case("department", "starts_with", "night", {"department": "night-desk"}, True),
    Case("department", "starts_with", "night", {"department": "day-night"}, False),
    Case("department", "starts_with", "night", {}, False),
    Case("department", "contains", "sales", {"department": "pre-sales-eu"}, True),
    Case("department", "contains", "sales", {"department": "support"}, False),
    Case("department", "contains", "sales", {}, False),
    # exists: None and "" do not exist
    Case("department", "exists", True, {"department": ""}, False),
    Case("department", "exists", False, {"department": ""}, True),
    # --- assignee
    Case("assignee", "exists", True, {"assignee": "ana"}, True),
    Case("assignee", "exists", True, {}, False),
    Case("assignee", "exists", False, {}, True),
    Case("assignee", "exists", False, {"assignee": "ana"}, False),
    # --- assignee_status
    Case("assignee_status", "equals", "offline", {"assignee_status": "offline"}, True),
    Case("assignee_status", "equals", "offline", {"assignee_status": "online"}, False),
    # --- customer_group
    Case("customer_group", "in", ["enterprise", "vip"], {"customer_group": "vip"}, True),
    Case("customer_group", "in", ["enterprise", "vip"], {"customer_group": "smb"}, False),
    Case("customer_group", "in", ["enterprise", "vip"], {}, False),
    # --- queue
    Case("queue", "equals", "uk-overnight", {"queue": "uk-overnight"}, True),
    Case("queue", "equals", "uk-overnight", {"queue": "uk-overnight-2"}, False),
    # --- tenant
    Case("tenant", "equals", "acme", {"tenant": "acme"}, True),
    Case("tenant", "equals", "acme", {}, False),
    # --- referrer_url: matches is re.search (anywhere), anchored only with ^ / $
    Case(
        "referrer_url",
        "matches",
        r"^https://example\.com/pricing",
        {"referrer_url": "https://example.com/pricing?plan=pro"},
        True,
    ),
    Case(
        "referrer_url",
        "matches",
        r"^https://example\.com/pricing",
        {"referrer_url": "http://mirror.test/?u=https://example.com/pricing"},
        False,
    ),
    Case("referrer_url", "matches", "pricing", {"referrer_url": "https://x.test/pricing"}, True),
    Case("referrer_url", "matches", "pricing", {}, False),
    # --- tags: contains is membership, in is any overlap
    Case("tags", "contains", "trial", {"tags": ("vip", "trial")}, True),
    Case("tags", "contains", "trial", {"tags": ("trial-expired",)}, False),
    Case("tags", "contains", "trial", {}, False),
    Case("tags", "in", ["a", "b"], {"tags": ("c", "b")}, True),
    Case("tags", "in", ["a", "b"], {"tags": ("c",)}, False),
    Case("tags", "in", ["a", "b"], {}, False),
    Case("tags", "exists", True, {"tags": ("x",)}, True),
    Case("tags", "exists", True, {"tags": ()}, False),
    Case("tags", "exists", False, {"tags": ()}, True),
    # --- created: before/after are strict, epoch-ms operands
    Case("created", "before", NOW, {"created_ms": NOW - 1}, True),
    Case("created", "before", NOW, {"created_ms": NOW}, False),
    Case("created", "before", NOW, {}, False),
    Case("created", "after", NOW, {"created_ms": NOW + 1}, True),
    Case("created", "after", NOW, {"created_ms": NOW}, False),
    Case("created", "after", NOW, {}, False),
    # within: inclusive at both ends, ``now_ms`` is the event time
    Case("created", "within", 7 * D, {"created_ms": NOW - 7 * D}, True),
    Case("created", "within", 7 * D, {"created_ms": NOW - 7 * D - 1}, False),
    Case("created", "within", 7 * D, {"created_ms": NOW}, True),
    Case("created", "within", 7 * D, {"created_ms": NOW + 1}, False),
    Case("created", "within", 7 * D, {}, False),
    Case("created", "exists", True, {"created_ms": NOW}, True),
    Case("created", "exists", True, {}, False),
    # --- changed
    Case("changed", "within", D, {"changed_ms": NOW - D}, True),
    Case("changed", "within", D, {"changed_ms": NOW - D - 1}, False),
    # the same instant, a later event time: no longer within
    Case("changed", "within", D, {"changed_ms": NOW - D}, False, now_ms=NOW + 1),
    Case("changed", "before", NOW, {"changed_ms": NOW - H}, True),
    Case("changed", "after", NOW, {"changed_ms": NOW - H}, False),
    # --- deleted
    Case("deleted", "equals", True, {"deleted": True}, True),
    Case("deleted", "equals", True, {}, False),
    Case("deleted", "equals", False, {}, True),
    # --- created_via_invitation
    Case("created_via_invitation", "equals", True, {"created_via_invitation": True}, True),
    Case("created_via_invitation", "equals", True, {}, False),
    # --- last_message.author
    Case("last_message.author", "equals", "agent", {"last_message_author": "agent"}, True),
    Case("last_message.author", "equals", "agent", {"last_message_author": "customer"}, False),
    Case("last_message.author", "equals", "agent", {}, False),
    # --- last_message.age: now_ms - last_message_ms, greater/less are strict
    Case("last_message.age", "greater", 7 * D, {"last_message_ms": NOW - 7 * D - 1}, True),
    Case("last_message.age", "greater", 7 * D, {"last_message_ms": NOW - 7 * D}, False),
    Case("last_message.age", "greater", 7 * D, {}, False),
    Case("last_message.age", "less", H, {"last_message_ms": NOW - H + 1}, True),
    Case("last_message.age", "less", H, {"last_message_ms": NOW - H}, False),
    Case("last_message.age", "less", H, {}, False),
    Case("last_message.age", "exists", True, {"last_message_ms": NOW}, True),
    Case("last_message.age", "exists", True, {}, False),
    # --- custom_fields.<name>
    Case("custom_fields.plan", "equals", "pro", {"custom": {"plan": "pro"}}, True),
    Case("custom_fields.plan", "equals", "pro", {"custom": {"plan": "free"}}, False),
    Case("custom_fields.plan", "equals", "pro", {"custom": {"other": "pro"}}, False),
    Case("custom_fields.seats", "equals", 5, {"custom": {"seats": 5}}, True),
    Case("custom_fields.seats", "equals", 5, {"custom": {"seats": "5"}}, False),
    Case("custom_fields.plan", "in", ["pro", "team"], {"custom": {"plan": "team"}}, True),
    Case("custom_fields.plan", "in", ["pro", "team"], {"custom": {"plan": "free"}}, False),
    Case("custom_fields.plan", "contains", "trial", {"custom": {"plan": "pro-trial"}}, True),
    Case("custom_fields.plan", "contains", "trial", {"custom": {"plan": "pro"}}, False),
    Case("custom_fields.plan", "contains", "1", {"custom": {"plan": 10}}, False),  # not text
    Case("custom_fields.plan", "starts_with", "pro", {"custom": {"plan": "pro-trial"}}, True),
    Case("custom_fields.plan", "starts_with", "pro", {"custom": {"plan": "a-pro"}}, False),
    Case("custom_fields.sku", "matches", r"\d{3}$", {"custom": {"sku": "AB-123"}}, True),
    Case("custom_fields.sku", "matches", r"\d{3}$", {"custom": {"sku": "AB-12"}}, False),
    Case("custom_fields.sku", "matches", r"\d", {"custom": {"sku": 123}}, False),  # not text
    Case("custom_fields.plan", "exists", True, {"custom": {"plan": "pro"}}, True),
    Case("custom_fields.plan", "exists", True, {"custom": {"plan": ""}}, False),
    Case("custom_fields.plan", "exists", True, {}, False),
    Case("custom_fields.plan", "exists", False, {}, True),
    Case("custom_fields.seats", "exists", True, {"custom": {"seats": 0}}, True),
    # a custom field holding an RFC 3339 text (or epoch ms) compares as an instant
    Case("custom_fields.renewal", "before", NEW_YEAR_UTC, {"custom": {"renewal": RENEWAL}}, True),
    Case("custom_fields.renewal", "after", NEW_YEAR_UTC, {"custom": {"renewal": RENEWAL}}, False),
    Case(
        "custom_fields.renewal",
        "after",
        NEW_YEAR_UTC - 7 * H - 1,
        {"custom": {"renewal": RENEWAL}},
        True,
    ),
    Case("custom_fields.renewal", "after", NOW - 1, {"custom": {"renewal": NOW}}, True),
    Case("custom_fields.renewal", "before", NOW, {"custom": {"renewal": "soon"}}, False),
    Case("custom_fields.renewal", "after", 0, {"custom": {"renewal": "soon"}}, False),
    Case("custom_fields.renewal", "before", NOW, {"custom": {"renewal": True}}, False),
    Case("custom_fields.renewal", "before", NOW, {}, False),
    # greater / less on numbers; text, booleans and missing values never match
    Case("custom_fields.value", "less", 1000, {"custom": {"value": 999}}, True),
    Case("custom_fields.value", "less", 1000, {"custom": {"value": 1000}}, False),
    Case("custom_fields.value", "less", 1000, {"custom": {"value": "999"}}, False),
    Case("custom_fields.value", "less", 1000, {"custom": {"value": True}}, False),
    Case("custom_fields.value", "less", 1000, {}, False),
    Case("custom_fields.value", "greater", 1000, {"custom": {"value": 1000.5}}, True),
    Case("custom_fields.value", "greater", 1000, {"custom": {"value": 1000}}, False),
    Case("custom_fields.value", "greater", 1000, {"custom": {"value": "lots"}}, False),
    Case("custom_fields.value", "greater", 0, {"custom": {"value": None}}, False),
    Case("custom_fields.value", "greater", 0.5, {"custom": {"value": 1}}, True),
]


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_case(case: Case) -> None:
    # The core takes patterns compiled (by RE2, in the policy layer), never text.
    operand = compile_regex(case.operand) if case.op == "matches" else case.operand
    test = Test(case.field, case.op, operand)
    assert holds(test, ctx(**case.context), case.now_ms) is case.expected


def _outcomes(key: str) -> dict[str, set[bool]]:
    seen: dict[str, set[bool]] = {}
    for case in CASES:
        name = case.covered_field if key == "field" else case.op
        seen.setdefault(name, set()).add(case.expected)
    return seen


def test_every_field_has_a_matching_and_a_non_matching_case() -> None:
    seen = _outcomes("field")
    assert set(seen) == set(FIELDS) | {CUSTOM}
    assert {name for name, outcomes in seen.items() if outcomes != {True, False}} == set()


def test_every_operator_has_a_matching_and_a_non_matching_case() -> None:
    seen = _outcomes("op")
    assert set(seen) == set(OPERATORS)
    assert {name for name, outcomes in seen.items() if outcomes != {True, False}} == set()


def test_within_takes_the_event_time_not_the_wall_clock() -> None:
    predicate = compile_condition(Test("changed", "within", H))
    context = ctx(changed_ms=NOW)
    assert predicate(context, NOW + H)
    assert not predicate(context, NOW + H + 1)
    assert not predicate(context, NOW - 1)  # a change after the event is not within


def test_last_message_age_grows_with_the_event_time() -> None:
    predicate = compile_condition(Test("last_message.age", "greater", H))
    context = ctx(last_message_ms=NOW)
    assert not predicate(context, NOW + H)
    assert predicate(context, NOW + H + 1)


# --- compile-time checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op", "operand", "message"),
    [
        ("colour", "equals", "red", "unknown field"),
        ("custom_fields.", "equals", "red", "unknown field"),
        ("last_message", "exists", True, "unknown field"),
        ("priority", "is", "urgent", "unknown operator"),
        ("priority", "before", NOW, "does not apply"),
        ("tags", "equals", "vip", "does not apply"),
        ("status", "within", D, "does not apply"),
        ("tags", "matches", "vip", "does not apply"),
        ("tags", "starts_with", "vip", "does not apply"),
        ("created", "greater", NOW, "does not apply"),
        ("created", "equals", NOW, "does not apply"),
        ("last_message.age", "before", NOW, "does not apply"),
        ("deleted", "contains", "x", "does not apply"),
        ("custom_fields.renewal", "within", D, "does not apply"),
        # the core compiles no pattern itself: Python's re would backtrack
        ("referrer_url", "matches", "^https://", "compiled regular expression"),
        ("referrer_url", "matches", 5, "compiled regular expression"),
        ("customer_group", "in", [], "non-empty list"),
        ("customer_group", "in", [["vip"]], "list of single values"),
        ("custom_fields.plan", "in", ["a", {"b": 1}], "list of single values"),
        ("tags", "in", [["vip"]], "list of single values"),
        ("customer_group", "in", "vip", "non-empty list"),
        ("tags", "in", (), "non-empty list"),
        ("assignee", "exists", "yes", "true or false"),
        ("assignee", "exists", 1, "true or false"),
        ("changed", "within", 0, "duration"),
        ("changed", "within", -D, "duration"),
        ("changed", "within", True, "duration"),
        ("changed", "within", "1d", "duration"),
        ("created", "before", "2026-01-01", "takes a date"),
        ("created", "after", True, "takes a date"),
        ("deleted", "equals", "true", "true or false"),
        ("priority", "equals", ["urgent"], "one value"),
        ("department", "contains", 5, "takes text"),
        ("department", "starts_with", None, "takes text"),
        ("last_message.age", "greater", "7d", "takes a number"),
        ("custom_fields.value", "less", True, "takes a number"),
    ],
)
def test_invalid_tests_raise_rule_error_with_a_hint(
    field: str, op: str, operand: Any, message: str
) -> None:
    with pytest.raises(RuleError) as caught:
        compile_condition(Test(field, op, operand))
    assert message in str(caught.value)
    assert caught.value.hint.strip()


def test_a_bad_test_inside_a_group_is_refused_at_compile_time() -> None:
    bad = All((Test("priority", "equals", "urgent"), Not(AnyOf((Test("tags", "equals", "x"),)))))
    with pytest.raises(RuleError, match="does not apply"):
        compile_condition(bad)


def test_an_unknown_field_hint_lists_the_fields() -> None:
    with pytest.raises(RuleError) as caught:
        compile_condition(Test("colour", "equals", "red"))
    for name in FIELDS:
        assert name in caught.value.hint
    assert "custom_fields." in caught.value.hint


def test_a_type_error_hint_lists_the_usable_operators() -> None:
    with pytest.raises(RuleError) as caught:
        compile_condition(Test("tags", "equals", "vip"))
    assert caught.value.hint == "use one of: in, contains, exists"


# --- groups ---------------------------------------------------------------------------------

URGENT = Test("priority", "equals", "urgent")
VIP = Test("customer_group", "equals", "vip")
CHAT = Test("kind", "equals", "chat")


@pytest.mark.parametrize(
    ("priority", "group", "expected"),
    [
        ("urgent", "vip", True),
        ("urgent", "smb", False),
        ("normal", "vip", False),
        ("normal", "smb", False),
    ],
)
def test_all(priority: str, group: str, expected: bool) -> None:
    context = ctx(priority=priority, customer_group=group)
    assert holds(All((URGENT, VIP)), context) is expected


@pytest.mark.parametrize(
    ("priority", "group", "expected"),
    [
        ("urgent", "vip", True),
        ("urgent", "smb", True),
        ("normal", "vip", True),
        ("normal", "smb", False),
    ],
)
def test_any(priority: str, group: str, expected: bool) -> None:
    context = ctx(priority=priority, customer_group=group)
    assert holds(AnyOf((URGENT, VIP)), context) is expected


def test_not() -> None:
    assert holds(Not(URGENT), ctx(priority="normal"))
    assert not holds(Not(URGENT), ctx(priority="urgent"))
    assert holds(Not(Not(URGENT)), ctx(priority="urgent"))
    # not of a missing value: "not tags contains escalated" holds without tags
    assert holds(Not(Test("tags", "contains", "escalated")), ctx())


@pytest.mark.parametrize(
    ("kind", "priority", "group", "tags", "expected"),
    [
        (ConversationKind.CHAT, "normal", "smb", (), True),  # chat, not escalated
        (ConversationKind.CHAT, "normal", "smb", ("escalated",), False),
        (ConversationKind.TICKET, "urgent", "vip", (), True),
        (ConversationKind.TICKET, "urgent", "smb", (), False),
        (ConversationKind.TICKET, "urgent", "vip", ("escalated",), False),
        (ConversationKind.TICKET, "normal", "vip", (), False),
    ],
)
def test_nested_groups(
    kind: ConversationKind, priority: str, group: str, tags: tuple[str, ...], expected: bool
) -> None:
    # (chat or (urgent and vip)) and not escalated
    condition = All((AnyOf((CHAT, All((URGENT, VIP)))), Not(Test("tags", "contains", "escalated"))))
    context = ctx(kind=kind, priority=priority, customer_group=group, tags=tags)
    assert holds(condition, context) is expected


# --- rule sets ------------------------------------------------------------------------------


def test_the_default_when_no_rule_matches() -> None:
    rules = RuleSet([Rule("urgent", URGENT, "gold"), Rule("vip", VIP, "silver")], "bronze")
    assert rules.level_for(ctx(), NOW) == "bronze"
    assert RuleSet([], "bronze").level_for(ctx(), NOW) == "bronze"


def test_a_later_match_overrides_an_earlier_one() -> None:
    rules = RuleSet([Rule("urgent", URGENT, "gold"), Rule("vip", VIP, "silver")], "bronze")
    assert rules.level_for(ctx(priority="urgent"), NOW) == "gold"
    assert rules.level_for(ctx(customer_group="vip"), NOW) == "silver"
    assert rules.level_for(ctx(priority="urgent", customer_group="vip"), NOW) == "silver"
    swapped = RuleSet([Rule("vip", VIP, "silver"), Rule("urgent", URGENT, "gold")], "bronze")
    assert swapped.level_for(ctx(priority="urgent", customer_group="vip"), NOW) == "gold"


def test_stop_ends_the_evaluation() -> None:
    rules = RuleSet(
        [Rule("urgent", URGENT, "gold", stop=True), Rule("vip", VIP, "silver")], "bronze"
    )
    assert rules.level_for(ctx(priority="urgent", customer_group="vip"), NOW) == "gold"
    # a stop on a rule that does not match stops nothing
    assert rules.level_for(ctx(customer_group="vip"), NOW) == "silver"


def test_a_rule_without_condition_always_matches() -> None:
    rules = RuleSet([Rule("urgent", URGENT, "gold"), Rule("everyone", None, "silver")], "bronze")
    assert rules.level_for(ctx(), NOW) == "silver"
    assert rules.level_for(ctx(priority="urgent"), NOW) == "silver"
    first = RuleSet([Rule("everyone", None, "silver"), Rule("urgent", URGENT, "gold")], "bronze")
    assert first.level_for(ctx(), NOW) == "silver"
    assert first.level_for(ctx(priority="urgent"), NOW) == "gold"


def test_a_stop_only_rule_keeps_the_level_chosen_so_far() -> None:
    rules = RuleSet(
        [
            Rule("urgent", URGENT, "gold"),
            Rule("chats stop here", CHAT, None, stop=True),
            Rule("everyone", None, "silver"),
        ],
        "bronze",
    )
    assert rules.level_for(ctx(kind=ConversationKind.CHAT, priority="urgent"), NOW) == "gold"
    assert rules.level_for(ctx(kind=ConversationKind.CHAT), NOW) == "bronze"
    assert rules.level_for(ctx(priority="urgent"), NOW) == "silver"
    assert rules.level_for(ctx(), NOW) == "silver"


def test_a_rule_set_compiles_its_conditions_when_built() -> None:
    with pytest.raises(RuleError):
        RuleSet([Rule("bad", Test("colour", "equals", "red"), "gold")], "bronze")


def test_the_rules_are_kept_in_order() -> None:
    rules = [Rule("a", URGENT, "gold"), Rule("b", None, None, stop=True)]
    rule_set = RuleSet(rules, "bronze")
    assert rule_set.rules == tuple(rules)
    assert rule_set.default_level == "bronze"


# --- suspected bugs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "operand", "value"),
    [("equals", 1, True), ("equals", 0, False), ("in", [1, 2], True)],
)
def test_a_boolean_custom_value_is_not_a_number(op: str, operand: Any, value: bool) -> None:
    context = ctx(custom={"flag": value})
    assert not holds(Test("custom_fields.flag", op, operand), context)
