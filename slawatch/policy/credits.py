"""The ``credits`` section: what a contract pays back when commitments are missed
(:class:`~slawatch.core.credits.CreditTerm`, computed by ``slawatch/reports/credits.py``).

A list of terms, each with exactly one scope (``level``, ``customer_group`` or ``tenant``:
a name or a list of names), optionally narrowed to some ``metrics``, settled per
``customer_key`` (the tenant or customer group of each cycle; by default the scope's own
field, ``tenant`` for a level) and either ``tiers`` of compliance (``{below: 95%, credit:
10%}``, highest ``below`` first) or a fixed amount ``per_missed`` with an optional ``cap``
(a percentage of the monthly fee). Percentages are written with ``%``: a bare ``0.1``
could mean either 0.1 % or 10 %.
"""

from __future__ import annotations

from decimal import Decimal

import yaml

from slawatch.core.credits import (
    CUSTOMER_KEYS,
    MONEY_HINT,
    PERCENT_HINT,
    SCOPE_FIELDS,
    CreditError,
    CreditTerm,
    CreditTier,
    parse_money,
    parse_percent,
)
from slawatch.core.sla import Metric
from slawatch.policy.levels import MAX_NAME_CHARS, METRICS
from slawatch.policy.problems import PolicyReader

#: The keys of one credit term, and of one tier.
CREDIT_KEYS = ("name", *SCOPE_FIELDS, "metrics", "customer_key", "tiers", "per_missed", "cap")
TIER_KEYS = ("below", "credit")
#: The most terms a policy holds, the most tiers a term, the most names a scope.
MAX_CREDIT_TERMS = 1_000
MAX_TIERS = 100
MAX_SCOPE_VALUES = 1_000
#: A percentage as the schema describes it (the loader checks the range).
PERCENT_PATTERN = r"^\s*[0-9]{1,3}(\.[0-9]{1,2})?\s*%\s*$"
#: An amount as the schema describes it, when written as text.
MONEY_PATTERN = r"^\s*[0-9]{1,13}(\.[0-9]{1,2})?\s*$"


def read_credits(r: PolicyReader, node: yaml.Node, levels: set[str]) -> list[CreditTerm | None]:
    """The ``credits`` section in order; None for a term with problems. A ``level`` scope
    must name levels of ``levels``."""
    terms: list[CreditTerm | None] = []
    labels: dict[str, int] = {}
    for i, term_node in enumerate(r.sequence(node, "credits")):
        field = f"credits[{i}]"
        if i == MAX_CREDIT_TERMS:
            r.fail(term_node, field, f"more than {MAX_CREDIT_TERMS:,} credit terms",
                   hint="one term can cover several customers: tenant: [acme, globex]")  # fmt: skip
            break
        term = None
        with r.guard(term_node, field):
            term = _term(r, term_node, field, levels)
        terms.append(term)
        if term is None:
            continue
        first = labels.setdefault(term.label, i)
        if first != i:
            r.fail(term_node, field, f"is called {term.label!r}, as credits[{first}] is",
                   hint="give each term its own name, like name: vip per miss")  # fmt: skip
    return terms


def _term(r: PolicyReader, node: yaml.Node, field: str, levels: set[str]) -> CreditTerm | None:
    problems_before = r.found
    keys = r.mapping(node, field, CREDIT_KEYS)
    if not isinstance(node, yaml.MappingNode):
        return None
    name = ""
    if "name" in keys:
        name = r.text(keys["name"][1], f"{field}.name") or ""
        if len(name) > MAX_NAME_CHARS:
            r.fail(keys["name"][1], f"{field}.name", f"{len(name)} characters; at most "
                   f"{MAX_NAME_CHARS}", hint="reports show it on every row")  # fmt: skip
    scope, values = _scope(r, node, keys, field, levels)
    metrics: tuple[Metric, ...] = ()
    if "metrics" in keys:
        metrics = _metrics(r, keys["metrics"][1], f"{field}.metrics")
    customer_key = ""
    if "customer_key" in keys:
        value_node = keys["customer_key"][1]
        customer_key = r.text(value_node, f"{field}.customer_key") or ""
        if customer_key and customer_key not in CUSTOMER_KEYS:
            r.fail(value_node, f"{field}.customer_key", f"{customer_key!r} is not a customer key",
                   hint="tenant or customer_group: whose monthly fee a credit is of")  # fmt: skip
    tiers: tuple[CreditTier, ...] = ()
    per_missed: Decimal | None = None
    cap: Decimal | None = None
    if "tiers" in keys and "per_missed" in keys:
        r.fail(keys["per_missed"][0], f"{field}.per_missed", "a term with tiers too",
               hint="either tiers or an amount per missed: make two terms")  # fmt: skip
    elif "tiers" not in keys and "per_missed" not in keys:
        r.fail(node, field, "no tiers and no per_missed: nothing is owed",
               hint="tiers: [{below: 95%, credit: 10%}] or per_missed: 50")  # fmt: skip
    if "tiers" in keys:
        tiers = _tiers(r, keys["tiers"][1], f"{field}.tiers")
    if "per_missed" in keys:
        per_missed = _money(r, keys["per_missed"][1], f"{field}.per_missed")
        if per_missed is not None and per_missed == 0:
            r.fail(keys["per_missed"][1], f"{field}.per_missed", "0 owes nothing",
                   hint="more than 0, in the customer's currency")  # fmt: skip
    if "cap" in keys:
        cap_node = keys["cap"][1]
        if "per_missed" not in keys:
            r.fail(keys["cap"][0], f"{field}.cap", "caps per_missed only",
                   hint="a tier's credit is its own limit")  # fmt: skip
        cap = _percent(r, cap_node, f"{field}.cap")
        if cap is not None and cap == 0:
            r.fail(cap_node, f"{field}.cap", "0% caps every credit at nothing",
                   hint="more than 0% and at most 100% of the monthly fee")  # fmt: skip
    if r.found > problems_before or scope is None:
        return None
    try:
        return CreditTerm(
            scope=scope,
            values=values,
            metrics=metrics,
            tiers=tiers,
            per_missed=per_missed,
            cap_pct=cap,
            customer_key=customer_key,
            name=name,
        )
    except CreditError as exc:  # each value was checked above; a last line of defence
        r.fail(node, field, str(exc))
        return None


def _scope(
    r: PolicyReader,
    node: yaml.Node,
    keys: dict[str, tuple[yaml.Node, yaml.Node]],
    field: str,
    levels: set[str],
) -> tuple[str | None, tuple[str, ...]]:
    """The one scope key and its names; (None, ()) with the problem recorded."""
    given = [name for name in SCOPE_FIELDS if name in keys]
    if not given:
        r.fail(node, field, f"no scope: give one of {', '.join(SCOPE_FIELDS)}",
               hint="customer_group: enterprise")  # fmt: skip
        return None, ()
    if len(given) > 1:
        later = max(given, key=lambda name: keys[name][0].start_mark.index)
        r.fail(keys[later][0], f"{field}.{later}", f"a second scope ({' and '.join(given)})",
               hint="exactly one of level, customer_group, tenant: make one term each")  # fmt: skip
        return None, ()
    scope = given[0]
    path = f"{field}.{scope}"
    value_node = keys[scope][1]
    nodes = (
        r.sequence(value_node, path) if isinstance(value_node, yaml.SequenceNode) else [value_node]
    )
    if not nodes:
        r.fail(value_node, path, "an empty list: no cycle would count",
               hint=f"{scope}: name  or  {scope}: [name, other]")  # fmt: skip
        return None, ()
    if len(nodes) > MAX_SCOPE_VALUES:
        r.fail(value_node, path, f"more than {MAX_SCOPE_VALUES:,} names")
        return None, ()
    values: list[str] = []
    for item in nodes:
        value = r.text(item, path)
        if value is None:
            continue
        if not value.strip():
            r.fail(item, path, "an empty name")
        elif len(value) > MAX_NAME_CHARS:
            r.fail(item, path, f"a name of {len(value)} characters; at most {MAX_NAME_CHARS}")
        elif value in values:
            r.fail(item, path, f"{value!r} is listed twice")
        elif scope == "level" and value not in levels:
            r.fail(item, path, f"no level {value!r}",
                   hint=f"levels: {', '.join(sorted(levels)) or '(none defined)'}")  # fmt: skip
        else:
            values.append(value)
    if len(values) != len(nodes):
        return None, ()
    return scope, tuple(values)


def _metrics(r: PolicyReader, node: yaml.Node, path: str) -> tuple[Metric, ...]:
    """A metric or a list of metrics, each known, none twice."""
    nodes = r.sequence(node, path) if isinstance(node, yaml.SequenceNode) else [node]
    if not nodes:
        r.fail(node, path, "an empty list: no cycle would count",
               hint="leave metrics out for every metric")  # fmt: skip
    metrics: list[Metric] = []
    for item in nodes:
        name = r.text(item, path)
        if name is None:
            continue
        if name not in METRICS:
            r.fail(item, path, f"unknown metric {name!r}", hint=f"metrics: {', '.join(METRICS)}")
        elif Metric(name) in metrics:
            r.fail(item, path, f"{name!r} is listed twice")
        else:
            metrics.append(Metric(name))
    return tuple(metrics)


def _tiers(r: PolicyReader, node: yaml.Node, path: str) -> tuple[CreditTier, ...]:
    """The tiers, highest ``below`` first; () with the problems recorded."""
    nodes = r.sequence(node, path)
    if isinstance(node, yaml.SequenceNode) and not nodes:
        r.fail(node, path, "an empty list: nothing is owed", hint="[{below: 95%, credit: 10%}]")
    if len(nodes) > MAX_TIERS:
        r.fail(node, path, f"more than {MAX_TIERS} tiers")
        return ()
    tiers: list[CreditTier] = []
    previous: tuple[Decimal, Decimal] | None = None
    ok = True
    for j, tier_node in enumerate(nodes):
        field = f"{path}[{j}]"
        keys = r.mapping(tier_node, field, TIER_KEYS)
        if not isinstance(tier_node, yaml.MappingNode):
            ok = False
            continue
        below = credit = None
        for key in TIER_KEYS:
            if key not in keys:
                r.fail(tier_node, f"{field}.{key}", "missing", hint="{below: 95%, credit: 10%}")
                ok = False
        if "below" in keys:
            below = _percent(r, keys["below"][1], f"{field}.below")
            if below is not None and below == 0:
                r.fail(keys["below"][1], f"{field}.below", "no compliance is below 0%",
                       hint="more than 0% and at most 100%")  # fmt: skip
                below = None
        if "credit" in keys:
            credit = _percent(r, keys["credit"][1], f"{field}.credit")
        if below is None or credit is None:
            ok = False
            continue
        if previous is not None:
            if below >= previous[0]:
                r.fail(keys["below"][1], f"{field}.below", f"{below}% is not lower than the tier "
                       f"before ({previous[0]}%)", hint="tiers go from the highest threshold to "
                       "the lowest: 99%, 95%, 90%; the lowest one reached applies")  # fmt: skip
                ok = False
            elif credit < previous[1]:
                r.fail(keys["credit"][1], f"{field}.credit", f"{credit}% is less than the tier "
                       f"before ({previous[1]}%): a lower compliance never owes less",
                       hint="credits grow as the thresholds fall")  # fmt: skip
                ok = False
        previous = (below, credit)
        tiers.append(CreditTier(below, credit))
    return tuple(tiers) if ok else ()


def _percent(r: PolicyReader, node: yaml.Node, path: str) -> Decimal | None:
    text = r.text(node, path)
    if text is None:
        return None
    try:
        return parse_percent(text)
    except CreditError as exc:
        r.fail(node, path, str(exc), hint=PERCENT_HINT)
        return None


def _money(r: PolicyReader, node: yaml.Node, path: str) -> Decimal | None:
    text = r.text(node, path)
    if text is None:
        return None
    try:
        return parse_money(text)
    except CreditError as exc:
        r.fail(node, path, str(exc), hint=MONEY_HINT)
        return None
