"""SLA credits: the core rule (slawatch/core/credits.py), the policy's ``credits`` section
(slawatch/policy/credits.py), the customer fees file (slawatch/config/fees.py) and the
``customer_fees_file`` setting.

Every amount below is worked out by hand in its comment. Every parsing problem is checked
as the one line an operator reads: ``file:line: field: message (hint: ...)``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slawatch.config.fees import FeesFileError, load_fees, parse_fees
from slawatch.config.settings import load_settings
from slawatch.core.credits import (
    CENT,
    CreditError,
    CreditTerm,
    CreditTier,
    CustomerFee,
    compliance_text,
    credit_owed,
    parse_currency,
    parse_money,
    parse_percent,
)
from slawatch.core.policy import PolicyError, SlaLevel, SlaPolicy, builtin_policy
from slawatch.core.rules import RuleSet
from slawatch.core.sla import Metric
from slawatch.policy import PolicyFileError, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
D = Decimal
EUR_12000 = CustomerFee(D("12000"), "EUR")
#: The README's tiers: the lowest tier reached applies.
TIERS = (CreditTier(D("99"), D("5")), CreditTier(D("95"), D("10")), CreditTier(D("90"), D("25")))
ENTERPRISE = CreditTerm("customer_group", ("enterprise",), tiers=TIERS)
VIP = CreditTerm("level", ("vip",), per_missed=D("50"), cap_pct=D("30"))


# --- the rule: compliance tiers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("met", "missed", "applied", "amount"),
    [
        (1234, 90, "below 95 %: 10 %", "1200.00"),  # 93.2 %: 10 % of 12,000
        (100, 0, "not below 99 %", "0.00"),  # 100 %
        (99, 1, "not below 99 %", "0.00"),  # exactly 99 %: not below 99 %
        (989, 11, "below 99 %: 5 %", "600.00"),  # 98.9 %
        (95, 5, "below 99 %: 5 %", "600.00"),  # exactly 95 %: below 99 only
        (9499, 501, "below 95 %: 10 %", "1200.00"),  # 94.99 %
        (90, 10, "below 95 %: 10 %", "1200.00"),  # exactly 90 %
        (8999, 1001, "below 90 %: 25 %", "3000.00"),  # 89.99 %
        (0, 7, "below 90 %: 25 %", "3000.00"),  # 0 %: the lowest tier
        (0, 0, "no met or missed cycles", "0.00"),  # nothing decided: nothing owed
    ],
)
def test_the_lowest_tier_reached_applies(met: int, missed: int, applied: str, amount: str) -> None:
    credit = credit_owed(ENTERPRISE, met, missed, EUR_12000)
    assert (credit.rule, credit.amount, credit.capped) == (applied, D(amount), False)


def test_why_says_compliance_counts_tier_and_arithmetic() -> None:
    assert credit_owed(ENTERPRISE, 1234, 90, EUR_12000).why == (
        "compliance 93.2 % (1,234 met, 90 missed) below 95 %: 10 % of 12,000 EUR = 1,200 EUR"
    )
    assert credit_owed(ENTERPRISE, 99, 1, EUR_12000).why == (
        "compliance 99.0 % (99 met, 1 missed) not below 99 %: no credit"
    )
    assert credit_owed(ENTERPRISE, 0, 0, EUR_12000).why == "no met or missed cycles: no credit"


def test_the_shown_compliance_is_rounded_down_so_it_never_contradicts_the_tier() -> None:
    # 94.99 % shown as 95.0 % "below 95 %" would contradict itself: it is 94.9 %.
    assert compliance_text(ENTERPRISE, 9499, 501) == "compliance 94.9 % (9,499 met, 501 missed)"
    # A threshold with two decimals: as many decimals shown. 99.949 % is below 99.95 %.
    fine = CreditTerm("tenant", ("acme",), tiers=(CreditTier(D("99.95"), D("1")),))
    assert compliance_text(fine, 99949, 51).startswith("compliance 99.94 % ")
    assert credit_owed(fine, 99949, 51, EUR_12000).amount == D("120.00")
    assert credit_owed(fine, 9995, 5, EUR_12000).why.startswith(
        "compliance 99.95 % (9,995 met, 5 missed) not below 99.95 %"
    )


def test_an_unknown_fee_computes_nothing_and_says_why() -> None:
    credit = credit_owed(ENTERPRISE, 1234, 90, None)
    assert (credit.rule, credit.amount) == ("below 95 %: 10 %", None)
    assert credit.why == (
        "compliance 93.2 % (1,234 met, 90 missed) below 95 %: 10 % of the monthly fee, which "
        "is unknown: credit not computed"
    )
    # Even where nothing would be owed, an unknown fee is not a silent zero.
    none_owed = credit_owed(ENTERPRISE, 100, 0, None)
    assert none_owed.amount is None
    assert none_owed.why.endswith("no credit, but the monthly fee is unknown: credit not computed")


def test_amounts_are_rounded_once_to_the_cent_half_up() -> None:
    half = CreditTerm("tenant", ("acme",), tiers=(CreditTier(D("100"), D("2.5")),))
    # 2.5 % of 8,000.20 is 200.005: half up gives 200.01 (half even would give 200.00).
    assert credit_owed(half, 1, 1, CustomerFee(D("8000.20"), "USD")).amount == D("200.01")
    # 2.5 % of 12,345.67 is 308.64175: 308.64.
    assert credit_owed(half, 1, 1, CustomerFee(D("12345.67"), "EUR")).amount == D("308.64")
    # 2.5 % of 0.50 is 0.0125: 0.01; of 0.02 is 0.0005: 0.00 (not 0.01).
    assert credit_owed(half, 1, 1, CustomerFee(D("0.50"), "EUR")).amount == D("0.01")
    assert credit_owed(half, 1, 1, CustomerFee(D("0.02"), "EUR")).amount == D("0.00")


# --- the rule: per missed, with a cap ----------------------------------------------------


def test_per_missed_under_the_cap() -> None:
    credit = credit_owed(VIP, 10, 10, EUR_12000)  # 10 x 50 = 500 < 3,600
    assert (credit.rule, credit.amount, credit.capped) == ("10 missed at 50 each", D(500), False)
    assert credit.why == (
        "compliance 50.0 % (10 met, 10 missed): 10 missed at 50 EUR each = 500 EUR "
        "(under the cap of 30 % of 12,000 EUR = 3,600 EUR)"
    )


def test_per_missed_exactly_at_the_cap_is_not_capped() -> None:
    credit = credit_owed(VIP, 0, 72, EUR_12000)  # 72 x 50 = 3,600 = 30 % of 12,000
    assert (credit.amount, credit.capped) == (D("3600.00"), False)


def test_per_missed_over_the_cap_owes_the_cap() -> None:
    credit = credit_owed(VIP, 10, 90, EUR_12000)  # 90 x 50 = 4,500 > 3,600
    assert (credit.rule, credit.amount, credit.capped) == (
        "90 missed at 50 each, capped at 30 %",
        D("3600.00"),
        True,
    )
    assert credit.why == (
        "compliance 10.0 % (10 met, 90 missed): 90 missed at 50 EUR each = 4,500 EUR, "
        "capped at 30 % of 12,000 EUR = 3,600 EUR"
    )
    # 30 % of 8,000.25 is 2,400.075: the cap, rounded half up, is 2,400.08.
    odd = credit_owed(VIP, 0, 1000, CustomerFee(D("8000.25"), "USD"))
    assert (odd.amount, odd.capped) == (D("2400.08"), True)


def test_per_missed_without_a_cap_and_without_misses() -> None:
    uncapped = CreditTerm("tenant", ("acme",), per_missed=D("12.50"))
    assert credit_owed(uncapped, 0, 1001, EUR_12000).amount == D("12512.50")  # above the fee
    assert credit_owed(uncapped, 5, 0, EUR_12000).rule == "none missed"
    assert credit_owed(uncapped, 5, 0, EUR_12000).amount == D("0.00")
    assert credit_owed(uncapped, 0, 0, EUR_12000).rule == "no met or missed cycles"
    unknown = credit_owed(VIP, 10, 90, None)
    assert unknown.amount is None
    assert unknown.why == (
        "compliance 10.0 % (10 met, 90 missed): 90 missed at 50 each in the customer's "
        "currency, capped at 30 % of the monthly fee; the monthly fee and currency are "
        "unknown: credit not computed"
    )


@given(
    met=st.integers(0, 10**6),
    missed=st.integers(0, 10**6),
    fee=st.decimals(0, 10**9, places=2),
    per=st.decimals("0.01", 10**4, places=2),
    cap=st.one_of(st.none(), st.decimals("0.01", 100, places=2)),
)
def test_per_missed_is_the_smaller_of_count_times_amount_and_the_cap(
    met: int, missed: int, fee: Decimal, per: Decimal, cap: Decimal | None
) -> None:
    term = CreditTerm("tenant", ("acme",), per_missed=per, cap_pct=cap)
    credit = credit_owed(term, met, missed, CustomerFee(fee, "EUR"))
    exact = Fraction(per) * missed
    if cap is not None:
        exact = min(exact, Fraction(fee) * Fraction(cap) / 100)
    assert credit.amount is not None
    assert abs(Fraction(credit.amount) - exact) <= Fraction(1, 200)  # to the cent
    assert credit.amount == credit.amount.quantize(CENT)


@given(met=st.integers(0, 10**6), missed=st.integers(0, 10**6))
def test_tiers_match_their_definition(met: int, missed: int) -> None:
    credit = credit_owed(ENTERPRISE, met, missed, EUR_12000)
    decided = met + missed
    reached = [t for t in TIERS if decided and Fraction(100 * met, decided) < t.below_pct]
    expected = reached[-1].credit_pct * 120 if reached else D(0)  # 1 % of 12,000 is 120
    assert credit.amount == expected
    # A worse month never owes less.
    assert credit_owed(ENTERPRISE, met, missed + 1, EUR_12000).amount >= expected  # type: ignore[operator]


# --- the core's own checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CreditTerm("queue", ("x",), per_missed=D(1)), "scope 'queue'"),
        (lambda: CreditTerm("tenant", (), per_missed=D(1)), "at least one"),
        (lambda: CreditTerm("tenant", ("a",)), "either tiers or per_missed"),
        (lambda: CreditTerm("tenant", ("a",), tiers=TIERS, per_missed=D(1)), "either"),
        (lambda: CreditTerm("tenant", ("a",), tiers=TIERS[::-1]), "lower than the one"),
        (
            lambda: CreditTerm(
                "tenant", ("a",), tiers=(CreditTier(D(99), D(10)), CreditTier(D(95), D(5)))
            ),
            "never owes a smaller",
        ),
        (lambda: CreditTerm("tenant", ("a",), tiers=TIERS, cap_pct=D(10)), "per_missed only"),
        (lambda: CreditTerm("tenant", ("a",), per_missed=D(0)), "per_missed 0"),
        (lambda: CreditTerm("tenant", ("a",), per_missed=D(1), cap_pct=D(0)), "cap 0%"),
        (lambda: CreditTerm("tenant", ("a",), per_missed=D(1), customer_key="x"), "customer_key"),
        (lambda: CreditTier(D(0), D(5)), "below 0%"),
        (lambda: CreditTier(D(95), D(101)), "credit 101%"),
        (lambda: CreditTier(D("NaN"), D(5)), "below NaN%"),
        (lambda: CustomerFee(D(-1), "EUR"), "monthly fee -1"),
        (lambda: CustomerFee(D(1), "eur"), "not a currency code"),
    ],
)
def test_the_core_refuses_terms_that_cannot_work(build: object, message: str) -> None:
    with pytest.raises(CreditError, match=message):
        build()  # type: ignore[operator]


def test_a_terms_customer_key_defaults_to_its_scope_or_the_tenant() -> None:
    assert ENTERPRISE.customer_key == "customer_group"
    assert VIP.customer_key == "tenant"
    assert CreditTerm("tenant", ("a",), per_missed=D(1)).customer_key == "tenant"
    per_tenant = CreditTerm("customer_group", ("g",), per_missed=D(1), customer_key="tenant")
    assert per_tenant.customer_key == "tenant"
    assert ENTERPRISE.label == "customer_group=enterprise"
    assert VIP.rule_text() == "50 per missed, cap 30 %"
    assert ENTERPRISE.rule_text() == "below 99 %: 5 %; below 95 %: 10 %; below 90 %: 25 %"


def test_a_policy_refuses_a_credit_term_on_an_undefined_level() -> None:
    levels = {"n": SlaLevel("n", {Metric.FIRST_REPLY: 1000})}
    with pytest.raises(PolicyError, match="undefined level 'vip'"):
        SlaPolicy("v", levels, RuleSet([], "n"), credits=(VIP,))
    assert builtin_policy().credits == ()
    policy = SlaPolicy("v", levels, RuleSet([], "n"), credits=(ENTERPRISE,))
    assert policy.scaled(60).credits == (ENTERPRISE,)


@pytest.mark.parametrize(
    ("text", "value"), [("12000", D("12000")), (" 49.9 ", D("49.9")), ("0.05", D("0.05"))]
)
def test_money_is_digits_with_at_most_two_decimals(text: str, value: Decimal) -> None:
    assert parse_money(text) == value


@pytest.mark.parametrize("text", ["-1", "1e4", "12,000", "12.345", "", "NaN", "1" * 14, ".5"])
def test_money_refuses_anything_else(text: str) -> None:
    with pytest.raises(CreditError):
        parse_money(text)


def test_percent_needs_its_sign_and_currency_its_three_capitals() -> None:
    assert parse_percent("99.5%") == D("99.5")
    assert parse_percent("10 %") == D("10")
    for text in ("0.1", "101%", "99.999%", "-5%", "5%%"):
        with pytest.raises(CreditError):
            parse_percent(text)
    assert parse_currency("VND") == "VND"
    for text in ("eur", "EURO", "E1R", ""):
        with pytest.raises(CreditError):
            parse_currency(text)


# --- the policy's credits section ---------------------------------------------------------


def doc(*lines: str) -> str:
    """A policy with level ``vip`` and ``normal``; ``lines`` start on line 3."""
    head = ("default_level: normal", "levels: {normal: {targets: {first_reply: 8h}}, vip: {}}")
    return "\n".join([*head, *lines]) + "\n"


def policy_with(*lines: str) -> str:
    return doc(*lines).replace("vip: {}", "vip: {targets: {first_reply: 1h}}")


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "p.yaml")
    return caught.value.lines()


def test_the_example_policys_credits() -> None:
    policy = load_policy(ROOT / "examples" / "policy.yaml")
    enterprise, vip, calls = policy.credits
    assert enterprise == CreditTerm(
        "customer_group",
        ("enterprise",),
        metrics=(Metric.FIRST_REPLY, Metric.RESOLUTION),
        tiers=TIERS,
        name="enterprise compliance",
    )
    assert vip == VIP
    assert calls == CreditTerm(
        "tenant",
        ("acme", "globex"),
        metrics=(Metric.CALL_ANSWER,),
        tiers=(CreditTier(D("80"), D("2.5")),),
    )
    assert calls.label == "tenant=acme,globex call_answer"


def test_a_term_reads_every_key() -> None:
    policy = parse_policy(
        policy_with(
            "credits:",
            "  - name: group per tenant",
            "    customer_group: [enterprise, gold]",
            "    metrics: resolution",
            "    customer_key: tenant",
            "    per_missed: 12.50",
        ),
        "p.yaml",
    )
    assert policy.credits == (
        CreditTerm(
            "customer_group",
            ("enterprise", "gold"),
            metrics=(Metric.RESOLUTION,),
            per_missed=D("12.50"),
            customer_key="tenant",
            name="group per tenant",
        ),
    )


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["credits:", "  - {tiers: [{below: 95%, credit: 10%}]}"],
            "p.yaml:4: credits[0]: no scope: give one of level, customer_group, tenant "
            "(hint: customer_group: enterprise)",
        ),
        (
            ["credits:", "  - level: vip", "    tenant: acme", "    per_missed: 5"],
            "p.yaml:5: credits[0].tenant: a second scope (level and tenant) (hint: exactly one "
            "of level, customer_group, tenant: make one term each)",
        ),
        (
            ["credits:", "  - {level: gold, per_missed: 5}"],
            "p.yaml:4: credits[0].level: no level 'gold' (hint: levels: normal, vip)",
        ),
        (
            ["credits:", "  - {tenant: [], per_missed: 5}"],
            "p.yaml:4: credits[0].tenant: an empty list: no cycle would count (hint: tenant: "
            "name  or  tenant: [name, other])",
        ),
        (
            ["credits:", "  - {tenant: [a, a], per_missed: 5}"],
            "p.yaml:4: credits[0].tenant: 'a' is listed twice",
        ),
        (
            [
                "credits:",
                "  - tenant: acme",
                "    metrics: [first_reply, replies]",
                "    per_missed: 5",
            ],
            "p.yaml:5: credits[0].metrics: unknown metric 'replies' (hint: metrics: "
            "first_reply, next_reply, chat_reply, call_answer, resolution)",
        ),
        (
            ["credits:", "  - {tenant: acme, metrics: [resolution, resolution], per_missed: 5}"],
            "p.yaml:4: credits[0].metrics: 'resolution' is listed twice",
        ),
        (
            ["credits:", "  - {tenant: acme, metric: resolution, per_missed: 5}"],
            "p.yaml:4: credits[0].metric: unknown key (hint: known keys: name, level, "
            "customer_group, tenant, metrics, customer_key, tiers, per_missed, cap)",
        ),
        (
            ["credits:", "  - {tenant: acme, customer_key: agent, per_missed: 5}"],
            "p.yaml:4: credits[0].customer_key: 'agent' is not a customer key (hint: tenant "
            "or customer_group: whose monthly fee a credit is of)",
        ),
        (
            ["credits:", "  - {tenant: acme}"],
            "p.yaml:4: credits[0]: no tiers and no per_missed: nothing is owed (hint: tiers: "
            "[{below: 95%, credit: 10%}] or per_missed: 50)",
        ),
        (
            [
                "credits:",
                "  - tenant: acme",
                "    tiers: [{below: 95%, credit: 10%}]",
                "    per_missed: 5",
            ],
            "p.yaml:6: credits[0].per_missed: a term with tiers too (hint: either tiers or an "
            "amount per missed: make two terms)",
        ),
        (
            [
                "credits:",
                "  - tenant: acme",
                "    tiers:",
                "      - {below: 95%, credit: 10%}",
                "      - {below: 99%, credit: 20%}",
            ],
            "p.yaml:7: credits[0].tiers[1].below: 99% is not lower than the tier before (95%) "
            "(hint: tiers go from the highest threshold to the lowest: 99%, 95%, 90%; the "
            "lowest one reached applies)",
        ),
        (
            [
                "credits:",
                "  - tenant: acme",
                "    tiers:",
                "      - {below: 99%, credit: 10%}",
                "      - {below: 95%, credit: 5%}",
            ],
            "p.yaml:7: credits[0].tiers[1].credit: 5% is less than the tier before (10%): a "
            "lower compliance never owes less (hint: credits grow as the thresholds fall)",
        ),
        (
            ["credits:", "  - {tenant: acme, tiers: [{below: 95%, credit: 101%}]}"],
            "p.yaml:4: credits[0].tiers[0].credit: 101% is more than 100% (hint: a percent "
            "with at most 2 decimals: 10% or 99.5%)",
        ),
        (
            ["credits:", "  - {tenant: acme, tiers: [{below: 0.95, credit: 10%}]}"],
            "p.yaml:4: credits[0].tiers[0].below: '0.95' is not a percent (hint: a percent "
            "with at most 2 decimals: 10% or 99.5%)",
        ),
        (
            ["credits:", "  - {tenant: acme, tiers: [{below: 0%, credit: 10%}]}"],
            "p.yaml:4: credits[0].tiers[0].below: no compliance is below 0% (hint: more than "
            "0% and at most 100%)",
        ),
        (
            ["credits:", "  - {tenant: acme, tiers: [{below: 95%}]}"],
            "p.yaml:4: credits[0].tiers[0].credit: missing (hint: {below: 95%, credit: 10%})",
        ),
        (
            ["credits:", "  - {tenant: acme, tiers: []}"],
            "p.yaml:4: credits[0].tiers: an empty list: nothing is owed (hint: [{below: 95%, "
            "credit: 10%}])",
        ),
        (
            ["credits:", "  - {tenant: acme, tiers: [{below: 95%, credit: 10%}], cap: 5%}"],
            "p.yaml:4: credits[0].cap: caps per_missed only (hint: a tier's credit is its own "
            "limit)",
        ),
        (
            ["credits:", "  - {tenant: acme, per_missed: 5, cap: 0%}"],
            "p.yaml:4: credits[0].cap: 0% caps every credit at nothing (hint: more than 0% and "
            "at most 100% of the monthly fee)",
        ),
        (
            ["credits:", "  - {tenant: acme, per_missed: -5}"],
            "p.yaml:4: credits[0].per_missed: '-5' is not an amount (hint: digits with at most "
            "2 decimals: 12000 or 49.90)",
        ),
        (
            ["credits:", "  - {tenant: acme, per_missed: 0}"],
            "p.yaml:4: credits[0].per_missed: 0 owes nothing (hint: more than 0, in the "
            "customer's currency)",
        ),
        (
            ["credits:", "  - {tenant: acme, per_missed: 5}", "  - {tenant: acme, per_missed: 9}"],
            "p.yaml:5: credits[1]: is called 'tenant=acme', as credits[0] is (hint: give each "
            "term its own name, like name: vip per miss)",
        ),
        (
            ["credits: {tenant: acme}"],
            "p.yaml:3: credits: expected a list",
        ),
        (
            ["credits:", "  - acme"],
            "p.yaml:4: credits[0]: expected a mapping (key: value lines)",
        ),
    ],
)
def test_each_problem_names_file_line_and_field(lines: list[str], expected: str) -> None:
    assert problems(policy_with(*lines)) == [expected]


def test_every_problem_of_the_section_is_listed_by_line() -> None:
    found = problems(
        policy_with(
            "credits:",
            "  - {level: gold, per_missed: 5}",
            "  - tenant: acme",
            "    metrics: [resolution, bogus]",
            "    tiers: [{below: 95%, credit: 200%}]",
        )
    )
    assert [line.split(": ")[0:2] for line in found] == [
        ["p.yaml:4", "credits[0].level"],
        ["p.yaml:6", "credits[1].metrics"],
        ["p.yaml:7", "credits[1].tiers[0].credit"],
    ]


# --- the customer fees file ----------------------------------------------------------------


def test_the_example_fees() -> None:
    assert load_fees(ROOT / "examples" / "customer-fees.yaml") == {
        "acme": CustomerFee(D("12000"), "EUR"),
        "globex": CustomerFee(D("8000.50"), "USD"),
        "enterprise": CustomerFee(D("40000"), "EUR"),
    }


def test_a_fee_is_read_from_its_text_never_a_float() -> None:
    fees = parse_fees("customers:\n  a: {monthly_fee: 0.10, currency: VND}\n", "f.yaml")
    assert fees["a"].monthly_fee == D("0.10")  # not 0.1000000000000000055511151231257827
    assert fees["a"].currency == "VND"


def fee_problems(text: str) -> list[str]:
    with pytest.raises(FeesFileError) as caught:
        parse_fees(text, "fees.yaml")
    return caught.value.lines()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: -12000}\n",
            "fees.yaml:3: customers.acme.monthly_fee: '-12000' is not an amount (hint: digits "
            "with at most 2 decimals: 12000 or 49.90)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: '12,000'}\n",
            "fees.yaml:3: customers.acme.monthly_fee: '12,000' is not an amount (hint: digits "
            "with at most 2 decimals: 12000 or 49.90)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: 1.005}\n",
            "fees.yaml:3: customers.acme.monthly_fee: '1.005' is not an amount (hint: digits "
            "with at most 2 decimals: 12000 or 49.90)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: 1e4}\n",
            "fees.yaml:3: customers.acme.monthly_fee: '1e4' is not an amount (hint: digits "
            "with at most 2 decimals: 12000 or 49.90)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: 2000000000000}\n",
            "fees.yaml:3: customers.acme.monthly_fee: 2000000000000 is more than "
            "1,000,000,000,000 (hint: digits with at most 2 decimals: 12000 or 49.90)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {currency: USD}\n",
            "fees.yaml:3: customers.acme.monthly_fee: missing (hint: {monthly_fee: 12000})",
        ),
        (
            "currency: EUR\ncustomers:\n  acme:\n    monthly_fee:\n",
            "fees.yaml:4: customers.acme.monthly_fee: expected a single value",
        ),
        (
            "customers:\n  acme: {monthly_fee: 12000}\n",
            "fees.yaml:2: customers.acme.currency: missing, and the file sets no default "
            "currency (hint: currency: EUR at the top, or {monthly_fee: 12000, currency: EUR})",
        ),
        (
            "currency: euro\ncustomers:\n  acme: {monthly_fee: 12000, currency: USD}\n",
            "fees.yaml:1: currency: 'euro' is not a currency code (hint: an ISO 4217 code: "
            "EUR, USD, VND)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: 12000, fee: 1}\n",
            "fees.yaml:3: customers.acme.fee: unknown key (hint: known keys: monthly_fee, "
            "currency)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: {monthly_fee: 1}\n  acme: {monthly_fee: 2}\n",
            "fees.yaml:4: customers.acme: appears twice",
        ),
        (
            "currency: EUR\n",
            "fees.yaml:1: customers: missing (hint: currency: EUR  and  customers: {acme: "
            "{monthly_fee: 12000}})",
        ),
        (
            "currency: EUR\ncustomers: [acme]\n",
            "fees.yaml:2: customers: expected a mapping (key: value lines)",
        ),
        (
            "currency: EUR\ncustomers:\n  acme: 12000\n",
            "fees.yaml:3: customers.acme: expected a mapping (key: value lines)",
        ),
        (
            "",
            "fees.yaml:1: (document): the file is empty (hint: currency: EUR  and  customers: "
            "{acme: {monthly_fee: 12000}})",
        ),
        (
            "- a\n",
            "fees.yaml:1: (top level): expected a mapping (key: value lines) (hint: "
            "currency: EUR  and  customers: {acme: {monthly_fee: 12000}})",
        ),
        (
            "customers: {a: 1\n",
            "fees.yaml:2: (syntax): not valid YAML: did not find expected ',' or '}'",
        ),
    ],
)
def test_each_fees_problem_names_file_line_and_field(text: str, expected: str) -> None:
    assert fee_problems(text) == [expected]


def test_every_fees_problem_is_listed() -> None:
    found = fee_problems(
        "currency: EUR\ncustomers:\n  a: {monthly_fee: x}\n  b: {monthly_fee: 1, currency: us}\n"
    )
    assert [line.split(": ")[0:2] for line in found] == [
        ["fees.yaml:3", "customers.a.monthly_fee"],
        ["fees.yaml:4", "customers.b.currency"],
    ]


def test_a_misspelt_key_is_unknown_and_what_it_meant_missing() -> None:
    assert fee_problems("currency: EUR\ncustomer:\n  acme: {monthly_fee: 1}\n") == [
        "fees.yaml:1: customers: missing (hint: currency: EUR  and  customers: {acme: "
        "{monthly_fee: 12000}})",
        "fees.yaml:2: customer: unknown key (hint: known keys: currency, customers)",
    ]


def test_a_fees_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(FeesFileError, match=r"^.*missing.yaml:0: \(file\): .*cannot read"):
        load_fees(tmp_path / "missing.yaml")
    binary = tmp_path / "fees.yaml"
    binary.write_bytes(b"currency: EUR\ncustomers:\n  \xff: {}\n")
    with pytest.raises(FeesFileError, match=r"fees.yaml:3: \(document\): not UTF-8 text"):
        load_fees(binary)


def test_the_customer_fees_file_setting(tmp_path: Path) -> None:
    assert load_settings(None, environ={}).customer_fees_file == ""
    environ = {"SLAWATCH_CUSTOMER_FEES_FILE": "/etc/slawatch/fees.yaml"}
    assert load_settings(None, environ=environ).customer_fees_file == "/etc/slawatch/fees.yaml"
    config = tmp_path / "slawatch.yaml"
    config.write_text("customer_fees_file: fees.yaml\n")
    assert load_settings(config, environ={}).customer_fees_file == "fees.yaml"
