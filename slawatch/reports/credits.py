"""The SLA credits report: per credit term and customer, what one month's missed
commitments owe, and why.

For each :class:`~slawatch.core.credits.CreditTerm` (the policy's ``credits``), one
compliance query over the cycles of the term's scope and metrics that stopped in the
month (in the report's time zone), grouped by the term's customer key (tenant or customer
group); each group is a customer, whose fee comes from the fees (``customer_fees_file``)
and whose credit is :func:`~slawatch.core.credits.credit_owed`. A term whose scope names
customers (``tenant: acme`` settled per tenant) has a row for each of them even in a month
without cycles, so "nothing owed" is said rather than left out. A customer without a fee
has a row saying so (``status`` ``fee_unknown``, no credit), never a zero; cycles without
a tenant (or customer group) have a row too (``no_customer``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any, Literal

from slawatch.core.credits import (
    CreditTerm,
    CustomerFee,
    CustomerFees,
    compliance_text,
    credit_owed,
)
from slawatch.reports.errors import InvalidQuery
from slawatch.reports.filters import LogFilter
from slawatch.reports.periods import day_start_ms, next_period, time_zone
from slawatch.reports.store import LogStore

__all__ = ["CreditRow", "CreditStatus", "credits_report", "month_range_ms"]

#: ``computed``: ``credit`` is what is owed (maybe 0); ``fee_unknown``: the customer has no
#: fee, nothing was computed; ``no_customer``: cycles without a tenant (or customer group).
CreditStatus = Literal["computed", "fee_unknown", "no_customer"]
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@dataclass(frozen=True, slots=True)
class CreditRow:
    """One term and customer for one month. Every field is JSON and CSV ready: text,
    integers, a float, booleans; money is text with two decimals (``"1200.00"``), exact,
    never a float. :meth:`columns` is the order of a table."""

    #: The month, ``YYYY-MM``, and its instants ``[start_ms, end_ms)`` in the time zone.
    month: str
    start_ms: int
    end_ms: int
    #: The term's ``name``, or its scope and metrics (``customer_group=enterprise``).
    term: str
    #: Which cycles count: ``level=vip``, ``tenant=acme,globex``.
    scope: str
    #: ``first_reply,resolution``; ``all`` for every metric.
    metrics: str
    #: Who is owed: ``tenant`` or ``customer_group``, and its value (``None``: cycles
    #: without one).
    customer_key: str
    customer: str | None
    #: The month's final cycles in the scope: met, missed, cancelled (not counted).
    met: int
    missed: int
    cancelled: int
    #: met / (met + missed) * 100; ``None`` with neither.
    compliance_pct: float | None
    #: The term's whole rule (``below 99 %: 5 %; below 95 %: 10 %``, ``50 per missed, cap
    #: 30 %``) and what of it applied (``below 95 %: 10 %``, ``not below 99 %``,
    #: ``90 missed at 50 each, capped at 30 %``).
    terms: str
    applied: str
    #: The monthly fee and currency; ``None`` when the customer has none.
    fee: str | None
    currency: str | None
    #: Owed, rounded to the cent (half up); ``None`` unless ``status`` is ``computed``.
    credit: str | None
    #: ``per_missed`` reached its cap.
    capped: bool
    status: CreditStatus
    #: One sentence: ``compliance 93.2 % (1,234 met, 90 missed) below 95 %: 10 % of
    #: 12,000 EUR = 1,200 EUR``.
    why: str

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The fields, in table order."""
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """The row as a JSON object (keys in :meth:`columns` order)."""
        return asdict(self)


def month_range_ms(month: str, time_zone_name: str) -> tuple[int, int]:
    """The instants ``[start_ms, end_ms)`` of ``month`` (``YYYY-MM``) in the zone;
    :class:`InvalidQuery` (``month`` or ``time_zone``) when either is wrong."""
    found = _MONTH.match(month)
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise InvalidQuery("month", f"{month[:40]!r} is not a month like 2027-03")
    zone = time_zone(time_zone_name)
    first = date(int(found.group(1)), int(found.group(2)), 1)
    try:
        return day_start_ms(first, zone), day_start_ms(next_period(first, "month"), zone)
    except (OverflowError, ValueError):  # 9999-12: no next month in the calendar
        raise InvalidQuery("month", f"{month!r} is outside the calendar") from None


def credits_report(
    store: LogStore,
    terms: Sequence[CreditTerm],
    fees: CustomerFees,
    month: str,
    time_zone: str,
) -> list[CreditRow]:
    """The credits of ``month`` (``YYYY-MM`` in ``time_zone``): per term, in order, one row
    per customer, by customer name (cycles without a customer last)."""
    start_ms, end_ms = month_range_ms(month, time_zone)
    rows: list[CreditRow] = []
    for term in terms:
        names = list(term.values)
        log_filter = LogFilter(
            level=names if term.scope == "level" else None,
            customer_group=names if term.scope == "customer_group" else None,
            tenant=names if term.scope == "tenant" else None,
            metric=[str(metric) for metric in term.metrics] or None,
            start_ms=start_ms,
            end_ms=end_ms,
            on="stop",
        )
        counts: dict[str | None, list[int]] = {}
        if term.scope == term.customer_key:  # the scope names its customers: each has a row
            counts.update({value: [0, 0, 0] for value in term.values})
        report = store.compliance(log_filter, period="month", time_zone=time_zone,
                                  by=[term.customer_key])  # fmt: skip
        for found in report:  # one bucket: the range is the month
            cell = counts.setdefault(found.group[term.customer_key], [0, 0, 0])
            cell[0] += found.met
            cell[1] += found.missed
            cell[2] += found.cancelled
        ordered = sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or ""))
        for customer, (met, missed, cancelled) in ordered:
            rows.append(
                _row(term, customer, met, missed, cancelled, fees, (month, start_ms, end_ms))
            )
    return rows


def _row(
    term: CreditTerm,
    customer: str | None,
    met: int,
    missed: int,
    cancelled: int,
    fees: CustomerFees,
    when: tuple[str, int, int],
) -> CreditRow:
    fee: CustomerFee | None = fees.get(customer) if customer is not None else None
    credit = credit_owed(term, met, missed, fee)
    status: CreditStatus = "computed"
    why = credit.why
    if customer is None:
        status = "no_customer"
        count = met + missed + cancelled
        why = (
            f"{count:,} cycle{'' if count == 1 else 's'} without a {term.customer_key} "
            f"({compliance_text(term, met, missed)}): no customer to credit"
        )
    elif fee is None:
        status = "fee_unknown"
        why = f"{why} (no monthly fee for {customer!r} in the customer fees file)"
    decided = met + missed
    return CreditRow(
        month=when[0],
        start_ms=when[1],
        end_ms=when[2],
        term=term.label,
        scope=term.scope_text,
        metrics=term.metrics_text,
        customer_key=term.customer_key,
        customer=customer,
        met=met,
        missed=missed,
        cancelled=cancelled,
        compliance_pct=100.0 * met / decided if decided else None,
        terms=term.rule_text(),
        applied=credit.rule,
        fee=f"{fee.monthly_fee:.2f}" if fee is not None else None,
        currency=fee.currency if fee is not None else None,
        credit=f"{credit.amount:.2f}" if credit.amount is not None else None,
        capped=credit.capped,
        status=status,
        why=why,
    )
