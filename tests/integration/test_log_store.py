"""The SLA log store on both of its databases: every test runs on a SQLite file and on a
fresh PostgreSQL database (tests/conftest.py's ``postgres_url``).

Migrations, upserts and loads; the compliance report on hand-built cycles across DST
changes (every number worked out by hand in the comments); the SLA log's keyset pages
against a Python sort of the same rows, NULLs and ties included (Hypothesis); and the
query plans that make a deep page cost what page 1 does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slawatch.reports import (
    COLUMNS,
    REPORT_COLUMNS,
    SORT_COLUMNS,
    STATUSES,
    BadCursor,
    ComplianceRow,
    InvalidQuery,
    LogFilter,
    LogStore,
    LogStoreError,
)
from slawatch.reports import log_page as log_pages
from slawatch.reports.engine import create_engine
from slawatch.reports.migrate import VERSION_TABLE, head_revision
from slawatch.reports.table import INDEXED_SORT_KEYS, KEY_COLUMNS, metadata
from slawatch.reports.urls import database_url

pytestmark = pytest.mark.integration

HOUR = 3_600_000
MINUTE = 60_000


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    instant = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('log')}/log.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore.open(store_url) as opened:
        yield opened


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """An engine of the test's own on the store's database, for what the API does not do."""
    made = create_engine(database_url(store_url))
    yield made
    made.dispose()


def cycle(name: str, metric: str = "first_reply", n: int = 1, **values: Any) -> dict[str, Any]:
    """A row with every column; an open cycle of ticket ``name`` unless ``values`` say
    otherwise."""
    row: dict[str, Any] = {
        "conversation_key": f"ticket::{name}",
        "metric": metric,
        "cycle": n,
        "conversation_kind": "ticket",
        "conversation_id": name,
        "tenant": None,
        "requester": None,
        "customer_group": None,
        "channel": "email",
        "priority": "normal",
        "department": None,
        "queue": None,
        "agent": None,
        "level": "standard",
        "policy_version": "v1",
        "target_s": 3600.0,
        "started_ms": 0,
        "due_ms": None,
        "stopped_ms": None,
        "at_risk_ms": None,
        "breached_ms": None,
        "status": "open",
        "stop": None,
        "reason": None,
        "business_s": None,
        "remaining_s": None,
        "late": False,
        "fold": '{"seen": []}',
        "updated_ms": 0,
    }
    row.update(values)
    return row


def final(name: str, status: str, stopped_ms: int, business_s: float, **values: Any) -> dict:
    """A final cycle that stopped at ``stopped_ms`` after ``business_s`` working seconds."""
    return cycle(
        name,
        status=status,
        stopped_ms=stopped_ms,
        started_ms=stopped_ms - 10 * HOUR,
        stop="replied",
        business_s=business_s,
        remaining_s=3600.0 - business_s,
        **values,
    )


def key(row: dict[str, Any]) -> tuple[str, str, int]:
    return (row["conversation_key"], row["metric"], row["cycle"])


def wipe(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM sla_cycles"))


# --- migrations --------------------------------------------------------------------------


def test_migrating_an_empty_database_then_again_changes_nothing(store_url: str) -> None:
    with LogStore.open(store_url, migrate=False) as store:
        assert store.revision() is None
        assert store.migrate() == ["0001"] == [head_revision()]
        assert store.revision() == "0001"
        assert store.migrate() == []
        assert store.revision() == "0001"
    with LogStore.open(store_url) as store:  # migrate=True on a current schema
        assert store.revision() == "0001"
        assert store.count(LogFilter()) == 0


def test_the_migrated_schema_is_the_tables_definition(store: LogStore, engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": VERSION_TABLE, "compare_type": True},
        )
        assert compare_metadata(context, metadata) == []
        if engine.dialect.name == "postgresql":
            # Bytewise order whatever the server's locale: every text column is "C".
            collations = connection.execute(
                sa.text(
                    "SELECT column_name, collation_name FROM information_schema.columns"
                    " WHERE table_name = 'sla_cycles' AND data_type = 'text'"
                )
            ).all()
            assert len(collations) == 18  # every text column
            assert {collation for _, collation in collations} == {"C"}
        else:
            mode: str = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
            assert mode == "wal"


def test_stores_opening_together_on_an_empty_database_migrate_once(store_url: str) -> None:
    results: list[object] = []

    def open_one() -> None:
        try:
            with LogStore.open(store_url) as store:
                results.append(store.revision())
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            results.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["0001"] * 3


# --- upsert and load ---------------------------------------------------------------------


def test_upserting_twice_keeps_one_row_with_the_latest_values(store: LogStore) -> None:
    opened = cycle("T-1", started_ms=1_000, due_ms=3_601_000, department="billing")
    store.upsert([opened])
    store.upsert([opened])
    assert store.count(LogFilter()) == 1
    assert store.load([key(opened)]) == {key(opened): opened}

    met = {
        **opened,
        "status": "met",
        "stopped_ms": 61_000,
        "stop": "replied",
        "business_s": 60.0,
        "remaining_s": 3540.0,
        "late": True,
        "agent": "ann",
        "fold": '{"seen": ["met"]}',
        "updated_ms": 62_000,
    }
    store.upsert([met])
    assert store.count(LogFilter()) == 1
    assert store.load([key(met)]) == {key(met): met}


def test_load_returns_every_column_as_written_and_skips_unknown_keys(store: LogStore) -> None:
    rows = [
        cycle(
            f"T-{i}",
            metric=("first_reply", "resolution")[i % 2],
            n=i % 3 + 1,
            tenant="acme" if i % 2 else None,
            requester=f"requester-{i}@example.com",
            customer_group="vip",
            queue="q1",
            target_s=1234.5 + i,
            started_ms=utc_ms(2025, 3, 1) + i,
            due_ms=utc_ms(2025, 3, 2) + i,
            at_risk_ms=2**53 + i,
            breached_ms=-(2**40),
            status=STATUSES[i % len(STATUSES)],
            business_s=0.1 + i / 3,
            remaining_s=-1e-9 * i,
            late=bool(i % 2),
            fold=f'{{"text": "dé\\u00e9jà \U0001f600", "n": {i}}}',
        )
        for i in range(2_000)
    ]
    store.upsert(rows)
    wanted = [key(row) for row in rows[::2]] + [("ticket::nope", "first_reply", 1)]
    found = store.load(wanted)
    assert found == {key(row): row for row in rows[::2]}
    assert list(next(iter(found.values()))) == list(COLUMNS)
    assert store.load([]) == {}


def test_an_upsert_is_all_or_nothing(store: LogStore) -> None:
    good, bad = cycle("T-1"), cycle("T-2", status="closed")  # not a status
    with pytest.raises(sa.exc.IntegrityError):
        store.upsert([good, bad])
    assert store.count(LogFilter()) == 0
    store.upsert([good])
    assert store.count(LogFilter()) == 1


def test_an_upsert_refuses_rows_that_are_not_whole_or_repeat_a_key(store: LogStore) -> None:
    row = cycle("T-1")
    with pytest.raises(ValueError, match="missing \\['fold'\\]"):
        store.upsert([{k: v for k, v in row.items() if k != "fold"}])
    with pytest.raises(ValueError, match="extra \\['colour'\\]"):
        store.upsert([{**row, "colour": "red"}])
    with pytest.raises(ValueError, match="has its key"):
        store.upsert([row, {**row, "agent": "ann"}])
    assert store.count(LogFilter()) == 0


def test_writers_and_readers_in_threads_do_not_trip_over_each_other(store: LogStore) -> None:
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for batch in range(15):
                rows = [cycle(f"W{worker}-{batch}-{i}", started_ms=i) for i in range(50)]
                store.upsert(rows)
                store.load([key(row) for row in rows])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(30):
                store.log_page(LogFilter(), sort="started", limit=20)
                store.count(LogFilter())
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count(LogFilter()) == 3 * 15 * 50


# --- errors ------------------------------------------------------------------------------


def test_an_unreachable_server_is_a_one_line_error_without_the_password() -> None:
    with pytest.raises(LogStoreError) as caught:
        LogStore.open("postgresql://slawatch:s3cret@127.0.0.1:1/log")
    message = str(caught.value)
    assert message.startswith("postgresql://slawatch:***@127.0.0.1:1/log: ")
    assert "s3cret" not in message and "\n" not in message


def test_a_missing_database_is_a_one_line_error(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(database="no_such_database")
    with pytest.raises(LogStoreError, match='database "no_such_database" does not exist'):
        LogStore.open(url.render_as_string(hide_password=False))


# --- the compliance report ---------------------------------------------------------------

# Europe/Paris went from CET (+01) to CEST (+02) at 2025-03-30T01:00Z: that day is 23 h.
PARIS_29 = utc_ms(2025, 3, 28, 23)  # 2025-03-29 00:00 CET
PARIS_30 = utc_ms(2025, 3, 29, 23)  # 2025-03-30 00:00 CET
PARIS_31 = utc_ms(2025, 3, 30, 22)  # 2025-03-31 00:00 CEST
PARIS_APR_1 = utc_ms(2025, 3, 31, 22)  # 2025-04-01 00:00 CEST

PARIS_ROWS = [
    # 03-29: billing/gold. K stops at the very start of the range, A at 23:30 local.
    final("K", "missed", PARIS_29, 4000.0, department="billing", level="gold"),
    final("A", "met", utc_ms(2025, 3, 29, 22, 30), 600.0, department="billing", level="gold"),
    # 03-30: B at 00:30 CET (UTC still says the 29th), C at 23:30 CEST.
    final("B", "met", utc_ms(2025, 3, 29, 23, 30), 1200.0, department="billing", level="gold"),
    final("C", "missed", utc_ms(2025, 3, 30, 21, 30), 5000.0, department="billing", level="gold"),
    final("F", "cancelled", utc_ms(2025, 3, 30, 11), 20.0, department="billing", level="gold"),
    final("E", "met", utc_ms(2025, 3, 30, 10), 1800.0, department="billing", level="silver"),
    final("G", "missed", utc_ms(2025, 3, 30, 12), 7200.0, department=None, level="gold"),
    # 03-31: D at 00:30 CEST (a fixed +01 offset would say 03-30 23:30).
    final("D", "met", utc_ms(2025, 3, 30, 22, 30), 300.0, department="billing", level="gold"),
    final("L", "met", utc_ms(2025, 3, 31, 9), 900.0, department="billing", level="gold"),
    # Left out: still open; stopped before the range; stopped at its (excluded) end.
    cycle("H", department="billing", level="gold", status="breached"),
    final("I", "met", PARIS_29 - 1, 1.0, department="billing", level="gold"),
    final("J", "met", PARIS_APR_1, 1.0, department="billing", level="gold"),
]
PARIS_MARCH_29_31 = LogFilter(on="stop", start_ms=PARIS_29, end_ms=PARIS_APR_1)


def counts_of(report: ComplianceRow) -> tuple[Any, ...]:
    group = tuple(report.group.values())
    return (report.bucket, group, report.met, report.missed, report.cancelled)


def times_of(report: ComplianceRow) -> tuple[Any, ...]:
    return (
        (report.met_avg_s, report.met_max_s, report.met_min_s),
        (report.missed_avg_s, report.missed_max_s, report.missed_min_s),
        report.compliance_pct,
    )


def test_compliance_by_day_department_and_level_across_the_paris_dst_change(
    store: LogStore,
) -> None:
    store.upsert(PARIS_ROWS)
    report = store.compliance(
        PARIS_MARCH_29_31, period="day", time_zone="Europe/Paris", by=["department", "level"]
    )
    assert [counts_of(r) for r in report] == [
        # day, group, met, missed, cancelled
        ("2025-03-29", ("billing", "gold"), 1, 1, 0),  # A; K
        ("2025-03-30", ("billing", "gold"), 1, 1, 1),  # B; C; F
        ("2025-03-30", ("billing", "silver"), 1, 0, 0),  # E
        ("2025-03-30", (None, "gold"), 0, 1, 0),  # G (no department: last)
        ("2025-03-31", ("billing", "gold"), 2, 0, 0),  # D, L
    ]
    none = (None, None, None)
    assert [times_of(r) for r in report] == [
        # met avg/max/min, missed avg/max/min, compliance %
        ((600.0, 600.0, 600.0), (4000.0, 4000.0, 4000.0), 50.0),
        ((1200.0, 1200.0, 1200.0), (5000.0, 5000.0, 5000.0), 50.0),
        ((1800.0, 1800.0, 1800.0), none, 100.0),
        (none, (7200.0, 7200.0, 7200.0), 0.0),
        ((600.0, 900.0, 300.0), none, 100.0),  # (300 + 900) / 2
    ]
    assert [(r.bucket_start_ms, r.bucket_end_ms) for r in report] == [
        (PARIS_29, PARIS_30),
        (PARIS_30, PARIS_31),
        (PARIS_30, PARIS_31),
        (PARIS_30, PARIS_31),
        (PARIS_31, PARIS_APR_1),
    ]
    assert PARIS_31 - PARIS_30 == 23 * HOUR


def test_compliance_counts_only_what_the_filter_keeps(store: LogStore) -> None:
    store.upsert(PARIS_ROWS)
    only_gold_billing = LogFilter(
        on="stop", start_ms=PARIS_29, end_ms=PARIS_APR_1, department=["billing"], level="gold"
    )
    report = store.compliance(only_gold_billing, period="day", time_zone="Europe/Paris")
    assert [(r.bucket, r.group, r.met, r.missed, r.cancelled) for r in report] == [
        ("2025-03-29", {}, 1, 1, 0),
        ("2025-03-30", {}, 1, 1, 1),
        ("2025-03-31", {}, 2, 0, 0),
    ]
    nothing = LogFilter(on="stop", start_ms=PARIS_29, end_ms=PARIS_APR_1, department=[])
    assert store.compliance(nothing, period="day", time_zone="Europe/Paris") == []


def test_compliance_in_utc_puts_the_same_cycles_on_other_days(store: LogStore) -> None:
    store.upsert(PARIS_ROWS)
    utc = LogFilter(on="stop", start_ms=utc_ms(2025, 3, 29), end_ms=utc_ms(2025, 4, 1))
    report = store.compliance(utc, period="day", time_zone="UTC")
    # UTC days: the 29th holds A, B (23:30Z) and not K (22:00Z... no: K is 23:00Z on the
    # 28th); the 30th holds C, D (22:30Z), F, E, G; the 31st holds L and J (22:00Z).
    assert [(r.bucket, r.met, r.missed, r.cancelled) for r in report] == [
        ("2025-03-29", 2, 0, 0),
        ("2025-03-30", 2, 2, 1),
        ("2025-03-31", 2, 0, 0),
    ]


def test_compliance_by_week_and_month(store: LogStore) -> None:
    store.upsert(PARIS_ROWS)
    weeks = store.compliance(PARIS_MARCH_29_31, period="week", time_zone="Europe/Paris")
    # Sat 29 and Sun 30 are in the week of Monday the 24th; Monday the 31st starts one.
    assert [(r.bucket, r.met, r.missed, r.cancelled, r.compliance_pct) for r in weeks] == [
        ("2025-03-24", 3, 3, 1, 50.0),
        ("2025-03-31", 2, 0, 0, 100.0),
    ]
    assert weeks[0].bucket_start_ms == utc_ms(2025, 3, 23, 23)  # Monday 24th, 00:00 CET
    assert weeks[0].bucket_end_ms == PARIS_31
    assert weeks[0].met_max_s == 1800.0 and weeks[0].met_min_s == 600.0
    assert weeks[0].met_avg_s == pytest.approx((600 + 1200 + 1800) / 3)
    assert weeks[0].missed_avg_s == pytest.approx((4000 + 5000 + 7200) / 3)

    late = {**final("M", "met", utc_ms(2025, 3, 31, 22, 30), 50.0), "level": "gold"}
    store.upsert([late])  # 2025-04-01 00:30 CEST: April
    march_and_april = LogFilter(on="stop", start_ms=PARIS_29, end_ms=utc_ms(2025, 4, 2))
    months = store.compliance(
        march_and_april, period="month", time_zone="Europe/Paris", by=["level"]
    )
    assert [(r.bucket, r.group, r.met, r.missed, r.cancelled) for r in months] == [
        ("2025-03-01", {"level": "gold"}, 4, 3, 1),
        ("2025-03-01", {"level": "silver"}, 1, 0, 0),
        ("2025-04-01", {"level": "gold"}, 2, 0, 0),  # J and M
    ]
    assert months[0].bucket_start_ms == utc_ms(2025, 2, 28, 23)
    assert months[-1].bucket_start_ms == PARIS_APR_1
    assert months[-1].bucket_end_ms == utc_ms(2025, 4, 30, 22)


def test_compliance_across_the_new_york_fall_back(store: LogStore) -> None:
    # America/New_York went from EDT (-04) to EST (-05) at 2025-11-02T06:00Z: 25 h.
    rows = [
        final("N1", "met", utc_ms(2025, 11, 2, 3, 30), 10.0),  # 11-01 23:30 EDT
        final("N2", "met", utc_ms(2025, 11, 2, 5, 30), 20.0),  # 11-02 01:30 EDT
        final("N3", "missed", utc_ms(2025, 11, 2, 6, 30), 30.0),  # 11-02 01:30 EST
        final("N4", "met", utc_ms(2025, 11, 3, 4, 30), 40.0),  # 11-02 23:30 EST
        final("N5", "missed", utc_ms(2025, 11, 3, 5, 10), 50.0),  # 11-03 00:10 EST
    ]
    store.upsert(rows)
    window = LogFilter(on="stop", start_ms=utc_ms(2025, 11, 1, 4), end_ms=utc_ms(2025, 11, 4, 5))
    report = store.compliance(window, period="day", time_zone="America/New_York", by=["priority"])
    assert [
        (r.bucket, r.group, r.met, r.met_avg_s, r.missed, r.missed_max_s, r.compliance_pct)
        for r in report
    ] == [
        ("2025-11-01", {"priority": "normal"}, 1, 10.0, 0, None, 100.0),
        ("2025-11-02", {"priority": "normal"}, 2, 30.0, 1, 30.0, pytest.approx(200 / 3)),
        ("2025-11-03", {"priority": "normal"}, 0, None, 1, 50.0, 0.0),
    ]
    assert report[1].bucket_end_ms - report[1].bucket_start_ms == 25 * HOUR


def test_compliance_refuses_what_it_cannot_answer(store: LogStore) -> None:
    on_start = LogFilter(on="start", start_ms=0, end_ms=HOUR)
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: store.compliance(on_start, period="day", time_zone="UTC"), "on"),
        (lambda: store.compliance(LogFilter(on="stop"), period="day", time_zone="UTC"), "on"),
        (
            lambda: store.compliance(
                PARIS_MARCH_29_31, period="day", time_zone="UTC", by=["requester"]
            ),
            "by",
        ),
        (
            lambda: store.compliance(
                PARIS_MARCH_29_31, period="day", time_zone="UTC", by=["level", "level"]
            ),
            "by",
        ),
        (lambda: store.compliance(PARIS_MARCH_29_31, period="day", time_zone="Paris"), "time_zone"),
        (
            lambda: store.compliance(PARIS_MARCH_29_31, period="year", time_zone="UTC"),  # type: ignore[arg-type]
            "period",
        ),
    ]
    for call, parameter in cases:
        with pytest.raises(InvalidQuery) as caught:
            call()
        assert caught.value.parameter == parameter


# --- the SLA log: pages, order, count ----------------------------------------------------


def python_order(rows: Sequence[dict[str, Any]], sort: str, descending: bool) -> list[tuple]:
    """The documented order: the sort column, NULL greater than every value, then the
    primary key; descending is ascending reversed."""
    column = SORT_COLUMNS[sort]

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row[column]
        return (1, key(row)) if value is None else (0, value, key(row))

    ordered = [key(row) for row in sorted(rows, key=order)]
    return ordered[::-1] if descending else ordered


def every_page(
    store: LogStore, log_filter: LogFilter, sort: str, descending: bool, limit: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = None
    for _ in range(10_000):
        page = store.log_page(
            log_filter, sort=sort, descending=descending, limit=limit, after=after
        )
        assert len(page.rows) <= limit
        rows += page.rows
        if page.next_cursor is None:
            return rows
        assert len(page.rows) == limit
        after = page.next_cursor
    raise AssertionError("the pages never ended")


few_texts = st.none() | st.sampled_from(["", "ann", "Ann", "bob", "b", "émile", "Zoë", "😀"])
few_ints = st.none() | st.sampled_from([-5, 0, 7, 7, 2**40])
few_floats = st.none() | st.sampled_from([-2.5, -1e-9, 0.0, 3.25, 3.25, 1e12])

log_rows = st.lists(
    st.builds(
        lambda name, metric, n, **values: cycle(name, metric, n, **values),
        name=st.sampled_from(["a", "b", "B", "é", "aa"]),
        metric=st.sampled_from(["first_reply", "next_reply", "resolution"]),
        n=st.integers(1, 3),
        conversation_id=st.sampled_from(["10", "9", "T-1", "t-1"]),
        requester=few_texts,
        department=few_texts,
        agent=few_texts,
        level=st.sampled_from(["gold", "silver", "Gold"]),
        status=st.sampled_from(STATUSES),
        started_ms=st.sampled_from([-5, 0, 7, 7, 2**40]),
        due_ms=few_ints,
        stopped_ms=few_ints,
        remaining_s=few_floats,
    ),
    unique_by=key,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=log_rows,
    limit=st.integers(1, 7),
    departments=st.none() | st.lists(st.sampled_from(["", "ann", "bob", "Zoë"]), max_size=2),
)
def test_paging_through_every_sort_equals_a_python_sort(
    store: LogStore,
    engine: sa.Engine,
    rows: list[dict[str, Any]],
    limit: int,
    departments: list[str] | None,
) -> None:
    wipe(engine)
    store.upsert(rows)
    kept = [r for r in rows if departments is None or r["department"] in departments]
    log_filter = LogFilter(department=departments)
    assert store.count(log_filter) == len(kept)
    for sort in SORT_COLUMNS:
        for descending in (False, True):
            paged = every_page(store, log_filter, sort, descending, limit)
            assert [key(r) for r in paged] == python_order(kept, sort, descending), (
                sort,
                descending,
            )


def test_pages_hold_the_report_columns_as_written(store: LogStore) -> None:
    rows = [
        cycle(f"T-{i}", requester=None if i % 3 == 0 else f"r{i % 4}", remaining_s=i / 4)
        for i in range(12)
    ]
    store.upsert(rows)
    page = store.log_page(LogFilter(), sort="requester", limit=5)
    assert len(page.rows) == 5 and page.next_cursor is not None
    by_key = {key(row): row for row in rows}
    for got in page.rows:
        assert list(got) == list(REPORT_COLUMNS)
        assert got == {c: by_key[key(got)][c] for c in REPORT_COLUMNS}
    assert every_page(store, LogFilter(), "requester", False, 12)[:5] == page.rows


def test_a_cursor_keeps_its_place_when_rows_arrive_before_it(store: LogStore) -> None:
    store.upsert([cycle(f"T-{i:02}", started_ms=i * 10) for i in range(10)])
    first = store.log_page(LogFilter(), sort="started", limit=4)
    store.upsert([cycle("T-early", started_ms=5), cycle("T-late", started_ms=1000)])
    second = store.log_page(LogFilter(), sort="started", limit=4, after=first.next_cursor)
    assert [r["conversation_id"] for r in second.rows] == ["T-04", "T-05", "T-06", "T-07"]


def test_a_bad_cursor_or_sort_is_an_invalid_query(store: LogStore) -> None:
    store.upsert([cycle(f"T-{i}", agent=f"a{i}") for i in range(3)])
    page = store.log_page(LogFilter(), sort="agent", limit=1)
    assert page.next_cursor is not None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sort": "agent", "after": "garbage"}, "after"),
        ({"sort": "agent", "after": page.next_cursor[:-3]}, "after"),
        ({"sort": "requester", "after": page.next_cursor}, "after"),
        ({"sort": "agent", "descending": True, "after": page.next_cursor}, "after"),
        ({"sort": "fold"}, "sort"),
        ({"sort": "agent", "limit": 0}, "limit"),
        ({"sort": "agent", "limit": log_pages.MAX_LIMIT + 1}, "limit"),
    ]
    for arguments, parameter in cases:
        with pytest.raises(InvalidQuery) as caught:
            store.log_page(LogFilter(), **arguments)
        assert caught.value.parameter == parameter, arguments
        assert isinstance(caught.value, ValueError)
    with pytest.raises(BadCursor):
        store.log_page(LogFilter(), sort="agent", after="garbage")


@pytest.mark.parametrize(
    ("on", "column"), [("start", "started_ms"), ("due", "due_ms"), ("stop", "stopped_ms")]
)
def test_a_time_range_is_half_open_on_the_chosen_instant(
    store: LogStore, on: str, column: str
) -> None:
    rows = [
        cycle(f"T-{i}", started_ms=i, due_ms=i if i % 2 else None, stopped_ms=i, status="met")
        for i in range(10)
    ]
    store.upsert(rows)
    for start_ms, end_ms in ((2, 7), (None, 3), (8, None), (5, 5)):
        log_filter = LogFilter(on=on, start_ms=start_ms, end_ms=end_ms)  # type: ignore[arg-type]
        expected = [
            r
            for r in rows
            if r[column] is not None
            and (start_ms is None or r[column] >= start_ms)
            and (end_ms is None or r[column] < end_ms)
        ]
        assert store.count(log_filter) == len(expected)
        paged = every_page(store, log_filter, "started", False, 3)
        assert [key(r) for r in paged] == [key(r) for r in expected]


def test_filters_match_one_value_or_any_of_several(store: LogStore) -> None:
    store.upsert(
        [
            cycle("T-1", department="billing", agent="ann", status="met", tenant="acme"),
            cycle("T-2", department="billing", agent="bob", status="missed", queue="q1"),
            cycle("T-3", department="sales", agent=None, channel="chat", customer_group="vip"),
            cycle("T-4", department=None, metric="resolution", level="gold"),
        ]
    )
    counts = [
        (LogFilter(department="billing"), 2),
        (LogFilter(department=["billing", "sales"]), 3),
        (LogFilter(department=[]), 0),
        (LogFilter(agent="ann", status=["met", "missed"]), 1),
        (LogFilter(metric="resolution", level="gold"), 1),
        (LogFilter(channel="chat", customer_group="vip"), 1),
        (LogFilter(tenant="acme"), 1),
        (LogFilter(queue="q1"), 1),
        (LogFilter(status="open"), 2),
    ]
    for log_filter, expected in counts:
        assert store.count(log_filter) == expected, log_filter


# --- the plans ---------------------------------------------------------------------------


class Recording:
    """A connection that keeps the statements it runs."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.statements: list[sa.Select[Any]] = []

    def execute(self, statement: sa.Select[Any], *args: Any) -> Any:
        self.statements.append(statement)
        return self.connection.execute(statement, *args)


def plan(connection: sa.Connection, statement: sa.Select[Any]) -> str:
    compiled = statement.compile(dialect=connection.dialect)
    if connection.dialect.name == "postgresql":
        result = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        return "\n".join(row[0] for row in result)
    sql, params = str(compiled), tuple(compiled.params[name] for name in compiled.positiontup or ())
    result = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
    return "\n".join(row[-1] for row in result)


def test_every_indexed_sort_pages_along_its_index_without_sorting(
    store: LogStore, engine: sa.Engine
) -> None:
    rows = [
        cycle(
            f"T-{i:05}",
            requester=None if i % 7 == 0 else f"r{i % 300}",
            department=None if i % 5 == 0 else f"d{i % 9}",
            agent=None if i % 4 == 0 else f"a{i % 40}",
            started_ms=i * 1000,
            due_ms=None if i % 6 == 0 else i * 1000 + 5,
            stopped_ms=None if i % 3 == 0 else i * 1000 + 7,
            remaining_s=None if i % 3 == 0 else float(i % 100),
        )
        for i in range(6_000)
    ]
    store.upsert(rows)
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        for sort in INDEXED_SORT_KEYS:
            for descending in (False, True):
                recording = cast(sa.Connection, Recording(connection))
                first = log_pages.log_page(
                    recording, LogFilter(), sort=sort, descending=descending, limit=50
                )
                # Cursors a third of the way in, and early among the rows without a
                # value: many rows follow each, so a plan that sorts them would show.
                ordered = python_order(rows, sort, descending)
                by_key = {key(row): row for row in rows}
                nulls = [k for k in ordered if by_key[k][SORT_COLUMNS[sort]] is None]
                positions = [ordered[len(ordered) // 3], *nulls[len(nulls) // 10 :][:1]]
                for position in positions:
                    row = by_key[position]
                    token = log_pages.cursor.encode(
                        log_pages.cursor.Position(
                            sort, descending, row[SORT_COLUMNS[sort]], key(row)
                        )
                    )
                    log_pages.log_page(
                        recording, LogFilter(), sort=sort, descending=descending, after=token
                    )
                assert first.rows
                for statement in cast(Recording, recording).statements:
                    text = plan(connection, statement)
                    index = f"ix_sla_cycles_{sort}"
                    assert index in text, (sort, descending, text)
                    assert "TEMP B-TREE" not in text and "Sort" not in text, text
                    lines = [line.strip() for line in text.splitlines()]
                    assert "Seq Scan" not in text and "SCAN sla_cycles" not in lines, text


def test_the_key_columns_are_the_tie_breakers() -> None:
    assert KEY_COLUMNS == ("conversation_key", "metric", "cycle")
