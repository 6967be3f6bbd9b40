"""The SLA credits report (slawatch/reports/credits.py) on both of the log's databases: a
SQLite file and a fresh PostgreSQL database (tests/conftest.py's ``postgres_url``).

Two customers, acme (EUR) and globex (USD), over March and April 2027 in Paris time, with
the example policy's three kinds of term; every count and amount is worked out by hand in
the comments. Paris changes to summer time on 28 March 2027, so March runs from
2027-02-28T23:00Z to 2027-03-31T22:00Z and April to 2027-04-30T22:00Z; cycles that stop
just either side of those instants land in the month of their local day.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from slawatch.core.credits import CreditTerm, CreditTier, CustomerFee
from slawatch.core.sla import Metric
from slawatch.reports import InvalidQuery, LogStore
from slawatch.reports.credits import CreditRow, credits_report, month_range_ms

pytestmark = pytest.mark.integration

PARIS = "Europe/Paris"
HOUR = 3_600_000
_keys = itertools.count(1)


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    instant = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


MID_MARCH = utc_ms(2027, 3, 15, 10)
MID_APRIL = utc_ms(2027, 4, 15, 10)

ENTERPRISE = CreditTerm(
    "customer_group",
    ("enterprise",),
    metrics=(Metric.FIRST_REPLY, Metric.RESOLUTION),
    tiers=(
        CreditTier(Decimal("99"), Decimal("5")),
        CreditTier(Decimal("95"), Decimal("10")),
        CreditTier(Decimal("90"), Decimal("25")),
    ),
    name="enterprise compliance",
)
VIP = CreditTerm("level", ("vip",), per_missed=Decimal("50"), cap_pct=Decimal("30"))
CALLS = CreditTerm(
    "tenant",
    ("acme", "globex"),
    metrics=(Metric.CALL_ANSWER,),
    tiers=(CreditTier(Decimal("80"), Decimal("2.5")),),
)
TERMS = (ENTERPRISE, VIP, CALLS)
FEES = {
    "acme": CustomerFee(Decimal("12000"), "EUR"),
    "globex": CustomerFee(Decimal("8000.20"), "USD"),
    "enterprise": CustomerFee(Decimal("40000"), "EUR"),
    # initech: no fee.
}


def cycles(
    count: int,
    status: str,
    stopped_ms: int | None,
    *,
    tenant: str | None,
    group: str = "standard",
    level: str = "normal",
    metric: str = "first_reply",
) -> list[dict[str, Any]]:
    """``count`` cycles of their own tickets, every column set."""
    rows = []
    for _ in range(count):
        n = next(_keys)
        rows.append(
            {
                "conversation_key": f"ticket::{n}",
                "metric": metric,
                "cycle": 1,
                "conversation_kind": "call" if metric == "call_answer" else "ticket",
                "conversation_id": str(n),
                "tenant": tenant,
                "requester": None,
                "customer_group": group,
                "channel": "phone" if metric == "call_answer" else "email",
                "priority": "normal",
                "department": None,
                "queue": None,
                "agent": None,
                "level": level,
                "policy_version": "v1",
                "target_s": 3600.0,
                "started_ms": (stopped_ms or MID_MARCH) - HOUR,
                "due_ms": (stopped_ms or MID_MARCH),
                "stopped_ms": stopped_ms,
                "at_risk_ms": None,
                "breached_ms": None,
                "status": status,
                "stop": None if stopped_ms is None else "replied",
                "reason": None,
                "business_s": None if stopped_ms is None else 3000.0,
                "remaining_s": None,
                "late": False,
                "fold": '{"seen": []}',
                "updated_ms": 0,
            }
        )
    return rows


def enterprise(
    count: int, status: str, stopped_ms: int | None, metric: str = "first_reply"
) -> list[dict[str, Any]]:
    return cycles(count, status, stopped_ms, tenant="acme", group="enterprise", metric=metric)


def vip(count: int, status: str, stopped_ms: int, tenant: str | None) -> list[dict[str, Any]]:
    # Chat replies of standard customers: in no other term's scope.
    return cycles(count, status, stopped_ms, tenant=tenant, level="vip", metric="chat_reply")


def calls(count: int, status: str, stopped_ms: int, tenant: str) -> list[dict[str, Any]]:
    return cycles(count, status, stopped_ms, tenant=tenant, metric="call_answer")


ROWS = [
    # -- enterprise (customer group), first reply and resolution --------------------------
    # March: 50 met, 4 missed, 2 cancelled.
    *enterprise(40, "met", MID_MARCH),
    *enterprise(3, "missed", MID_MARCH),
    *enterprise(2, "cancelled", MID_MARCH),
    *enterprise(9, "met", MID_MARCH, "resolution"),
    *enterprise(1, "met", utc_ms(2027, 2, 28, 23, 30), "resolution"),  # 1 March 00:30 Paris
    *enterprise(1, "missed", utc_ms(2027, 3, 31, 21, 30), "resolution"),  # 31 March 23:30
    # ... not counted: another metric, February, still open.
    *enterprise(5, "missed", MID_MARCH, "next_reply"),
    *enterprise(1, "missed", utc_ms(2027, 2, 28, 22, 30)),  # 28 February 23:30 Paris
    *enterprise(1, "breached", None),
    # April: 99 met, 1 missed: exactly 99 %.
    *enterprise(99, "met", MID_APRIL),
    *enterprise(1, "missed", utc_ms(2027, 3, 31, 22, 30), "resolution"),  # 1 April 00:30
    *enterprise(1, "missed", utc_ms(2027, 4, 30, 22, 30)),  # 1 May 00:30 Paris: May
    # -- vip level, chat replies, per tenant ------------------------------------------------
    # March: acme 7 met, 3 missed; globex 10 met, 60 missed; 1 missed without a tenant.
    *vip(7, "met", MID_MARCH, "acme"),
    *vip(3, "missed", MID_MARCH, "acme"),
    *vip(10, "met", MID_MARCH, "globex"),
    *vip(60, "missed", MID_MARCH, "globex"),
    *vip(1, "missed", MID_MARCH, None),
    # April: acme 1 missed; initech (no fee) 2 missed; globex nothing.
    *vip(1, "missed", MID_APRIL, "acme"),
    *vip(2, "missed", MID_APRIL, "initech"),
    # -- calls of acme and globex -------------------------------------------------------------
    # March: acme 7 met, 3 missed; globex 8 met, 2 missed. April: globex 1 and 1, acme none.
    *calls(7, "met", MID_MARCH, "acme"),
    *calls(3, "missed", MID_MARCH, "acme"),
    *calls(8, "met", MID_MARCH, "globex"),
    *calls(2, "missed", MID_MARCH, "globex"),
    *calls(1, "met", MID_APRIL, "globex"),
    *calls(1, "missed", MID_APRIL, "globex"),
    *calls(4, "missed", MID_APRIL, "initech"),  # not in the term's tenants
]


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LogStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('log')}/log.db"
    else:
        url = request.getfixturevalue("postgres_url")
    with LogStore.open(url) as opened:
        opened.upsert(ROWS)
        yield opened


def summary(rows: list[CreditRow]) -> list[tuple[Any, ...]]:
    return [
        (r.term, r.customer, r.met, r.missed, r.cancelled, r.applied, r.credit, r.currency,
         r.status)
        for r in rows
    ]  # fmt: skip


def test_march(store: LogStore) -> None:
    rows = credits_report(store, TERMS, FEES, "2027-03", PARIS)
    assert summary(rows) == [
        # 50 / 54 = 92.6 %: below 95 %, 10 % of 40,000.
        ("enterprise compliance", "enterprise", 50, 4, 2, "below 95 %: 10 %", "4000.00", "EUR",
         "computed"),
        # 3 x 50 = 150, under 30 % of 12,000 (3,600).
        ("level=vip", "acme", 7, 3, 0, "3 missed at 50 each", "150.00", "EUR", "computed"),
        # 60 x 50 = 3,000 over 30 % of 8,000.20 = 2,400.06.
        ("level=vip", "globex", 10, 60, 0, "60 missed at 50 each, capped at 30 %", "2400.06",
         "USD", "computed"),
        ("level=vip", None, 0, 1, 0, "1 missed at 50 each", None, None, "no_customer"),
        # 70 %: below 80 %, 2.5 % of 12,000 = 300.
        ("tenant=acme,globex call_answer", "acme", 7, 3, 0, "below 80 %: 2.5 %", "300.00",
         "EUR", "computed"),
        # Exactly 80 %: not below 80 %.
        ("tenant=acme,globex call_answer", "globex", 8, 2, 0, "not below 80 %", "0.00", "USD",
         "computed"),
    ]  # fmt: skip
    assert rows[0].why == (
        "compliance 92.5 % (50 met, 4 missed) below 95 %: 10 % of 40,000 EUR = 4,000 EUR"
    )
    assert rows[2].why == (
        "compliance 14.2 % (10 met, 60 missed): 60 missed at 50 USD each = 3,000 USD, capped "
        "at 30 % of 8,000.20 USD = 2,400.06 USD"
    )
    assert rows[2].capped and not rows[1].capped
    assert rows[3].why == (
        "1 cycle without a tenant (compliance 0.0 % (0 met, 1 missed)): no customer to credit"
    )
    first = rows[0]
    assert (first.month, first.start_ms, first.end_ms) == (
        "2027-03",
        utc_ms(2027, 2, 28, 23),
        utc_ms(2027, 3, 31, 22),
    )
    assert (first.scope, first.metrics, first.customer_key, first.fee) == (
        "customer_group=enterprise",
        "first_reply,resolution",
        "customer_group",
        "40000.00",
    )
    assert first.compliance_pct == pytest.approx(100 * 50 / 54)
    assert first.terms == "below 99 %: 5 %; below 95 %: 10 %; below 90 %: 25 %"


def test_april(store: LogStore) -> None:
    rows = credits_report(store, TERMS, FEES, "2027-04", PARIS)
    assert summary(rows) == [
        # 99 met, 1 missed (the resolution that stopped at 00:30 on 1 April): 99 %, not
        # below 99 %. The miss at 00:30 on 1 May is May's.
        ("enterprise compliance", "enterprise", 99, 1, 0, "not below 99 %", "0.00", "EUR",
         "computed"),
        ("level=vip", "acme", 0, 1, 0, "1 missed at 50 each", "50.00", "EUR", "computed"),
        # initech has no fee: said, not computed, not zero.
        ("level=vip", "initech", 0, 2, 0, "2 missed at 50 each", None, None, "fee_unknown"),
        # acme is named by the term: its row says nothing was owed.
        ("tenant=acme,globex call_answer", "acme", 0, 0, 0, "no met or missed cycles",
         "0.00", "EUR", "computed"),
        # 50 %: 2.5 % of 8,000.20 = 200.005, half up 200.01.
        ("tenant=acme,globex call_answer", "globex", 1, 1, 0, "below 80 %: 2.5 %", "200.01",
         "USD", "computed"),
    ]  # fmt: skip
    assert rows[2].why == (
        "compliance 0.0 % (0 met, 2 missed): 2 missed at 50 each in the customer's currency, "
        "capped at 30 % of the monthly fee; the monthly fee and currency are unknown: credit "
        "not computed (no monthly fee for 'initech' in the customer fees file)"
    )
    assert rows[3].why == "no met or missed cycles: no credit"


def test_the_months_are_the_time_zones(store: LogStore) -> None:
    # In UTC the two cycles of 28 February 22:30Z and 23:30Z are February's, and both of
    # 31 March 21:30Z and 22:30Z are March's: 49 met, 5 missed.
    rows = credits_report(store, (ENTERPRISE,), FEES, "2027-03", "UTC")
    assert [(r.met, r.missed, r.applied, r.credit) for r in rows] == [
        (49, 5, "below 95 %: 10 %", "4000.00")
    ]


def test_without_fees_every_customer_says_its_fee_is_unknown(store: LogStore) -> None:
    rows = credits_report(store, TERMS, {}, "2027-03", PARIS)
    assert {r.status for r in rows} == {"fee_unknown", "no_customer"}
    assert all(r.credit is None and r.fee is None for r in rows)


def test_a_month_without_cycles(store: LogStore) -> None:
    rows = credits_report(store, TERMS, FEES, "2026-12", PARIS)
    # Only the customers a term names have rows.
    assert [(r.term, r.customer, r.credit) for r in rows] == [
        ("enterprise compliance", "enterprise", "0.00"),
        ("tenant=acme,globex call_answer", "acme", "0.00"),
        ("tenant=acme,globex call_answer", "globex", "0.00"),
    ]
    assert credits_report(store, (), FEES, "2027-03", PARIS) == []


def test_rows_are_json_and_csv_ready(store: LogStore) -> None:
    rows = credits_report(store, TERMS, FEES, "2027-03", PARIS)
    as_json = json.loads(json.dumps([row.as_dict() for row in rows]))
    assert list(as_json[0]) == list(CreditRow.columns())
    assert as_json[0]["credit"] == "4000.00"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CreditRow.columns())
    writer.writeheader()
    writer.writerows(row.as_dict() for row in rows)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [line["credit"] for line in table] == ["4000.00", "150.00", "2400.06", "", "300.00",
                                                  "0.00"]  # fmt: skip


@pytest.mark.parametrize(
    ("month", "zone", "parameter"),
    [
        ("2027-13", PARIS, "month"),
        ("2027-3", PARIS, "month"),
        ("March", PARIS, "month"),
        ("0000-01", PARIS, "month"),
        ("9999-12", PARIS, "month"),
        ("2027-03", "Mars/Olympus", "time_zone"),
    ],
)
def test_a_bad_month_or_zone_names_its_parameter(month: str, zone: str, parameter: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        month_range_ms(month, zone)
    assert caught.value.parameter == parameter
