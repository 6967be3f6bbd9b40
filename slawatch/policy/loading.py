"""The policy document: its top level, composed from the sections.

:func:`parse_policy` reads the whole document and reports *every* problem it finds, each
with its line, the dotted path of the field and a hint, so ``slawatch check-config`` can
list them all at once. The same function checks a policy arriving on the policy topic.
The format is documented in the README (SLA policies) and described for editors by
``schemas/json/policy.v1.json``, which :mod:`slawatch.policy.schema` builds from the same
key tables.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from slawatch.core.business_hours import BusinessCalendar
from slawatch.core.calendar import Calendar
from slawatch.core.policy import PolicyError, SlaLevel, SlaPolicy
from slawatch.core.rules import RuleError, RuleSet
from slawatch.errors import SlawatchError
from slawatch.policy.calendars import read_calendars
from slawatch.policy.levels import read_levels
from slawatch.policy.problems import PolicyFileError, PolicyReader, Problem
from slawatch.policy.rules import read_rules
from slawatch.yamlfile import YamlSyntaxError, compose

#: The keys of the document.
TOP_LEVEL = (
    "version",
    "description",
    "default_level",
    "short_abandon",
    "calendars",
    "levels",
    "rules",
)


def _compose(text: str, r: PolicyReader) -> yaml.Node | None:
    try:
        node = compose(text)
    except YamlSyntaxError as exc:
        r.problems.append(Problem(exc.line or 1, "(syntax)", exc.message))
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
    r = PolicyReader()
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
        calendars = read_calendars(r, top["calendars"][1])
    levels: dict[str, SlaLevel | None] = {}
    if "levels" not in top:
        r.fail(root, "levels", "no levels", hint="levels: {normal: {targets: {first_reply: 8h}}}")
    else:
        levels = read_levels(r, top["levels"][1], calendars)
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
    rules = read_rules(r, top["rules"][1], set(levels)) if "rules" in top else []
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
