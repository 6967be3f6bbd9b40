"""The policy document: its top level, composed from the sections.

:func:`parse_policy` reads the whole document and reports *every* problem it finds, each
with its line, the dotted path of the field and a hint, so ``slawatch check-config`` can
list them all at once. The same function checks a policy arriving on the policy topic.
The format is documented in the README (SLA policies) and described for editors by
``schemas/json/policy.v1.json``, which :mod:`slawatch.policy.schema` builds from the same
key tables.

Whatever the text, :func:`parse_policy` returns a policy or raises
:class:`PolicyFileError`, in bounded time and memory: the reader's limits
(:mod:`slawatch.yamlfile`), RE2 for patterns (:mod:`slawatch.policy.regex`), calendars
checked for working time (:mod:`slawatch.policy.calendars`), and any other exception
turned into a problem at the line and field being read.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from slawatch.core.business_hours import BusinessCalendar
from slawatch.core.calendar import Calendar
from slawatch.core.kpi import QueueSettings
from slawatch.core.policy import PolicyError, SlaLevel, SlaPolicy
from slawatch.core.rules import RuleError, RuleSet
from slawatch.policy.calendars import read_calendars
from slawatch.policy.credits import read_credits
from slawatch.policy.levels import MAX_NAME_CHARS, read_levels
from slawatch.policy.problems import PolicyFileError, PolicyReader, Problem
from slawatch.policy.queues import read_queue_defaults, read_queues
from slawatch.policy.rules import read_rules
from slawatch.yamlfile import YamlSyntaxError, read_text

#: The keys of the document.
TOP_LEVEL = (
    "version",
    "description",
    "default_level",
    "short_abandon",
    "calendars",
    "levels",
    "rules",
    "queue_defaults",
    "queues",
    "credits",
)


def policy_version_of(text: str) -> str:
    """The version of a document without ``version``: a digest of its text."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a policy is read.

    Reading allocates up to some 10^5 short-lived objects (nodes, marks, values), freed by
    reference counting; but their number alone triggers the collector's full passes over
    the whole process, which stop every thread: a worker's event loop, with ingest, the
    timers and ``/healthz``, stopped for 100-200 ms at a time while a large policy was read
    in a thread (and the read took three times as long). The collector is interpreter-wide:
    it is paused only if it was running, and comes back when the read ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_policy(text: str, source: str) -> SlaPolicy:
    """The policy in ``text``; :class:`PolicyFileError` lists every problem."""
    r = PolicyReader()
    policy = None
    with _collector_paused(), r.guard(None, "(document)"):
        policy = _parse(text, r)
    if policy is None:
        problems = r.all_problems() or [Problem(1, "(document)", "cannot be read")]
        raise PolicyFileError(source, problems)
    return policy


def _parse(text: str, r: PolicyReader) -> SlaPolicy | None:
    """The policy, or None with the reasons in ``r.problems``."""
    root = r.document(text, empty_hint="start from the README's policy example")
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        r.fail(root, "(top level)", "expected a mapping (key: value lines)",
               hint="start from the README's policy example")  # fmt: skip
        return None
    top = r.mapping(root, "", TOP_LEVEL)
    version = policy_version_of(text)
    if "version" in top:
        version = r.text(top["version"][1], "version") or version
        if len(version) > MAX_NAME_CHARS:
            r.fail(top["version"][1], "version", f"{len(version)} characters; at most "
                   f"{MAX_NAME_CHARS}", hint="SLA events and a metric label carry it")  # fmt: skip
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
    queue_defaults = QueueSettings(short_abandon_ms=short_abandon)
    if "queue_defaults" in top:
        read = read_queue_defaults(r, top["queue_defaults"][1], short_abandon)
        queue_defaults = read or queue_defaults  # with problems: go on, to find the queues'
    queues: dict[str, QueueSettings | None] = {}
    if "queues" in top:
        queues = read_queues(r, top["queues"][1], queue_defaults)
    credits = read_credits(r, top["credits"][1], set(levels)) if "credits" in top else []
    if r.problems or default is None:
        return None
    try:
        return SlaPolicy(
            version=version,
            levels={name: level for name, level in levels.items() if level is not None},
            rules=RuleSet(rules, default),
            short_abandon_ms=short_abandon,
            queue_defaults=queue_defaults,
            queues={name: queue for name, queue in queues.items() if queue is not None},
            credits=tuple(term for term in credits if term is not None),
        )
    except (PolicyError, RuleError) as exc:  # checked above; kept as a last line of defence
        r.problems.append(Problem(1, "(policy)", str(exc)))
        return None


def load_policy(path: Path) -> SlaPolicy:
    """The policy in the file at ``path``."""
    return parse_policy(read_policy_text(path), str(path))


def read_policy_text(path: Path) -> str:
    """The text of the policy file at ``path``: a one-line error if it cannot be read, a
    :class:`PolicyFileError` with the line if it is too large or not UTF-8."""
    try:
        return read_text(path)
    except YamlSyntaxError as exc:  # NotText, YamlLimitError
        problem = Problem(exc.line, "(document)", exc.message, exc.hint)
        raise PolicyFileError(str(path), [problem]) from None


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
        + (f", {len(policy.queues)} queues with their own settings" if policy.queues else "")
        + (f", {len(policy.credits)} credit terms" if policy.credits else "")
    )
