"""What the reports API and ``slawatch report`` share (slawatch/reports/export.py): the
CSV format, the columns, and how the parameters are read."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.reports import InvalidQuery
from slawatch.reports.compliance import ComplianceRow
from slawatch.reports.export import (
    COMPLIANCE_MEASURES,
    LOG_CSV_COLUMNS,
    compliance_columns,
    compliance_query,
    compliance_record,
    compliance_totals,
    csv_lines,
    log_query,
    log_record,
    parameter_of,
)
from slawatch.schemas.cycle_log import LOG_FIELDS, as_text

PARIS = "Europe/Paris"
#: 2026-11-22T12:00:00Z, a Sunday.
NOW_MS = 1_795_348_800_000


def ms(text: str) -> int:
    return parse_timestamp_ms(text)


def row(**values: object) -> dict[str, object]:
    """A store row (every log field, instants in ms) of an open ticket cycle."""
    base: dict[str, object] = dict.fromkeys(LOG_FIELDS)
    base.update(
        conversation_key="ticket:acme:48213",
        metric="first_reply",
        cycle=1,
        conversation_kind="ticket",
        conversation_id="48213",
        priority="high",
        level="gold",
        policy_version="v1",
        target_s=3600.0,
        started_ms=ms("2026-11-02T09:00:00Z"),
        status="open",
        late=False,
    )
    base.update(values)
    return base


# --- CSV ------------------------------------------------------------------------------------


def test_csv_is_rfc_4180_utf8_with_crlf_and_a_header() -> None:
    records = [
        {"a": 'Zoë, "the" boss', "b": None, "c": True},
        {"a": "two\nlines", "b": 1.5, "c": False},
    ]
    data = csv_lines(records, ("a", "b", "c"), header=True)
    assert data == (b'a,b,c\r\n"Zo\xc3\xab, ""the"" boss",,true\r\n"two\nlines",1.5,false\r\n')
    # A spreadsheet or Python reads back exactly the text written.
    back = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert back == [
        ["a", "b", "c"],
        ['Zoë, "the" boss', "", "true"],
        ["two\nlines", "1.5", "false"],
    ]


def test_csv_without_header_and_without_records() -> None:
    assert csv_lines([], ("a", "b")) == b""
    assert csv_lines([], ("a", "b"), header=True) == b"a,b\r\n"
    assert csv_lines([{"a": 0, "b": -2.25}], ("a", "b")) == b"0,-2.25\r\n"


def test_the_log_columns_are_every_field_of_a_record_once() -> None:
    record = log_record(row())
    assert sorted(LOG_CSV_COLUMNS) == sorted(record)
    assert len(set(LOG_CSV_COLUMNS)) == len(LOG_CSV_COLUMNS)
    assert LOG_CSV_COLUMNS[:3] == ("conversation_id", "requester", "department")
    assert LOG_CSV_COLUMNS[-1] == "late"


def test_a_log_line_has_rfc3339_utc_instants_and_empty_nones() -> None:
    stored = row(
        status="met",
        stopped_ms=ms("2026-11-02T10:30:00+01:00"),
        business_s=1800.0,
        remaining_s=1800.0,
        requester="ana@example.com",
    )
    assert log_record(stored) == as_text(stored)
    text = csv_lines([log_record(stored)], LOG_CSV_COLUMNS, header=True).decode()
    (line,) = list(csv.DictReader(io.StringIO(text, newline="")))
    assert line["started_at"] == "2026-11-02T09:00:00.000Z"
    assert line["stopped_at"] == "2026-11-02T09:30:00.000Z"
    assert line["due_at"] == "" and line["agent"] == ""
    assert line["late"] == "false" and line["cycle"] == "1" and line["business_s"] == "1800.0"


def test_compliance_columns_and_record() -> None:
    assert compliance_columns(("department", "level")) == (
        "period", "start", "end", "department", "level", "met", "met_avg_s", "met_max_s",
        "met_min_s", "missed", "missed_avg_s", "missed_max_s", "missed_min_s", "cancelled",
        "compliance_pct",
    )  # fmt: skip
    found = ComplianceRow(
        bucket="2026-11-02",
        bucket_start_ms=ms("2026-11-02T00:00:00+01:00"),
        bucket_end_ms=ms("2026-11-03T00:00:00+01:00"),
        group={"department": "billing"},
        met=3, met_avg_s=1.5, met_max_s=2.0, met_min_s=1.0,
        missed=1, missed_avg_s=9.0, missed_max_s=9.0, missed_min_s=9.0,
        cancelled=0, compliance_pct=75.0,
    )  # fmt: skip
    record = compliance_record(found)
    assert tuple(record) == compliance_columns(("department",))
    assert record["period"] == "2026-11-02"
    assert (record["start"], record["end"]) == (
        "2026-11-01T23:00:00.000Z",
        "2026-11-02T23:00:00.000Z",
    )
    assert record["department"] == "billing" and record["compliance_pct"] == 75.0
    text = csv_lines([record], compliance_columns(("department",)), header=True).decode()
    assert text.splitlines()[1] == (
        "2026-11-02,2026-11-01T23:00:00.000Z,2026-11-02T23:00:00.000Z,billing,3,1.5,2.0,1.0,"
        "1,9.0,9.0,9.0,0,75.0"
    )
    none = ComplianceRow("2026-11-03", 0, 1, {"department": None}, 0, None, None, None,
                         0, None, None, None, 2, None)  # fmt: skip
    assert csv_lines([compliance_record(none)], compliance_columns(("department",))) == (
        b"2026-11-03,1970-01-01T00:00:00.000Z,1970-01-01T00:00:00.001Z,,0,,,,0,,,,2,\r\n"
    )
    assert compliance_totals([found, none]) == {
        "met": 3, "missed": 1, "cancelled": 2, "compliance_pct": 75.0,
    }  # fmt: skip
    assert compliance_totals([none])["compliance_pct"] is None
    assert set(COMPLIANCE_MEASURES) <= set(record)


# --- parameters -----------------------------------------------------------------------------


def test_dates_are_local_midnights_and_instants_are_taken_as_given() -> None:
    query = compliance_query(
        {"from": ["2026-10-25"], "to": ["2026-10-26T00:00:00+01:00"], "tz": [PARIS]},
        default_time_zone="UTC",
        now_ms=NOW_MS,
    )
    # Paris left summer time on 2026-10-25: that day began at 22:00 UTC the day before.
    assert query.log_filter.start_ms == ms("2026-10-24T22:00:00Z")
    assert query.log_filter.end_ms == ms("2026-10-25T23:00:00Z")
    assert query.log_filter.on == "stop" and query.time_zone == PARIS
    assert query.period == "day" and query.by == ()


def test_without_a_range_compliance_covers_the_last_periods_to_today() -> None:
    def window(period: str) -> tuple[str, str]:
        q = compliance_query({"period": [period]}, default_time_zone=PARIS, now_ms=NOW_MS)
        return tuple(  # type: ignore[return-value]
            datetime.fromtimestamp(v / 1000, UTC).isoformat()
            for v in (q.log_filter.start_ms, q.log_filter.end_ms)
        )

    # Today is Sunday 2026-11-22 in Paris (UTC+1): the range ends at Monday's midnight.
    assert window("day") == ("2026-10-23T22:00:00+00:00", "2026-11-22T23:00:00+00:00")
    # 12 weeks: this one (from Monday 2026-11-16) and 11 before, from Monday 2026-08-31
    # (summer time, UTC+2) on.
    assert window("week") == ("2026-08-30T22:00:00+00:00", "2026-11-22T23:00:00+00:00")
    # 12 months: December 2025 to November 2026.
    assert window("month") == ("2025-11-30T23:00:00+00:00", "2026-11-22T23:00:00+00:00")
    to_only = compliance_query({"to": ["2026-03-01"], "period": ["month"]},
                               default_time_zone=PARIS, now_ms=NOW_MS)  # fmt: skip
    assert to_only.log_filter.start_ms == ms("2025-03-01T00:00:00+01:00")


def test_filters_repeat_and_empty_values_count_as_not_given() -> None:
    query = log_query(
        {
            "department": ["billing", "", "sales"],
            "agent": ["ana"],
            "level": [""],
            "status": ["met", "missed"],
            "sort": ["", "due"],
            "order": ["desc"],
            "limit": ["25"],
            "on": ["stop"],
        },
        default_time_zone="UTC",
    )
    f = query.log_filter
    assert (f.department, f.agent, f.level, f.status) == (("billing", "sales"), "ana", None,
                                                          ("met", "missed"))  # fmt: skip
    assert (query.sort, query.descending, query.limit, query.after) == ("due", True, 25, None)
    assert f.on == "stop"
    default = log_query({}, default_time_zone="UTC")
    assert (default.sort, default.descending, default.limit, default.log_filter.on) == (
        "started", False, None, "start",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("parameters", "name", "words"),
    [
        ({"sortt": ["due"]}, "sortt", "no such parameter"),
        ({"sort": ["colour"]}, "sort", "'colour' is not one of requester"),
        ({"sort": ["due", "started"]}, "sort", "given 2 times"),
        ({"order": ["up"]}, "order", "'up' is not one of asc, desc"),
        ({"on": ["end"]}, "on", "'end' is not one of start, due, stop"),
        ({"limit": ["0"]}, "limit", "from 1 to 1000"),
        ({"limit": ["1001"]}, "limit", "from 1 to 1000"),
        ({"limit": ["-3"]}, "limit", "whole number"),
        ({"limit": ["٣"]}, "limit", "whole number"),  # an Arabic-Indic digit: int() takes it
        ({"status": ["solved"]}, "status", "'solved' is not one of open, at_risk"),
        ({"metric": ["reply"]}, "metric", "'reply' is not one of first_reply"),
        ({"department": ["a\x00b"]}, "department", "NUL"),
        ({"tz": ["Mars/Olympus"]}, "tz", "not an IANA time zone"),
        ({"tz": ["Europe"]}, "tz", "not an IANA time zone"),  # a folder of the database
        ({"tz": ["../../etc/passwd"]}, "tz", "not an IANA time zone"),
        ({"from": ["2026-02-30"]}, "from", "not a day of the calendar"),
        ({"from": ["yesterday"]}, "from", "neither a date"),
        ({"to": ["2026-11-02T10:00:00"]}, "to", "neither a date"),  # no offset
        ({"from": ["2026-11-02"], "to": ["2026-11-02"]}, "to", "must come after from"),
    ],
)
def test_a_wrong_parameter_is_named(parameters, name, words) -> None:
    with pytest.raises(InvalidQuery) as raised:
        log_query(parameters, default_time_zone="UTC")
    assert parameter_of(raised.value)[0] == name
    assert words in str(raised.value)


@pytest.mark.parametrize(
    ("parameters", "name", "words"),
    [
        ({"period": ["year"]}, "period", "'year' is not one of day, week, month"),
        ({"by": ["department,colour"]}, "by", "'colour' is not one of department"),
        ({"by": ["level,level"]}, "by", "names a column twice"),
        ({"sort": ["due"]}, "sort", "no such parameter"),  # a log parameter
        ({"from": ["2026-11-03"], "to": ["2026-11-02"]}, "to", "must come after from"),
    ],
)
def test_a_wrong_compliance_parameter_is_named(parameters, name, words) -> None:
    with pytest.raises(InvalidQuery) as raised:
        compliance_query(parameters, default_time_zone="UTC", now_ms=NOW_MS)
    assert parameter_of(raised.value)[0] == name
    assert words in str(raised.value)


def test_by_is_a_comma_list_and_ignored_parameters_pass() -> None:
    query = compliance_query(
        {"by": [" department, level ,"], "format": ["csv"], "token": ["x"]},
        default_time_zone="UTC",
        now_ms=NOW_MS,
        ignored=("format", "token"),
    )
    assert query.by == ("department", "level")


def test_the_store_s_own_names_become_the_api_s() -> None:
    assert parameter_of(InvalidQuery("start_ms", "outside the calendar")) == (
        "from", "outside the calendar",
    )  # fmt: skip
    assert parameter_of(InvalidQuery("time_zone", "x")) == ("tz", "x")
    assert parameter_of(InvalidQuery("after", "damaged")) == ("after", "damaged")


def test_an_unlimited_limit_for_the_command_line() -> None:
    query = log_query({"limit": ["250000"]}, default_time_zone="UTC", max_limit=None)
    assert query.limit == 250_000
