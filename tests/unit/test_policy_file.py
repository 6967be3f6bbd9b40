"""The SLA policy file (streams/policy_file.py) and ``slawatch check-config``.

The example policy loads and matches the JSON Schema; business hours work through the
file; every class of error is reported with its line, its field path and (where the code
has one) a hint; several errors are all reported, sorted by line; the CLI prints them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from jsonschema import Draft202012Validator

from slawatch.cli.main import main
from slawatch.core.business_hours import BusinessCalendar
from slawatch.core.calendar import AlwaysOpen
from slawatch.core.keys import ConversationKind
from slawatch.core.kpi import QueueSettings
from slawatch.core.policy import builtin_policy
from slawatch.core.sla import Metric
from slawatch.core.state import Context
from slawatch.policy import (
    PolicyFileError,
    Problem,
    load_policy,
    parse_policy,
    policy_version_of,
    summary,
)
from slawatch.policy.schema import policy_json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.yaml"
README = ROOT / "README.md"
M = 60_000
H = 60 * M
D = 24 * H
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
LONDON = ZoneInfo("Europe/London")


def doc(*lines: str) -> str:
    """A YAML document, one argument per line: line n is argument n."""
    return "\n".join(lines) + "\n"


def problems(text: str) -> list[Problem]:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "p.yaml")
    return caught.value.problems


def only_problem(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def local_ms(zone: ZoneInfo, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=zone).timestamp() * 1000)  # type: ignore[misc]


class _EditorLoader(yaml.SafeLoader):
    """Reads YAML as an editor checking the JSON Schema does: 2027-01-01 stays text."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def schema_errors(text: str) -> list[str]:
    validator = Draft202012Validator(policy_json_schema())
    document = yaml.load(text, Loader=_EditorLoader)  # a SafeLoader subclass
    return [error.message for error in validator.iter_errors(document)]


# --- the example ----------------------------------------------------------------------------


def test_the_example_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.version == "2026-11-22.1"
    assert set(policy.levels) == {"vip", "normal", "overnight", "low-touch"}
    assert [rule.name for rule in policy.rules.rules] == [
        "enterprise VIP, urgent or high",
        "invited chats from the pricing page",
        "night desk",
        "old, quiet, low-value tickets",
        "recently changed trial accounts stay normal",
    ]
    assert policy.default_level == "normal"
    assert policy.short_abandon_ms == 5_000
    vip, normal = policy.levels["vip"], policy.levels["normal"]
    assert isinstance(vip.calendar, AlwaysOpen)
    assert vip.at_risk_lead_ms == 5 * M
    assert vip.target_ms(Metric.CALL_ANSWER) == 10_000
    assert isinstance(normal.calendar, BusinessCalendar)
    assert normal.calendar.name == "hanoi-office"
    assert normal.at_risk_ratio == 0.75
    assert normal.pause_statuses == frozenset({"pending", "on_hold"})
    assert policy.levels["low-touch"].pause_statuses == frozenset({"pending"})
    assert policy.levels["overnight"].target_ms(Metric.CHAT_REPLY) is None
    assert policy.queue_defaults == QueueSettings(20_000, 5_000, HANOI, 0.8)
    assert policy.queues == {
        "sales": QueueSettings(15_000, 5_000, HANOI, 0.9),
        "uk-overnight": QueueSettings(60_000, 10_000, LONDON, 0.8),
    }
    assert summary(policy) == (
        "policy 2026-11-22.1: 4 levels, 5 rules, 2 business calendars in use, default level "
        "normal, 2 queues with their own settings, 3 credit terms"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(policy_json_schema())


def test_the_example_validates_against_the_json_schema() -> None:
    assert schema_errors(EXAMPLE.read_text(encoding="utf-8")) == []


def test_the_schema_refuses_what_editors_should_flag() -> None:
    assert schema_errors(doc("default_level: normal", "colour: red"))  # and no levels
    bad_duration = doc("default_level: n", "levels:", "  n: {targets: {first_reply: 15}}")
    assert schema_errors(bad_duration)
    bad_field = doc(
        "default_level: n",
        "levels: {n: {targets: {first_reply: 8h}}}",
        "rules:",
        "  - {name: x, when: {colour: {equals: red}}, set_level: n}",
    )
    assert schema_errors(bad_field)


def _readme_policy_block() -> str | None:
    readme = README.read_text(encoding="utf-8")
    for block in re.findall(r"^```yaml\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE):
        if block.startswith("# An SLA policy that uses every feature"):
            return block
    return None


def test_the_readme_embeds_the_example_policy() -> None:
    # Guard: the README's policy example is examples/policy.yaml, verbatim.
    example = EXAMPLE.read_text(encoding="utf-8")
    assert example in README.read_text(encoding="utf-8")
    block = _readme_policy_block()
    assert block is not None, "README.md has no ```yaml block starting with the example"
    assert block == example
    assert parse_policy(block, "README.md").version == "2026-11-22.1"
    assert schema_errors(block) == []


def ticket(**changes: Any) -> Context:
    custom = changes.pop("custom", None)
    if custom is not None:
        changes["custom_fields"] = tuple(sorted(custom.items()))
    kind = changes.pop("kind", ConversationKind.TICKET)
    return Context(kind=kind, conversation_id="T-1", **changes)


NOW = local_ms(HANOI, 2026, 11, 20, 16, 0)


@pytest.mark.parametrize(
    ("context", "level"),
    [
        (ticket(), "normal"),
        (ticket(customer_group="enterprise", priority="urgent"), "vip"),
        (ticket(customer_group="vip", priority="high", deleted=True), "normal"),
        (ticket(customer_group="vip", priority="normal"), "normal"),
        (
            ticket(
                kind=ConversationKind.CHAT,
                channel="chat",
                created_via_invitation=True,
                referrer_url="https://example.com/pricing#plans",
            ),
            "vip",
        ),
        (ticket(channel="chat", referrer_url="https://example.com/pricing"), "normal"),
        (ticket(department="night-ops"), "overnight"),
        (ticket(assignee_status="offline"), "overnight"),
        (
            ticket(
                created_ms=local_ms(HANOI, 2025, 12, 1, 9, 0),
                last_message_author="agent",
                last_message_ms=NOW - 8 * D,
                custom={"contract_value": 500},
            ),
            "low-touch",
        ),
        (
            ticket(
                created_ms=local_ms(HANOI, 2025, 12, 1, 9, 0),
                last_message_author="agent",
                last_message_ms=NOW - 8 * D,
                tags=("escalated",),
                custom={"contract_value": 500},
            ),
            "normal",
        ),
        (
            ticket(
                department="night-ops",
                changed_ms=NOW - H,
                status="open",
                tags=("trial",),
                assignee="ana",
                tenant="acme",
                created_ms=local_ms(HANOI, 2025, 7, 1, 9, 0),
                custom={"plan": "pro-trial"},
            ),
            "normal",
        ),
    ],
)
def test_the_example_rules_choose_levels(context: Context, level: str) -> None:
    assert load_policy(EXAMPLE).level_for(context, NOW) == level


# --- business hours through the file ----------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "due"),
    [
        # Friday 16:00: 1.5 h Friday, Saturday morning 08:00-12:00 (4 h), Sunday closed,
        # Monday 08:00-10:30.
        ((2026, 11, 20, 16, 0), (2026, 11, 23, 10, 30)),
        # Thursday 10:00: 2 h to lunch, 13:00-17:30, Friday 08:00-09:30.
        ((2026, 11, 19, 10, 0), (2026, 11, 20, 9, 30)),
        # Tet 2027-02-05 .. 2027-02-10: Thursday 16:00 runs on Thursday 11 February.
        ((2027, 2, 4, 16, 0), (2027, 2, 11, 15, 30)),
        # The make-up Saturday 2027-02-13 is open 08:00-17:30, without lunch.
        ((2027, 2, 12, 16, 0), (2027, 2, 13, 14, 30)),
        # The year-end party closes 2026-12-24 from 13:00; 25 December is a working day.
        ((2026, 12, 24, 10, 0), (2026, 12, 25, 15, 0)),
        # 2027-01-01 is a holiday (a Friday): Thursday 16:00 has 1.5 h, Saturday 2 January
        # 4 h, Monday 4 January the last 2.5 h.
        ((2026, 12, 31, 16, 0), (2027, 1, 4, 10, 30)),
    ],
)
def test_hanoi_office_first_reply_due(start: tuple[int, ...], due: tuple[int, ...]) -> None:
    level = load_policy(EXAMPLE).levels["normal"]
    target = level.target_ms(Metric.FIRST_REPLY)
    assert target == 8 * H
    assert level.calendar.add(local_ms(HANOI, *start), target) == local_ms(HANOI, *due)


def test_hanoi_office_at_risk_and_elapsed() -> None:
    level = load_policy(EXAMPLE).levels["normal"]
    start = local_ms(HANOI, 2026, 11, 20, 16, 0)
    risk_after = level.at_risk_after_ms(8 * H)
    assert risk_after == 6 * H
    assert level.calendar.add(start, risk_after) == local_ms(HANOI, 2026, 11, 23, 8, 30)
    monday_noon = local_ms(HANOI, 2026, 11, 23, 12, 0)
    assert level.calendar.elapsed(start, monday_noon) == int(1.5 * H) + 4 * H + 4 * H


def test_london_nights_overnight_span() -> None:
    level = load_policy(EXAMPLE).levels["overnight"]
    assert level.target_ms(Metric.FIRST_REPLY) == 2 * H
    # Friday 05:00 is in Thursday's 22:00-06:00 shift: one hour then, one from Friday 22:00.
    start = local_ms(LONDON, 2026, 11, 20, 5, 0)
    assert level.calendar.add(start, 2 * H) == local_ms(LONDON, 2026, 11, 20, 23, 0)
    # Christmas (Friday) is a holiday: Thursday's shift stops at midnight, Friday's shift
    # opens only on Saturday from 00:00 (Saturday is not a holiday).
    start = local_ms(LONDON, 2026, 12, 24, 23, 0)
    assert level.calendar.add(start, 2 * H) == local_ms(LONDON, 2026, 12, 26, 1, 0)
    # Saturday 05:00 gets one hour; no shift starts on Sunday, Monday 28th is a holiday,
    # so the next open hour is Tuesday 29th 00:00-01:00 (the tail of Monday's shift).
    start = local_ms(LONDON, 2026, 12, 26, 5, 0)
    assert level.calendar.add(start, 2 * H) == local_ms(LONDON, 2026, 12, 29, 1, 0)


# --- every class of error -------------------------------------------------------------------

LEVELS = ("default_level: normal", "levels:", "  normal: {targets: {first_reply: 8h}}")
#: The same, in block style: keys of the level can follow on line 5.
LEVEL_BLOCK = ("default_level: normal", "levels:", "  normal:", "    targets: {first_reply: 8h}")
CALENDAR = (
    *LEVELS,
    "calendars:",
    "  office:",
    "    time_zone: Asia/Ho_Chi_Minh",
    "    hours:",
    '      mon-fri: ["09:00-17:00"]',
)  # lines 1-8
RULES = (
    *LEVELS,
    "  vip: {targets: {first_reply: 1h}}",
    "rules:",
    "  - name: VIP",
)  # lines 1-6


def rule_when(when: str) -> str:
    return doc(*RULES, f"    when: {when}", "    set_level: vip")  # the condition on line 7


HINT, NO_HINT = True, False

ERRORS = {
    "yaml syntax": (
        doc(*LEVELS, "   at_risk: 50%"),
        (4, "(syntax)", "not valid YAML", NO_HINT),
    ),
    "yaml unclosed flow": (
        doc("default_level: normal", "levels: {normal: {targets: {first_reply: 8h}}", "", ""),
        (5, "(syntax)", "not valid YAML", NO_HINT),
    ),
    "empty file": ("", (1, "(document)", "the file is empty", HINT)),
    "only comments": ("# nothing yet\n\n", (1, "(document)", "the file is empty", HINT)),
    "unknown top-level key": (doc(*LEVELS, "colour: red"), (4, "colour", "unknown key", HINT)),
    "duplicate key": (
        doc(*LEVELS, "default_level: normal"),
        (4, "default_level", "appears twice", NO_HINT),
    ),
    "duplicate level": (
        doc(*LEVELS, "  normal: {targets: {first_reply: 4h}}"),
        (4, "levels.normal", "appears twice", NO_HINT),
    ),
    "missing default_level": (doc(*LEVELS[1:]), (1, "default_level", "missing", HINT)),
    "default_level unknown": (
        doc("default_level: gold", *LEVELS[1:]),
        (1, "default_level", "no level 'gold'", HINT),
    ),
    "unknown calendar key": (
        doc(*CALENDAR, "    colour: red"),
        (9, "calendars.office.colour", "unknown key", HINT),
    ),
    "missing time_zone": (
        doc(*CALENDAR[:5], *CALENDAR[6:]),
        (6, "calendars.office", "time_zone is missing", HINT),
    ),
    "unknown time zone": (
        doc(*CALENDAR[:5], "    time_zone: Mars/Olympus_Mons", *CALENDAR[6:]),
        (6, "calendars.office.time_zone", "unknown time zone 'Mars/Olympus_Mons'", HINT),
    ),
    "missing hours": (doc(*CALENDAR[:6]), (6, "calendars.office", "hours is missing", HINT)),
    "bad weekday": (
        doc(*CALENDAR, '      monday: ["09:00-12:00"]'),
        (9, "calendars.office.hours.monday", "not a weekday", HINT),
    ),
    "bad weekday range": (
        doc(*CALENDAR, '      sat-sunday: ["09:00-12:00"]'),
        (9, "calendars.office.hours.sat-sunday", "not a weekday", HINT),
    ),
    "no open hours: hours {}": (
        doc(*CALENDAR[:6], "    hours: {}"),
        (7, "calendars.office.hours", "no open hours", HINT),
    ),
    "no open hours: empty spans": (
        doc(*CALENDAR[:6], "    hours: {mon-fri: [], sat: []}"),
        (7, "calendars.office.hours", "no open hours", HINT),
    ),
    "holiday not a date": (
        doc(*CALENDAR, "    holidays:", "      - 2027-02-30"),
        (10, "calendars.office.holidays", "'2027-02-30' is not a date", HINT),
    ),
    "holiday a word": (
        doc(*CALENDAR, "    holidays: [2027-01-01, Tet]"),
        (9, "calendars.office.holidays", "'Tet' is not a date", HINT),
    ),
    "holiday range reversed": (
        doc(*CALENDAR, "    holidays:", "      - 2027-02-10 .. 2027-02-05"),
        (10, "calendars.office.holidays", "ends before it starts", NO_HINT),
    ),
    "exception not a span": (
        doc(*CALENDAR, "    exceptions:", "      - closed: tomorrow afternoon"),
        (10, "calendars.office.exceptions.closed", "not a span of local times", HINT),
    ),
    "exception without end": (
        doc(*CALENDAR, "    exceptions:", "      - open: 2027-02-13 08:00"),
        (10, "calendars.office.exceptions.open", "not a span of local times", HINT),
    ),
    "exception with an offset": (
        doc(
            *CALENDAR,
            "    exceptions:",
            "      - closed: 2026-12-24T13:00+07:00 .. 2026-12-24T17:00+07:00",
        ),
        (10, "calendars.office.exceptions.closed", "not a span of local times", HINT),
    ),
    "exception reversed": (
        doc(*CALENDAR, "    exceptions:", "      - open: 2027-02-13 17:00 .. 2027-02-13 08:00"),
        (10, "calendars.office.exceptions.open", "ends before it starts", NO_HINT),
    ),
    "exception open and closed": (
        doc(
            *CALENDAR,
            "    exceptions:",
            "      - {open: 2027-02-13 08:00 .. 2027-02-13 12:00,"
            " closed: 2027-02-13 09:00 .. 2027-02-13 10:00}",
        ),
        (10, "calendars.office.exceptions", "one of open or closed", NO_HINT),
    ),
    "exception unknown kind": (
        doc(*CALENDAR, "    exceptions:", "      - shut: 2027-02-13 08:00 .. 2027-02-13 12:00"),
        (10, "calendars.office.exceptions.shut", "unknown key", HINT),
    ),
    "calendar named 24x7": (
        doc(
            *LEVELS,
            "calendars:",
            "  24x7:",
            "    time_zone: UTC",
            '    hours: {daily: ["00:00-24:00"]}',
        ),
        (5, "calendars.24x7", "built in", NO_HINT),
    ),
    "level without targets": (
        doc(*LEVELS[:2], "  normal:", "    at_risk: 50%"),
        (4, "levels.normal", "targets is missing", HINT),
    ),
    "level unknown key": (
        doc(*LEVEL_BLOCK, "    colour: red"),
        (5, "levels.normal.colour", "unknown key", HINT),
    ),
    "unknown metric": (
        doc(*LEVELS[:2], "  normal:", "    targets: {first_response: 1h}"),
        (4, "levels.normal.targets.first_response", "unknown metric", HINT),
    ),
    "unknown level calendar": (
        doc(*LEVEL_BLOCK, "    calendar: office"),
        (5, "levels.normal.calendar", "no calendar 'office'", HINT),
    ),
    "unknown pause status": (
        doc(*LEVEL_BLOCK, "    pause_statuses: [pending, waiting]"),
        (5, "levels.normal.pause_statuses", "unknown status 'waiting'", HINT),
    ),
    "bad short_abandon": (
        doc(*LEVELS, "short_abandon: 5"),
        (4, "short_abandon", "not a duration", HINT),
    ),
    "rule without name": (
        doc(*RULES[:5], "  - when: {priority: {equals: urgent}}", "    set_level: vip"),
        (6, "rules[0].name", "every rule needs a name", HINT),
    ),
    "rule that does nothing": (
        doc(*RULES, "    when: {priority: {equals: urgent}}"),
        (6, "rules[0] (VIP)", "without set_level or stop", NO_HINT),
    ),
    "rule with stop false only": (
        doc(*RULES, "    stop: false"),
        (6, "rules[0] (VIP)", "without set_level or stop", NO_HINT),
    ),
    "rule unknown key": (
        doc(*RULES, "    set_level: vip", "    colour: red"),
        (8, "rules[0].colour", "unknown key", HINT),
    ),
    "rule sets unknown level": (
        doc(*RULES, "    set_level: gold"),
        (7, "rules[0] (VIP).set_level", "no level 'gold'", HINT),
    ),
    "rule stop not a boolean (text)": (
        doc(*RULES, "    set_level: vip", '    stop: "yes"'),
        (8, "rules[0] (VIP).stop", "expected true or false", NO_HINT),
    ),
    "rule stop not a boolean (number)": (
        doc(*RULES, "    set_level: vip", "    stop: 1"),
        (8, "rules[0] (VIP).stop", "expected true or false", NO_HINT),
    ),
    "unknown field": (
        rule_when("{colour: {equals: red}}"),
        (7, "rules[0] (VIP).when.colour", "unknown field 'colour'", HINT),
    ),
    "unknown operator": (
        rule_when("{priority: {is: urgent}}"),
        (7, "rules[0] (VIP).when.priority.is", "unknown operator 'is'", HINT),
    ),
    "no operator": (
        rule_when("{priority: {}}"),
        (7, "rules[0] (VIP).when.priority", "no operator", HINT),
    ),
    "operator not for text (before)": (
        rule_when("{priority: {before: 2026-01-01}}"),
        (7, "rules[0] (VIP).when.priority.before", "does not apply", HINT),
    ),
    "operator not for a list (equals)": (
        rule_when("{tags: {equals: vip}}"),
        (7, "rules[0] (VIP).when.tags.equals", "does not apply", HINT),
    ),
    "operator not for text (within)": (
        rule_when("{status: {within: 1d}}"),
        (7, "rules[0] (VIP).when.status.within", "does not apply", HINT),
    ),
    "bad regex": (
        rule_when("{referrer_url: {matches: '('}}"),
        (7, "rules[0] (VIP).when.referrer_url.matches", "bad regular expression", HINT),
    ),
    "bad date operand": (
        rule_when("{created: {before: yesterday}}"),
        (7, "rules[0] (VIP).when.created.before", "'yesterday' is not a date", HINT),
    ),
    "bad date operand (no such day)": (
        rule_when("{created: {after: 2026-02-30}}"),
        (7, "rules[0] (VIP).when.created.after", "is not a date", HINT),
    ),
    "bad within duration": (
        rule_when("{changed: {within: 7 days}}"),
        (7, "rules[0] (VIP).when.changed.within", "not a duration", HINT),
    ),
    "within zero": (
        rule_when("{changed: {within: 0s}}"),
        (7, "rules[0] (VIP).when.changed.within", "longer than zero", HINT),
    ),
    "bad age duration": (
        rule_when("{last_message.age: {greater: 7}}"),
        (7, "rules[0] (VIP).when.last_message.age.greater", "not a duration", HINT),
    ),
    "equals on a flag with text": (
        rule_when("{deleted: {equals: 'no'}}"),
        (7, "rules[0] (VIP).when.deleted.equals", "true or false", HINT),
    ),
    "in without a list": (
        rule_when("{customer_group: {in: vip}}"),
        (7, "rules[0] (VIP).when.customer_group.in", "non-empty list", HINT),
    ),
    "exists with text": (
        rule_when("{assignee: {exists: someone}}"),
        (7, "rules[0] (VIP).when.assignee.exists", "true or false", HINT),
    ),
    "two keys in one condition": (
        rule_when("{priority: {equals: urgent}, channel: {equals: chat}}"),
        (7, "rules[0] (VIP).when", "one group or field per condition", HINT),
    ),
    "empty all": (
        rule_when("{all: []}"),
        (7, "rules[0] (VIP).when.all", "all needs at least one condition", NO_HINT),
    ),
    "empty any": (
        rule_when("{any: []}"),
        (7, "rules[0] (VIP).when.any", "any needs at least one condition", NO_HINT),
    ),
    "condition not a mapping": (
        rule_when("priority equals urgent"),
        (7, "rules[0] (VIP).when", "expected a mapping", NO_HINT),
    ),
    "nested path": (
        doc(
            *RULES,
            "    when:",
            "      any:",
            "        - priority: {equals: urgent}",
            "        - not: {tags: {matches: vip}}",
            "    set_level: vip",
        ),
        (10, "rules[0] (VIP).when.any[1].not.tags.matches", "does not apply", HINT),
    ),
}

for _text in ("9-5", "25:00-26:00", "09:00-09:00", "24:00-06:00", "12:60-13:00", "nine to five"):
    ERRORS[f"bad span {_text}"] = (
        doc(*CALENDAR, f'      sat: ["{_text}"]'),
        (9, "calendars.office.hours.sat", f"'{_text}' is not a span of hours", HINT),
    )
for _text in ("15 minutes", "0s", "15", "-5m", "1w"):
    ERRORS[f"bad duration {_text}"] = (
        doc(*LEVELS[:2], "  normal:", f"    targets: {{first_reply: {_text}}}"),
        (4, "levels.normal.targets.first_reply", repr(_text), HINT),
    )
for _text, _hint in (("150%", NO_HINT), ("0%", NO_HINT), ("soon", HINT), ("75", HINT)):
    ERRORS[f"bad at_risk {_text}"] = (
        doc(*LEVEL_BLOCK, f"    at_risk: {_text}"),
        (5, "levels.normal.at_risk", "%" if not _hint else "neither a percent", _hint),
    )


@pytest.mark.parametrize(("text", "expected"), ERRORS.values(), ids=ERRORS.keys())
def test_each_error(text: str, expected: tuple[int, str, str, bool]) -> None:
    line, field, message, has_hint = expected
    problem = only_problem(text)
    assert (problem.line, problem.field) == (line, field), problem
    assert message in problem.message
    if has_hint:
        assert problem.hint.strip(), problem
    else:
        assert problem.hint == "", problem


def test_an_unknown_metric_hint_lists_the_metrics() -> None:
    problem = only_problem(doc(*LEVELS[:2], "  normal:", "    targets: {first_response: 1h}"))
    assert problem.hint == ("metrics: first_reply, next_reply, chat_reply, call_answer, resolution")


def test_missing_levels() -> None:
    found = problems(doc("default_level: normal"))
    assert [(p.line, p.field) for p in found] == [(1, "levels"), (1, "default_level")]
    assert "no levels" in found[0].message and found[0].hint
    assert found[1].message == "no level 'normal'"
    assert found[1].hint == "levels: (none defined)"


def test_top_level_not_a_mapping() -> None:
    (found,) = problems(doc("- normal", "- vip"))
    assert (found.line, found.field) == (1, "(top level)")
    assert found.message == "expected a mapping (key: value lines)" and found.hint


def test_top_level_not_a_mapping_names_a_field() -> None:
    found = problems(doc("- normal", "- vip"))
    assert found[0].field != ""


def test_the_hint_names_what_would_be_accepted() -> None:
    assert only_problem(doc("default_level: gold", *LEVELS[1:])).hint == "levels: normal"
    calendar = only_problem(doc(*LEVEL_BLOCK, "    calendar: office"))
    assert calendar.hint == "calendars: 24x7"
    level = only_problem(doc(*RULES, "    set_level: gold")).hint
    assert level == "levels: normal, vip"


def test_a_calendar_used_by_a_level_may_be_24x7_or_defined() -> None:
    text = doc(CALENDAR[0], *CALENDAR[3:], *LEVEL_BLOCK[1:], "    calendar: office")
    policy = parse_policy(text, "p.yaml")
    assert policy.levels["normal"].calendar.name == "office"  # type: ignore[attr-defined]
    policy = parse_policy(doc(*LEVEL_BLOCK, "    calendar: 24x7"), "p.yaml")
    assert isinstance(policy.levels["normal"].calendar, AlwaysOpen)


def test_a_broken_calendar_is_reported_once_not_again_by_its_levels() -> None:
    text = doc(
        "default_level: normal",
        "calendars:",
        "  office:",
        "    time_zone: Mars/Olympus_Mons",
        '    hours: {mon-fri: ["09:00-17:00"]}',
        "levels:",
        "  normal:",
        "    targets: {first_reply: 8h}",
        "    calendar: office",
    )
    assert [(p.line, p.field) for p in problems(text)] == [(4, "calendars.office.time_zone")]


# --- several errors at once -----------------------------------------------------------------

SEVERAL = doc(
    "default_level: gold",  # 1: unknown level
    "colour: red",  # 2: unknown key
    "calendars:",
    "  office:",
    "    time_zone: Mars/Olympus_Mons",  # 5: unknown zone
    '    hours: {mon-fri: ["9-5"], sat: ["08:00-12:00"]}',  # 6: bad span
    "levels:",
    "  normal:",
    "    targets: {first_reply: 15 minutes, first_response: 1h}",  # 9: two problems
    "    at_risk: soon",  # 10
    "    calendar: office",
    "rules:",
    "  - name: VIP",
    "    when:",
    "      all:",
    "        - priority: {is: urgent}",  # 16
    "        - referrer_url: {matches: '('}",  # 17
    "    set_level: vip",  # 18: unknown level
    "    stop: maybe",  # 19
    "  - when: {tags: {contains: vip}}",  # 20: no name, does nothing
)


def test_several_errors_are_all_reported_sorted_by_line() -> None:
    found = problems(SEVERAL)
    assert [(p.line, p.field) for p in found] == [
        (1, "default_level"),
        (2, "colour"),
        (5, "calendars.office.time_zone"),
        (6, "calendars.office.hours.mon-fri"),
        (9, "levels.normal.targets.first_reply"),
        (9, "levels.normal.targets.first_response"),
        (10, "levels.normal.at_risk"),
        (16, "rules[0] (VIP).when.all[0].priority.is"),
        (17, "rules[0] (VIP).when.all[1].referrer_url.matches"),
        (18, "rules[0] (VIP).set_level"),
        (19, "rules[0] (VIP).stop"),
        (20, "rules[1].name"),
        (20, "rules[1]"),
    ]
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(SEVERAL, "p.yaml")
    assert str(caught.value).startswith("p.yaml:1: default_level: no level 'gold'")
    assert str(caught.value).endswith("(and 12 more: slawatch check-config)")
    lines = caught.value.lines()
    assert len(lines) == 13
    assert lines[1] == "p.yaml:2: colour: unknown key (hint: known keys: " + (
        "version, description, default_level, short_abandon, calendars, levels, rules, "
        "queue_defaults, queues, credits)"
    )


# --- the command ----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_config_on_a_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check-config", str(EXAMPLE))
    assert (code, err) == (0, "")
    assert out == (
        f"{EXAMPLE}: valid; policy 2026-11-22.1: 4 levels, 5 rules, "
        "2 business calendars in use, default level normal, 2 queues with their own settings, "
        "3 credit terms\n"
    )


def test_check_config_lists_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(SEVERAL, encoding="utf-8")
    code, out, err = run(capsys, "check-config", str(path))
    assert (code, out) == (1, "")
    assert "Traceback" not in err
    lines = err.splitlines()
    expected = [p.render(str(path)) for p in problems(SEVERAL)]
    assert lines == [*expected, f"slawatch: {path}: 13 problems"]
    pattern = re.compile(rf"^{re.escape(str(path))}:\d+: \S[^:]*: .+$")
    assert all(pattern.match(line) for line in lines[:-1]), lines
    assert (
        f"{path}:5: calendars.office.time_zone: unknown time zone 'Mars/Olympus_Mons' (hint: "
        in err
    )
    assert f"{path}:19: rules[0] (VIP).stop: expected true or false\n" in err


def test_check_config_on_one_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(doc(*LEVEL_BLOCK, "    at_risk: soon"), encoding="utf-8")
    code, _, err = run(capsys, "check-config", str(path))
    assert code == 1
    assert err == (
        f"{path}:5: levels.normal.at_risk: 'soon' is neither a percent nor a duration "
        "(hint: 75% (of the target elapsed) or 10m (before due))\n"
        f"slawatch: {path}: 1 problem\n"
    )


def test_check_config_on_a_yaml_syntax_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("levels: [\n", encoding="utf-8")
    code, _, err = run(capsys, "check-config", str(path))
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"{path}:2: (syntax): not valid YAML")


def test_check_config_on_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    code, out, err = run(capsys, "check-config", str(path))
    assert (code, out) == (1, "")
    assert "Traceback" not in err
    assert str(path) in err and "cannot read" in err


def test_check_config_on_a_missing_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "nowhere.yaml"
    code, _, err = run(capsys, "check-config", str(path))
    assert code == 1
    assert err.count("\n") == 1, err


# --- version --------------------------------------------------------------------------------


def test_an_explicit_version_is_kept() -> None:
    policy = parse_policy(doc('version: "2027.1"', *LEVELS), "p.yaml")
    assert policy.version == "2027.1"
    assert parse_policy(doc("version: 7", *LEVELS), "p.yaml").version == "7"


def test_without_a_version_it_is_a_digest_of_the_text() -> None:
    text = doc(*LEVELS)
    version = parse_policy(text, "p.yaml").version
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", version)
    assert version == policy_version_of(text)
    assert parse_policy(text, "other.yaml").version == version  # not the file name
    changed = parse_policy(text + "# reviewed\n", "p.yaml").version
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", changed)
    assert changed != version
    retargeted = parse_policy(text.replace("8h", "4h"), "p.yaml").version
    assert retargeted not in (version, changed)


# --- suspected bugs -------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["{}", "{all: [{}]}", "{any: [{priority: {equals: high}}, {}]}"])
def test_an_empty_condition_is_reported(when: str) -> None:
    text = rule_when(when)
    try:
        policy = parse_policy(text, "p.yaml")
    except PolicyFileError as exc:
        assert exc.problems[0].line == 7
        return
    # Not reported: then the rule must at least be there.
    assert [rule.name for rule in policy.rules.rules] == ["VIP"]


@pytest.mark.parametrize(
    ("when", "context"),
    [
        ("{queue: {equals: 42}}", ticket(queue="42")),
        ("{department: {in: [100, 200]}}", ticket(department="200")),
        ("{custom_fields.renewal: {in: [2027-01-01]}}", ticket(custom={"renewal": "2027-01-01"})),
    ],
)
def test_a_yaml_typed_operand_matches_the_text_or_is_refused(when: str, context: Context) -> None:
    text = rule_when(when)
    try:
        policy = parse_policy(text, "p.yaml")
    except PolicyFileError:
        return  # refused: acceptable
    assert policy.level_for(context, NOW) == "vip"


# --- call queues: what the call-centre KPIs are measured against --------------------------

NEW_YORK = ZoneInfo("America/New_York")
QUEUES = doc(
    *LEVELS,  # lines 1-3
    "short_abandon: 3s",
    "queue_defaults: {target: 20s, goal: 80%, timezone: Europe/London}",  # 5
    "queues:",
    "  sales:   {target: 15s, goal: 0.75}",  # 7
    "  support: {target: 60s, goal: 90%, timezone: America/New_York, short_abandon: 10s}",
    "  misc: {}",  # 9
)


def test_queues_inherit_what_they_leave_out_from_queue_defaults() -> None:
    policy = parse_policy(QUEUES, "p.yaml")
    # queue_defaults' short_abandon is the policy's.
    assert policy.queue_defaults == QueueSettings(20_000, 3_000, LONDON, 0.8)
    assert policy.queues == {
        "sales": QueueSettings(15_000, 3_000, LONDON, 0.75),
        "support": QueueSettings(60_000, 10_000, NEW_YORK, 0.9),
        "misc": QueueSettings(20_000, 3_000, LONDON, 0.8),
    }
    assert policy.queue_settings("support") is policy.queues["support"]
    assert policy.queue_settings("billing") is policy.queue_defaults
    assert policy.queue_settings(None) is policy.queue_defaults
    assert summary(policy).endswith("default level normal, 3 queues with their own settings")


def test_queue_defaults_leave_out_what_is_built_in() -> None:
    policy = parse_policy(doc(*LEVELS, "queue_defaults: {goal: 95%}"), "p.yaml")
    assert policy.queue_defaults == QueueSettings(20_000, 5_000, UTC, 0.95)
    text = doc(*LEVELS, "short_abandon: 2s", "queues: {vip: {target: 5s}}")
    policy = parse_policy(text, "p.yaml")
    assert policy.queue_defaults == QueueSettings(20_000, 2_000, UTC, 0.8)
    assert policy.queues == {"vip": QueueSettings(5_000, 2_000, UTC, 0.8)}


def test_a_policy_without_queues_measures_every_queue_against_80_20() -> None:
    policy = parse_policy(doc(*LEVELS, "short_abandon: 7s"), "p.yaml")
    assert policy.queues == {}
    assert policy.queue_settings("sales") == QueueSettings(20_000, 7_000, UTC, 0.8)
    assert summary(policy).endswith("default level normal")


def test_the_builtin_policy_measures_every_queue_against_80_20_in_utc() -> None:
    policy = builtin_policy()
    assert policy.queues == {}
    assert policy.queue_defaults == QueueSettings(
        target_ms=20_000, short_abandon_ms=policy.short_abandon_ms, tz=UTC, goal=0.8
    )
    assert policy.queue_settings("general") is policy.queue_defaults


@pytest.mark.parametrize(
    ("goal", "share"),
    [("80%", 0.8), ("80 %", 0.8), ('"12.5%"', 0.125), ("100%", 1.0), ("0.8", 0.8),
     (".8", 0.8), ("1", 1.0), ('"0.25"', 0.25)],
)  # fmt: skip
def test_a_goal_is_a_percent_or_a_share(goal: str, share: float) -> None:
    policy = parse_policy(doc(*LEVELS, f"queues: {{q: {{goal: {goal}}}}}"), "p.yaml")
    assert policy.queues["q"].goal == pytest.approx(share)


def test_scaled_scales_the_queue_targets_and_keeps_goal_and_zone() -> None:
    policy = parse_policy(QUEUES, "p.yaml").scaled(10)
    assert policy.queue_defaults == QueueSettings(2_000, 300, LONDON, 0.8)
    assert policy.queues["support"] == QueueSettings(6_000, 1_000, NEW_YORK, 0.9)
    assert policy.queues["sales"] == QueueSettings(1_500, 300, LONDON, 0.75)
    builtin = builtin_policy().scaled(300)
    assert builtin.queue_defaults == QueueSettings(67, 17, UTC, 0.8)
    assert builtin.queue_defaults.short_abandon_ms == builtin.short_abandon_ms


def queue_line(entry: str) -> str:
    return doc(*LEVELS, "queues:", f"  sales: {entry}")  # the queue on line 5


QUEUE_ERRORS = {
    "unknown queue key": (queue_line("{target: 20s, colour: red}"), (5, "queues.sales.colour",
                          "unknown key", HINT)),
    "unknown queue_defaults key": (
        doc(*LEVELS, "queue_defaults:", "  target: 20s", "  colour: red"),
        (6, "queue_defaults.colour", "unknown key", HINT),
    ),
    "queue_defaults not a mapping": (
        doc(*LEVELS, "queue_defaults: 20s"),
        (4, "queue_defaults", "expected a mapping", NO_HINT),
    ),
    "queues not a mapping": (
        doc(*LEVELS, "queues: [sales]"),
        (4, "queues", "expected a mapping", NO_HINT),
    ),
    "queue not a mapping": (queue_line("20s"), (5, "queues.sales", "expected a mapping", NO_HINT)),
    "duplicate queue": (
        doc(*LEVELS, "queues:", "  sales: {}", "  sales: {goal: 90%}"),
        (6, "queues.sales", "appears twice", NO_HINT),
    ),
    "queue name too long": (
        doc(*LEVELS, "queues:", f"  {'q' * 129}: {{}}"),
        (5, f"queues.{'q' * 129}", "a name of 129 characters", HINT),
    ),
    "bad target": (queue_line("{target: 20}"), (5, "queues.sales.target", "'20'", HINT)),
    "zero target": (
        doc(*LEVELS, "queue_defaults: {target: 0s}"),
        (4, "queue_defaults.target", "longer than zero", HINT),
    ),
    "bad short_abandon": (
        queue_line("{short_abandon: soon}"),
        (5, "queues.sales.short_abandon", "'soon'", HINT),
    ),
    "unknown timezone": (
        queue_line("{timezone: Mars/Olympus_Mons}"),
        (5, "queues.sales.timezone", "unknown time zone 'Mars/Olympus_Mons'", HINT),
    ),
    "timezone not a value": (
        queue_line("{timezone: [UTC]}"),
        (5, "queues.sales.timezone", "expected a single value", NO_HINT),
    ),
    "goal a list": (queue_line("{goal: [80%]}"), (5, "queues.sales.goal", "expected a single",
                    NO_HINT)),
    "goal more than 1": (queue_line("{goal: 80}"), (5, "queues.sales.goal", "more than 1", HINT)),
}  # fmt: skip
for _text in ("0%", "0", "0.0", "150%", "100.5%"):
    QUEUE_ERRORS[f"goal {_text} out of range"] = (
        queue_line(f"{{goal: {_text}}}"),
        (5, "queues.sales.goal", "out of range", HINT),
    )
for _text in ("junk", "-10%", "80 percent", "true", "nan", "1e-1", "0x1"):
    QUEUE_ERRORS[f"goal {_text}"] = (
        doc(*LEVELS, "queue_defaults:", f"  goal: {_text}"),
        (5, "queue_defaults.goal", "neither a percent nor a share", HINT),
    )


@pytest.mark.parametrize(("text", "expected"), QUEUE_ERRORS.values(), ids=QUEUE_ERRORS.keys())
def test_each_queue_error(text: str, expected: tuple[int, str, str, bool]) -> None:
    test_each_error(text, expected)


def test_every_queue_problem_is_reported_at_once() -> None:
    text = doc(
        *LEVELS,
        "queue_defaults: {target: 0s, goal: 0%, timezone: Mars/X}",  # 4: three problems
        "queues:",
        "  sales: {target: 20, goal: 80}",  # 6: two
        "  support: {goal: junk}",  # 7
        "  billing: {goal: 90%}",  # 8: fine
        "  vip: {timezone: Nowhere, colour: red}",  # 9: two
    )
    assert [(p.line, p.field) for p in problems(text)] == [
        (4, "queue_defaults.target"),
        (4, "queue_defaults.goal"),
        (4, "queue_defaults.timezone"),
        (6, "queues.sales.target"),
        (6, "queues.sales.goal"),
        (7, "queues.support.goal"),
        (9, "queues.vip.colour"),
        (9, "queues.vip.timezone"),
    ]


def test_at_most_10_000_queues() -> None:
    names = [f"  q{n:05d}: {{}}" for n in range(10_001)]
    found = problems(doc(*LEVELS, "queues:", *names))  # queue n on line 5 + n
    assert [(p.line, p.field) for p in found] == [(5 + 10_000, "queues.q10000")]
    assert "more than 10,000 queues" in found[0].message and found[0].hint
    policy = parse_policy(doc(*LEVELS, "queues:", *names[:10_000]), "p.yaml")
    assert len(policy.queues) == 10_000


def test_the_schema_describes_the_queues() -> None:
    assert schema_errors(QUEUES) == []
    assert schema_errors(queue_line("{colour: red}"))
    assert schema_errors(queue_line("{goal: 1.5}"))
    assert schema_errors(queue_line("{goal: 0}"))
    assert schema_errors(queue_line("{goal: ninety}"))
    assert schema_errors(queue_line("{target: 20}"))
    assert schema_errors(doc(*LEVELS, "queue_defaults: {timezone: 5}"))
