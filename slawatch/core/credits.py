"""SLA credits: what a contract pays a customer back when its commitments are missed.

A :class:`CreditTerm` covers the cycles of a scope (one or more levels, customer groups or
tenants; optionally only some metrics), is settled per customer (each cycle's tenant or
customer group, :attr:`CreditTerm.customer_key`) and month, and says how the month's
misses become a credit, one of:

- **compliance tiers**: compliance is met / (met + missed) of the month's cycles
  (cancelled ones do not count); the lowest tier whose ``below`` the compliance is under
  applies, and its credit is a percentage of the customer's monthly fee;
- **per missed**: a fixed amount per missed cycle, in the customer's currency, optionally
  capped at a percentage of the monthly fee.

:func:`credit_owed` is the whole rule: counts and a fee in, the amount and a sentence
saying why out. Money is :class:`~decimal.Decimal`, computed exactly and rounded once, at
the end, to the cent, half up (:data:`ROUNDING`): what a customer checking the credit by
hand or in a spreadsheet gets (a spreadsheet's ROUND rounds halves away from zero; one
rounding per amount leaves no sum of rounded values for half-even to unbias). Compliance
is compared with a tier's ``below`` as an exact fraction: 95 % compliance is not below
95 %, however the cycles divide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction

from slawatch.core.sla import Metric

__all__ = [
    "CENT",
    "CURRENCY_HINT",
    "CUSTOMER_KEYS",
    "MAX_MONEY",
    "MONEY_HINT",
    "PERCENT_HINT",
    "ROUNDING",
    "SCOPE_FIELDS",
    "Credit",
    "CreditError",
    "CreditTerm",
    "CreditTier",
    "CustomerFee",
    "CustomerFees",
    "compliance_text",
    "credit_owed",
    "parse_currency",
    "parse_money",
    "parse_percent",
]

#: What a term's scope may name: the cycles of these levels, customer groups or tenants.
SCOPE_FIELDS = ("level", "customer_group", "tenant")
#: Who a credit is owed to: each cycle's tenant or customer group (the key of the fees).
CUSTOMER_KEYS = ("tenant", "customer_group")
#: Credits are rounded to this, with :data:`ROUNDING`.
CENT = Decimal("0.01")
ROUNDING = ROUND_HALF_UP
#: The largest monthly fee or amount per missed cycle (a trillion): exact arithmetic stays
#: far inside :data:`_PRECISION` digits.
MAX_MONEY = Decimal("1000000000000")
#: Digits of the arithmetic: fees of 15 digits times percentages of 5 never round.
_PRECISION = 60

_MONEY = re.compile(r"^\s*([0-9]{1,13})(\.[0-9]{1,2})?\s*$")
_PERCENT = re.compile(r"^\s*([0-9]{1,3}(\.[0-9]{1,2})?)\s*%\s*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MONEY_HINT = "digits with at most 2 decimals: 12000 or 49.90"
PERCENT_HINT = "a percent with at most 2 decimals: 10% or 99.5%"
CURRENCY_HINT = "an ISO 4217 code: EUR, USD, VND"


class CreditError(ValueError):
    """A credit term, tier, fee or amount that cannot work."""


def parse_money(text: str) -> Decimal:
    """``12000`` or ``49.90`` as a :class:`Decimal`; :class:`CreditError` for anything
    else (a sign, an exponent, separators, more than 2 decimals, above :data:`MAX_MONEY`)."""
    if not _MONEY.match(text):
        raise CreditError(f"{text[:40]!r} is not an amount")
    value = Decimal(text.strip())
    if value > MAX_MONEY:
        raise CreditError(f"{text.strip()} is more than {MAX_MONEY:,}")
    return value


def parse_percent(text: str) -> Decimal:
    """``10%`` or ``99.5%`` as ``Decimal("10")``/``Decimal("99.5")`` (a percent, not a
    share); :class:`CreditError` without the ``%`` sign, above 100 or with more than 2
    decimals. A bare number is refused: 0.1 could mean 0.1 % or 10 %."""
    found = _PERCENT.match(text)
    if not found:
        raise CreditError(f"{text[:40]!r} is not a percent")
    value = Decimal(found.group(1))
    if value > 100:
        raise CreditError(f"{found.group(1)}% is more than 100%")
    return value


def parse_currency(text: str) -> str:
    """A currency code: three capital letters (ISO 4217's shape; not looked up)."""
    if not _CURRENCY.match(text):
        raise CreditError(f"{text[:40]!r} is not a currency code")
    return text


@dataclass(frozen=True, slots=True)
class CustomerFee:
    """What a customer pays a month, and in which currency (credits are in it too)."""

    monthly_fee: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not self.monthly_fee.is_finite() or not 0 <= self.monthly_fee <= MAX_MONEY:
            raise CreditError(f"monthly fee {self.monthly_fee} is not in 0..{MAX_MONEY:,}")
        parse_currency(self.currency)


#: Monthly fees by customer: the tenant or customer group a term's
#: :attr:`~CreditTerm.customer_key` names.
CustomerFees = Mapping[str, CustomerFee]


@dataclass(frozen=True, slots=True)
class CreditTier:
    """Compliance under ``below_pct`` owes ``credit_pct`` of the monthly fee."""

    below_pct: Decimal
    credit_pct: Decimal

    def __post_init__(self) -> None:
        if not self.below_pct.is_finite() or not 0 < self.below_pct <= 100:
            raise CreditError(f"below {self.below_pct}%: more than 0% and at most 100%")
        if not self.credit_pct.is_finite() or not 0 <= self.credit_pct <= 100:
            raise CreditError(f"credit {self.credit_pct}%: from 0% to 100%")

    def text(self) -> str:
        """``below 95 %: 10 %``."""
        return f"below {_number(self.below_pct)} %: {_number(self.credit_pct)} %"


@dataclass(frozen=True, slots=True)
class CreditTerm:
    """One credit commitment of a contract. Exactly one of ``tiers`` (highest ``below``
    first, strictly descending, credits never falling as compliance falls) and
    ``per_missed``; ``cap_pct`` only with ``per_missed``. ``metrics`` empty: every
    metric. ``customer_key`` empty: the scope's own field for a tenant or customer-group
    scope, ``tenant`` for a level scope."""

    #: One of :data:`SCOPE_FIELDS`: the column ``values`` are matched against.
    scope: str
    #: The levels, customer groups or tenants whose cycles count (any of them).
    values: tuple[str, ...]
    metrics: tuple[Metric, ...] = ()
    tiers: tuple[CreditTier, ...] = ()
    #: The amount owed per missed cycle, in the customer's currency.
    per_missed: Decimal | None = None
    #: At most this percentage of the monthly fee (``per_missed`` only).
    cap_pct: Decimal | None = None
    customer_key: str = ""
    #: What the term is called in reports; empty: :attr:`label` makes one up.
    name: str = ""

    def __post_init__(self) -> None:
        if self.scope not in SCOPE_FIELDS:
            raise CreditError(f"scope {self.scope!r} is not one of {', '.join(SCOPE_FIELDS)}")
        if not self.values or not all(self.values):
            raise CreditError(f"{self.scope}: give at least one non-empty value")
        if len(set(self.metrics)) != len(self.metrics):
            raise CreditError("a metric is listed twice")
        if not self.customer_key:
            key = self.scope if self.scope in CUSTOMER_KEYS else "tenant"
            object.__setattr__(self, "customer_key", key)  # frozen: set once, here
        if self.customer_key not in CUSTOMER_KEYS:
            raise CreditError(f"customer_key {self.customer_key!r}: one of tenant, customer_group")
        if bool(self.tiers) == (self.per_missed is not None):
            raise CreditError("give either tiers or per_missed")
        for above, tier in zip(self.tiers, self.tiers[1:], strict=False):
            if not tier.below_pct < above.below_pct:
                raise CreditError("tiers: each below is lower than the one before")
            if tier.credit_pct < above.credit_pct:
                raise CreditError("tiers: a lower compliance never owes a smaller credit")
        if self.per_missed is not None and (
            not self.per_missed.is_finite() or not 0 < self.per_missed <= MAX_MONEY
        ):
            raise CreditError(f"per_missed {self.per_missed} is not in (0, {MAX_MONEY:,}]")
        if self.cap_pct is not None:
            if self.per_missed is None:
                raise CreditError("cap applies to per_missed only")
            if not self.cap_pct.is_finite() or not 0 < self.cap_pct <= 100:
                raise CreditError(f"cap {self.cap_pct}%: more than 0% and at most 100%")

    @property
    def scope_text(self) -> str:
        """``customer_group=enterprise``; several values comma-separated."""
        return f"{self.scope}={','.join(self.values)}"

    @property
    def metrics_text(self) -> str:
        """``first_reply,resolution``; ``all`` for every metric."""
        return ",".join(self.metrics) if self.metrics else "all"

    @property
    def label(self) -> str:
        """The ``name``, or the scope and metrics: ``level=vip first_reply,resolution``."""
        if self.name:
            return self.name
        return self.scope_text + (f" {self.metrics_text}" if self.metrics else "")

    def rule_text(self) -> str:
        """The whole rule: ``below 99 %: 5 %; below 95 %: 10 %`` or
        ``50 per missed, cap 30 %``."""
        if self.tiers:
            return "; ".join(tier.text() for tier in self.tiers)
        assert self.per_missed is not None  # __post_init__: one or the other
        cap = f", cap {_number(self.cap_pct)} %" if self.cap_pct is not None else ""
        return f"{_money(self.per_missed)} per missed{cap}"


@dataclass(frozen=True, slots=True)
class Credit:
    """What a term owes one customer for one month, and why."""

    #: The tier that applied (tiers only; ``None`` when none was reached).
    tier: CreditTier | None
    #: What applied, in short: ``below 95 %: 10 %``, ``not below 99 %``, ``90 missed at 50
    #: each, capped at 30 %``, ``no met or missed cycles``.
    rule: str
    #: Owed, rounded to the cent; ``None`` when the fee is unknown (never a silent zero).
    amount: Decimal | None
    #: ``per_missed`` reached its cap (the amount is the cap).
    capped: bool
    #: One sentence: the compliance, the counts, the rule, the arithmetic.
    why: str


def credit_owed(term: CreditTerm, met: int, missed: int, fee: CustomerFee | None) -> Credit:
    """What ``term`` owes a customer whose month had ``met`` and ``missed`` cycles in the
    term's scope, with monthly ``fee`` (``None``: unknown; then nothing is computed, the
    sentence says what would apply)."""
    if met < 0 or missed < 0:
        raise CreditError("met and missed are counts: not negative")
    with localcontext(prec=_PRECISION, rounding=ROUNDING):
        if term.tiers:
            return _by_tiers(term, met, missed, fee)
        return _per_missed(term, met, missed, fee)


def compliance_text(term: CreditTerm, met: int, missed: int) -> str:
    """``compliance 93.2 % (1,234 met, 90 missed)``; compliance rounded down, to as many
    decimals as the term's thresholds need, so the figure is below a ``below`` exactly
    when the compliance is."""
    decided = met + missed
    if not decided:
        return "no met or missed cycles"
    places = max([1, *(_places(tier.below_pct) for tier in term.tiers)])
    scaled = Fraction(100 * met, decided) * 10**places
    shown = Decimal(scaled.numerator // scaled.denominator).scaleb(-places)
    return f"compliance {shown:.{places}f} % ({met:,} met, {missed:,} missed)"


def _by_tiers(term: CreditTerm, met: int, missed: int, fee: CustomerFee | None) -> Credit:
    facts = compliance_text(term, met, missed)
    decided = met + missed
    tier = None
    if decided:
        compliance = Fraction(100 * met, decided)
        for candidate in term.tiers:  # highest threshold first: the last one under wins
            if compliance < Fraction(candidate.below_pct):
                tier = candidate
    if tier is None:
        if decided:
            highest = _number(term.tiers[0].below_pct)
            return _nothing(f"not below {highest} %", f"{facts} not below {highest} %", fee)
        return _nothing("no met or missed cycles", facts, fee)
    head = f"{facts} below {_number(tier.below_pct)} %: {_number(tier.credit_pct)} %"
    if fee is None:
        why = f"{head} of the monthly fee, which is unknown: credit not computed"
        return Credit(tier, tier.text(), None, False, why)
    amount = _cents(fee.monthly_fee * tier.credit_pct / 100)
    why = f"{head} of {_money(fee.monthly_fee)} {fee.currency} = {_money(amount)} {fee.currency}"
    return Credit(tier, tier.text(), amount, False, why)


def _per_missed(term: CreditTerm, met: int, missed: int, fee: CustomerFee | None) -> Credit:
    assert term.per_missed is not None  # not tiers: per_missed
    facts = compliance_text(term, met, missed)
    per = _money(term.per_missed)
    if not missed:
        return _nothing("none missed" if met else "no met or missed cycles", facts, fee)
    rule = f"{missed:,} missed at {per} each"
    if fee is None:
        limit = (
            f", capped at {_number(term.cap_pct)} % of the monthly fee"
            if term.cap_pct is not None
            else ""
        )
        why = (
            f"{facts}: {missed:,} missed at {per} each in the customer's currency{limit}; "
            "the monthly fee and currency are unknown: credit not computed"
        )
        return Credit(None, rule, None, False, why)
    cur = fee.currency
    uncapped = term.per_missed * missed
    why = f"{facts}: {missed:,} missed at {per} {cur} each = {_money(_cents(uncapped))} {cur}"
    if term.cap_pct is None:
        return Credit(None, rule, _cents(uncapped), False, why)
    cap = fee.monthly_fee * term.cap_pct / 100
    cap_text = f"{_number(term.cap_pct)} % of {_money(fee.monthly_fee)} {cur}"
    if uncapped > cap:
        why += f", capped at {cap_text} = {_money(_cents(cap))} {cur}"
        return Credit(None, f"{rule}, capped at {_number(term.cap_pct)} %", _cents(cap), True, why)
    why += f" (under the cap of {cap_text} = {_money(_cents(cap))} {cur})"
    return Credit(None, rule, _cents(uncapped), False, why)


def _nothing(rule: str, head: str, fee: CustomerFee | None) -> Credit:
    """No credit: zero, or ``None`` when the fee is unknown (a customer missing from the
    fees is said, never shown as owed nothing)."""
    if fee is None:
        why = f"{head}: no credit, but the monthly fee is unknown: credit not computed"
        return Credit(None, rule, None, False, why)
    return Credit(None, rule, _cents(Decimal(0)), False, f"{head}: no credit")


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUNDING)


def _places(value: Decimal) -> int:
    """Decimals written: 2 for ``99.95``, 0 for ``95``."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _number(value: Decimal | None) -> str:
    """A percentage as written, without trailing zeros: ``95``, ``99.5``."""
    if value is None:
        return ""
    places = _places(value)
    return f"{value:.{places}f}"


def _money(amount: Decimal) -> str:
    """``12,000`` for whole amounts, ``1,234.50`` otherwise."""
    try:
        whole = amount == amount.to_integral_value(rounding=ROUND_FLOOR)
    except InvalidOperation:  # not finite: never from a checked fee; shown as it is
        return str(amount)
    return f"{amount:,.0f}" if whole else f"{amount:,.2f}"
