"""The SLA log store's pure parts: calendar periods, the page cursor, URLs, the row's
columns, and the period expression the compliance report groups by.

The database behaviour (migrations, upserts, reports on SQLite and PostgreSQL) is in
tests/integration/test_log_store.py. The period checks use an oracle that shares nothing
with :mod:`slawatch.reports.periods` but the definition: the local calendar day of an
instant, read with :meth:`datetime.fromtimestamp`.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from slawatch.errors import SlawatchError
from slawatch.reports import (
    COLUMNS,
    KEY_COLUMNS,
    REPORT_COLUMNS,
    SORT_COLUMNS,
    BadCursor,
    InvalidQuery,
    LogFilter,
    LogStore,
    LogStoreError,
)
from slawatch.reports import cursor as cursors
from slawatch.reports.compliance import bucket_index
from slawatch.reports.periods import (
    MAX_PERIODS,
    Bucket,
    Period,
    buckets,
    day_start_ms,
    period_start,
    time_zone,
)
from slawatch.reports.table import INDEXED_SORT_KEYS, sla_cycles
from slawatch.reports.urls import database_url, mask

HOUR = 3_600_000
DAY = 24 * HOUR
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "America/Sao_Paulo",  # DST began at midnight until 2018: 2018-11-04 had no 00:00
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",  # +05:30, no DST
    "Pacific/Apia",  # skipped 2011-12-30 altogether
    "UTC",
]


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    instant = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def oracle_day(instant_ms: int, zone: ZoneInfo) -> date:
    """The local calendar day (boundaries are whole seconds, so seconds decide)."""
    return datetime.fromtimestamp(instant_ms // 1000, zone).date()


# --- periods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Paris", date(2025, 3, 30), 23),
        ("Europe/Paris", date(2025, 3, 31), 24),
        ("Europe/Paris", date(2025, 10, 26), 25),
        ("America/New_York", date(2025, 3, 9), 23),
        ("America/New_York", date(2025, 11, 2), 25),
        ("America/Sao_Paulo", date(2018, 11, 4), 23),
    ],
)
def test_a_day_is_the_centres_calendar_day(zone: str, day: date, hours: int) -> None:
    tz = ZoneInfo(zone)
    (bucket,) = buckets(day_start_ms(day, tz), day_start_ms(day, tz) + 1, "day", tz)
    assert bucket.first_day == day
    assert bucket.end_ms - bucket.start_ms == hours * HOUR
    assert oracle_day(bucket.start_ms, tz) == day
    assert oracle_day(bucket.start_ms - 1, tz) == day - timedelta(days=1)
    assert oracle_day(bucket.end_ms, tz) == day + timedelta(days=1)


def test_a_midnight_the_clock_skipped_starts_the_day_at_its_first_instant() -> None:
    # Sao Paulo, 2018-11-04: 00:00 -03 became 01:00 -02, so the day began at 03:00Z.
    tz = ZoneInfo("America/Sao_Paulo")
    assert day_start_ms(date(2018, 11, 4), tz) == utc_ms(2018, 11, 4, 3)


def test_paris_buckets_across_the_spring_change() -> None:
    tz = ZoneInfo("Europe/Paris")
    found = buckets(utc_ms(2025, 3, 29, 12), utc_ms(2025, 3, 31, 12), "day", tz)
    assert found == [
        Bucket(date(2025, 3, 29), utc_ms(2025, 3, 28, 23), utc_ms(2025, 3, 29, 23)),
        Bucket(date(2025, 3, 30), utc_ms(2025, 3, 29, 23), utc_ms(2025, 3, 30, 22)),
        Bucket(date(2025, 3, 31), utc_ms(2025, 3, 30, 22), utc_ms(2025, 3, 31, 22)),
    ]


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    tz = ZoneInfo("America/New_York")
    sunday = utc_ms(2025, 3, 9, 12)  # the DST Sunday
    (week,) = buckets(sunday, sunday + 1, "week", tz)
    assert week.first_day == date(2025, 3, 3)
    assert week.first_day.weekday() == 0
    assert week.end_ms - week.start_ms == 7 * DAY - HOUR
    months = buckets(utc_ms(2025, 1, 31, 12), utc_ms(2025, 3, 1, 12), "month", tz)
    assert [m.first_day for m in months] == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert months[1].start_ms == utc_ms(2025, 2, 1, 5)  # midnight EST
    assert months[2].end_ms == utc_ms(2025, 4, 1, 4)  # midnight EDT
    december = buckets(utc_ms(2025, 12, 15), utc_ms(2026, 1, 2), "month", tz)
    assert [m.first_day for m in december] == [date(2025, 12, 1), date(2026, 1, 1)]


def test_a_day_the_zone_skipped_has_no_bucket() -> None:
    tz = ZoneInfo("Pacific/Apia")
    found = buckets(utc_ms(2011, 12, 29), utc_ms(2012, 1, 1), "day", tz)
    assert date(2011, 12, 30) not in [b.first_day for b in found]
    assert all(b.end_ms - b.start_ms == DAY for b in found)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    period=st.sampled_from(["day", "week", "month"]),
    start_ms=st.integers(utc_ms(2005, 1, 1), utc_ms(2030, 1, 1)),
    span_ms=st.integers(1, 120 * DAY),
    probe=st.floats(0, 1, exclude_max=True),
)
def test_every_instant_lands_in_the_one_period_of_its_local_day(
    zone: str, period: Period, start_ms: int, span_ms: int, probe: float
) -> None:
    tz = ZoneInfo(zone)
    end_ms = start_ms + span_ms
    found = buckets(start_ms, end_ms, period, tz)
    assert found[0].start_ms <= start_ms and found[-1].end_ms >= end_ms
    for before, after in itertools.pairwise(found):
        assert before.end_ms == after.start_ms
    for bucket in found:
        assert bucket.start_ms < bucket.end_ms
        assert period_start(bucket.first_day, period) == bucket.first_day
        # The period starts at the first instant whose local day is in it.
        assert period_start(oracle_day(bucket.start_ms, tz), period) == bucket.first_day
        assert period_start(oracle_day(bucket.start_ms - 1, tz), period) < bucket.first_day
    instant = start_ms + int(probe * span_ms)
    holding = [b for b in found if b.start_ms <= instant < b.end_ms]
    assert len(holding) == 1
    assert holding[0].first_day == period_start(oracle_day(instant, tz), period)


def test_bad_periods_and_zones_name_the_parameter() -> None:
    with pytest.raises(InvalidQuery) as caught:
        time_zone("Mars/Olympus_Mons")
    assert caught.value.parameter == "time_zone"
    with pytest.raises(InvalidQuery) as caught:
        buckets(0, DAY, "fortnight", ZoneInfo("UTC"))  # type: ignore[arg-type]
    assert caught.value.parameter == "period"
    with pytest.raises(InvalidQuery, match=str(MAX_PERIODS)):
        buckets(0, (MAX_PERIODS + 1) * DAY, "day", ZoneInfo("UTC"))
    assert len(buckets(0, MAX_PERIODS * DAY, "day", ZoneInfo("UTC"))) == MAX_PERIODS
    with pytest.raises(InvalidQuery) as caught:
        buckets(10**17, 10**17 + 1, "day", ZoneInfo("UTC"))
    assert caught.value.parameter == "start_ms"
    assert buckets(DAY, DAY, "day", ZoneInfo("UTC")) == []


# --- the period expression ---------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    starts=st.lists(st.integers(0, 10**13), min_size=1, max_size=40, unique=True).map(sorted),
    offsets=st.lists(st.integers(0, 10**13), min_size=1, max_size=10),
)
def test_the_period_expression_is_a_binary_search(starts: list[int], offsets: list[int]) -> None:
    instants = [starts[0] + offset for offset in offsets]
    probe = (
        sa.values(sa.column("i", sa.Integer()), sa.column("t", sa.BigInteger()), name="probe")
        .data(list(enumerate(instants)))
        .cte("probe")
    )
    query = sa.select(bucket_index(probe.c.t, starts)).select_from(probe).order_by(probe.c.i)
    with sa.create_engine("sqlite://").connect() as connection:
        found = connection.execute(query).scalars().all()
    assert found == [bisect.bisect_right(starts, t) - 1 for t in instants]


# --- the cursor --------------------------------------------------------------------------

text_values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
keys = st.tuples(text_values, text_values, st.integers(-(2**31), 2**31 - 1))


@settings(max_examples=300)
@given(
    sort=st.sampled_from(sorted(SORT_COLUMNS)),
    descending=st.booleans(),
    key=keys,
    data=st.data(),
)
def test_a_cursor_decodes_to_the_position_it_encodes(
    sort: str, descending: bool, key: tuple[str, str, int], data: st.DataObject
) -> None:
    python_type = sla_cycles.c[SORT_COLUMNS[sort]].type.python_type
    value_strategy = {
        str: text_values,
        int: st.integers(-(2**63), 2**63 - 1),
        float: st.floats(allow_nan=False, allow_infinity=False),
    }[python_type]
    value: Any = data.draw(st.none() | value_strategy)
    position = cursors.Position(sort, descending, value, key)
    token = cursors.encode(position)
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token
    decoded = cursors.decode(token, sort=sort, descending=descending, value_type=python_type)
    assert decoded == position
    assert type(decoded.value) is type(value)


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("token", "value_type"),
    [
        ("", str),
        ("not a cursor!", str),
        ("%%%", str),
        ("bm90IGpzb24", str),  # "not json"
        (_token({"v": 1}), str),
        (_token([2, "agent", 0, "a", "k", "m", 1]), str),  # another version
        (_token([1, "agent", 0, "a", "k", "m"]), str),  # short
        (_token([1, "agent", 0, 5, "k", "m", 1]), str),  # a number for text
        (_token([1, "agent", 0, "a", "k", "m", "1"]), str),  # a text cycle
        (_token([1, "agent", 0, "a", "k", "m", True]), str),
        (_token([1, "agent", 0, "a", "k", "m", 2**31]), str),
        (_token([1, "agent", 0, "a\x00", "k", "m", 1]), str),
        (_token([1, "agent", 0, "\ud800", "k", "m", 1]), str),
        (_token([1, "agent", 0, "a", None, "m", 1]), str),
        (_token([1, "agent", 0, 2**63, "k", "m", 1]), int),
        (_token([1, "agent", 0, 1.5, "k", "m", 1]), int),
        ("WzEsImFnZW50IiwwLE5hTiwiayIsIm0iLDFd", float),  # NaN
        ("A" * (cursors.MAX_LENGTH + 4), str),
    ],
)
def test_a_damaged_cursor_is_refused_naming_after(token: str, value_type: type) -> None:
    with pytest.raises(BadCursor) as caught:
        cursors.decode(token, sort="agent", descending=False, value_type=value_type)
    assert isinstance(caught.value, ValueError)
    assert caught.value.parameter == "after"
    assert str(caught.value).startswith("after: ")


def test_a_cursor_of_another_order_is_refused() -> None:
    token = cursors.encode(cursors.Position("agent", False, "a", ("k", "m", 1)))
    for sort, descending in (("requester", False), ("agent", True)):
        with pytest.raises(BadCursor, match="another order"):
            cursors.decode(token, sort=sort, descending=descending, value_type=str)


@settings(max_examples=300)
@given(garbage=st.text(max_size=80) | st.binary(max_size=60).map(base64.urlsafe_b64encode))
def test_garbage_never_raises_anything_but_bad_cursor(garbage: str | bytes) -> None:
    token = garbage.decode() if isinstance(garbage, bytes) else garbage
    with contextlib.suppress(BadCursor):
        cursors.decode(token, sort="started", descending=False, value_type=int)


# --- URLs, columns, filters --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:s3cret@db:5432/log", "postgresql://u:***@db:5432/log"),
        ("postgres://u:p%40ss@db/log?sslmode=require", "postgres://u:***@db/log?sslmode=require"),
        ("postgresql://u@db/log?password=s3cret&x=1", "postgresql://u@db/log?password=***&x=1"),
        ("sqlite:////var/lib/slawatch/log.db", "sqlite:////var/lib/slawatch/log.db"),
        ("garbage://a:b@c", "garbage://a:***@c"),
    ],
)
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask(url) == masked


def test_postgres_urls_run_on_psycopg() -> None:
    for url in ("postgres://u@h/d", "postgresql://u@h/d", "postgresql+psycopg://u@h/d"):
        assert database_url(url).drivername == "postgresql+psycopg"
    assert database_url("sqlite:///x.db").drivername == "sqlite+pysqlite"


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://u:s3cret@h/d",
        "postgresql+psycopg2://u:s3cret@h/d",
        "postgresql://u:s3cret@h",
        "sqlite://",
        "sqlite:///:memory:",
    ],
)
def test_urls_the_store_does_not_take_are_one_line_errors(url: str) -> None:
    with pytest.raises(LogStoreError) as caught:
        LogStore.open(url)
    message = str(caught.value)
    assert isinstance(caught.value, SlawatchError)
    assert "s3cret" not in message and "\n" not in message


def test_a_sqlite_file_in_a_missing_folder_is_a_one_line_error(tmp_path: object) -> None:
    with pytest.raises(LogStoreError, match="unable to open database file"):
        LogStore.open(f"sqlite:///{tmp_path}/missing/log.db")


def test_the_columns_are_the_tables() -> None:
    assert tuple(sla_cycles.c.keys()) == COLUMNS
    assert len(set(COLUMNS)) == len(COLUMNS) == 29
    assert tuple(c.name for c in sla_cycles.primary_key.columns) == KEY_COLUMNS
    assert tuple(c for c in COLUMNS if c != "fold") == REPORT_COLUMNS
    assert set(INDEXED_SORT_KEYS) <= set(SORT_COLUMNS)
    # Bytewise text on PostgreSQL (the migration's columns are checked on a server).
    ddl = str(CreateTable(sla_cycles).compile(dialect=postgresql.dialect()))
    texts = [c for c in sla_cycles.c if isinstance(c.type.as_generic(), sa.Text)]
    assert ddl.count('TEXT COLLATE "C"') == len(texts) == 18
    indexed = {tuple(c.name for c in index.columns) for index in sla_cycles.indexes}
    assert indexed == {
        (SORT_COLUMNS[key], *(k for k in KEY_COLUMNS if k != SORT_COLUMNS[key]))
        for key in INDEXED_SORT_KEYS
    }


def test_filters_check_their_instant_and_range() -> None:
    with pytest.raises(InvalidQuery) as caught:
        LogFilter(on="closed")  # type: ignore[arg-type]
    assert caught.value.parameter == "on"
    with pytest.raises(InvalidQuery) as caught:
        LogFilter(start_ms="yesterday")  # type: ignore[arg-type]
    assert caught.value.parameter == "start_ms"
    assert LogFilter().conditions() == []
    assert len(LogFilter(department="a", agent=["x", "y"], start_ms=0, end_ms=1).conditions()) == 4
