"""What the reports API (:mod:`slawatch.web.reports`) and ``slawatch report`` share: how
a report's parameters are read, the columns each report has, and how a row becomes JSON
and a CSV line. One definition, so a CSV from the web page and one from the command line
are the same file, and a parameter means the same thing in both.

**Parameters** come as a mapping of names to every value given (a URL's query string;
the CLI builds the same mapping from its options). The filters (:data:`FILTERS`) may be
repeated, meaning any of them; every other parameter may be given once. An empty value
counts as not given (what an HTML form sends for a blank field). ``from`` and ``to`` are
a date ``YYYY-MM-DD`` (the start of that day in ``tz``) or an RFC 3339 instant with an
offset; the range is half-open, ``[from, to)``. A wrong or unknown parameter raises
:class:`~slawatch.reports.errors.InvalidQuery` naming it (:func:`parameter_of` also names
the parameter behind a store's own ``InvalidQuery``).

**CSV** is RFC 4180 through the stdlib :mod:`csv` module: UTF-8, ``\\r\\n`` line ends, a
header line, fields quoted only when they need it; instants are RFC 3339 UTC text, a
missing value is an empty field, a boolean is ``true`` or ``false``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slawatch.core.sla import Metric
from slawatch.core.timestamps import InvalidTimestamp, format_timestamp_ms, parse_timestamp_ms
from slawatch.reports.compliance import GROUP_COLUMNS, ComplianceRow
from slawatch.reports.credits import CreditRow, month_range_ms
from slawatch.reports.errors import InvalidQuery, LogStoreError
from slawatch.reports.filters import VALUE_FIELDS, LogFilter, On, Values
from slawatch.reports.periods import PERIODS, Period, day_start_ms, local_day, period_start
from slawatch.reports.store import LogStore
from slawatch.reports.table import SORT_COLUMNS, STATUSES
from slawatch.reports.urls import database_url, mask
from slawatch.schemas.cycle_log import as_text

# --- parameters ---------------------------------------------------------------------------

#: The filters both reports take, each repeatable (any of the values).
FILTERS: Final = VALUE_FIELDS
#: The time range and the time zone dates and periods are read in.
RANGE: Final = ("from", "to", "tz")
COMPLIANCE_PARAMETERS: Final = (*FILTERS, *RANGE, "period", "by")
LOG_PARAMETERS: Final = (*FILTERS, *RANGE, "on", "sort", "order", "limit", "after")
CREDITS_PARAMETERS: Final = ("month", "tz")
#: The values a filter may take, where slawatch knows them all (a typo is an error).
FILTER_VALUES: Final[Mapping[str, tuple[str, ...]]] = {
    "status": STATUSES,
    "metric": tuple(metric.value for metric in Metric),
}
#: The instants a log's time range may apply to.
ONS: Final = ("start", "due", "stop")
ORDERS: Final = ("asc", "desc")
#: Rows in a page of the log's JSON when ``limit`` is not given, and the most allowed.
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000
#: A compliance report without ``from`` covers this many periods, the one holding the
#: last day of the range (today, without ``to``) included: 30 days, 12 weeks, 12 months.
DEFAULT_PERIODS: Final[Mapping[str, int]] = {"day": 30, "week": 12, "month": 12}

#: What a query string gives: every value of each parameter, in order.
Parameters = Mapping[str, Sequence[str]]

#: The store's names for what the API calls otherwise.
_STORE_PARAMETERS: Final = {"start_ms": "from", "end_ms": "to", "time_zone": "tz"}
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LIMIT: Final = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class ComplianceQuery:
    """A compliance report's arguments: the cycles that stopped in
    ``[log_filter.start_ms, log_filter.end_ms)``, per ``period`` in ``time_zone``."""

    log_filter: LogFilter
    period: Period
    time_zone: str
    by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A page of the SLA log's arguments (``limit`` None: not given)."""

    log_filter: LogFilter
    sort: str
    descending: bool
    limit: int | None
    after: str | None


def compliance_query(
    parameters: Parameters, *, default_time_zone: str, now_ms: int, ignored: Iterable[str] = ()
) -> ComplianceQuery:
    """The compliance report ``parameters`` ask for. Without ``to`` the range ends with
    today (in ``tz``, at ``now_ms``); without ``from`` it starts :data:`DEFAULT_PERIODS`
    periods back. ``ignored`` names parameters that are allowed but not the report's."""
    _refuse_unknown(parameters, COMPLIANCE_PARAMETERS, ignored)
    period = cast(Period, _choice(parameters, "period", PERIODS) or "day")
    tz, zone = _zone(parameters, default_time_zone)
    end_ms = _instant(parameters, "to", zone)
    if end_ms is None:
        end_ms = day_start_ms(local_day(now_ms, zone) + timedelta(days=1), zone)
    start_ms = _instant(parameters, "from", zone)
    if start_ms is None:
        start_ms = _periods_back(end_ms, period, zone)
    _check_range(start_ms, end_ms)
    by = _group_columns(parameters)
    log_filter = LogFilter(**_filters(parameters), start_ms=start_ms, end_ms=end_ms, on="stop")
    return ComplianceQuery(log_filter, period, tz, by)


def log_query(
    parameters: Parameters,
    *,
    default_time_zone: str,
    max_limit: int | None = MAX_LIMIT,
    ignored: Iterable[str] = (),
) -> LogQuery:
    """The page of the SLA log ``parameters`` ask for (``limit`` up to ``max_limit``, or
    any with None)."""
    _refuse_unknown(parameters, LOG_PARAMETERS, ignored)
    _, zone = _zone(parameters, default_time_zone)
    start_ms = _instant(parameters, "from", zone)
    end_ms = _instant(parameters, "to", zone)
    if start_ms is not None and end_ms is not None:
        _check_range(start_ms, end_ms)
    on = cast(On, _choice(parameters, "on", ONS) or "start")
    sort = _choice(parameters, "sort", tuple(SORT_COLUMNS)) or "started"
    order = _choice(parameters, "order", ORDERS) or "asc"
    log_filter = LogFilter(**_filters(parameters), start_ms=start_ms, end_ms=end_ms, on=on)
    return LogQuery(
        log_filter,
        sort=sort,
        descending=order == "desc",
        limit=_limit(parameters, max_limit),
        after=_one(parameters, "after"),
    )


@dataclass(frozen=True, slots=True)
class CreditsQuery:
    """A credits report's arguments: the month (``YYYY-MM``) in ``time_zone``."""

    month: str
    time_zone: str


def credits_query(
    parameters: Parameters, *, default_time_zone: str, now_ms: int, ignored: Iterable[str] = ()
) -> CreditsQuery:
    """The credits report ``parameters`` ask for; without ``month``, the last whole month
    (in ``tz``, at ``now_ms``): what is invoiced."""
    _refuse_unknown(parameters, CREDITS_PARAMETERS, ignored)
    tz, zone = _zone(parameters, default_time_zone)
    month = _one(parameters, "month")
    if month is None:
        this_month = local_day(now_ms, zone).replace(day=1)
        month = (this_month - timedelta(days=1)).strftime("%Y-%m")
    month_range_ms(month, tz)  # a month of the calendar, or InvalidQuery("month")
    return CreditsQuery(month, tz)


#: The credits report's columns (JSON keys and CSV header).
CREDITS_COLUMNS: Final = CreditRow.columns()


def credits_document(query: CreditsQuery, rows: Sequence[CreditRow]) -> dict[str, Any]:
    """The credits report as the API's JSON."""
    return {
        "month": query.month,
        "time_zone": query.time_zone,
        "rows": [row.as_dict() for row in rows],
    }


def parameter_of(error: InvalidQuery) -> tuple[str, str]:
    """The parameter an :class:`InvalidQuery` is about, as the API names it, and what is
    wrong with it (the message without the parameter's name)."""
    message = str(error).removeprefix(f"{error.parameter}: ")
    return _STORE_PARAMETERS.get(error.parameter, error.parameter), message


def _refuse_unknown(parameters: Parameters, own: Sequence[str], ignored: Iterable[str]) -> None:
    allowed = {*own, *ignored}
    unknown = sorted(name for name in parameters if name not in allowed)
    if unknown:
        raise InvalidQuery(unknown[0], f"no such parameter; this report takes {', '.join(own)}")


def _given(parameters: Parameters, name: str) -> list[str]:
    values = [value for value in parameters.get(name, ()) if value != ""]
    for value in values:
        if "\x00" in value:  # no database text holds one
            raise InvalidQuery(name, f"{value!r} holds a NUL character")
    return values


def _one(parameters: Parameters, name: str) -> str | None:
    values = _given(parameters, name)
    if len(values) > 1:
        raise InvalidQuery(name, f"given {len(values)} times: give it once")
    return values[0] if values else None


def _choice(parameters: Parameters, name: str, choices: Sequence[str]) -> str | None:
    value = _one(parameters, name)
    if value is not None and value not in choices:
        raise InvalidQuery(name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _filters(parameters: Parameters) -> dict[str, Values]:
    found: dict[str, Values] = {}
    for name in FILTERS:
        values = _given(parameters, name)
        allowed = FILTER_VALUES.get(name)
        for value in values:
            if allowed is not None and value not in allowed:
                raise InvalidQuery(name, f"{value!r} is not one of {', '.join(allowed)}")
        if values:
            found[name] = values[0] if len(values) == 1 else tuple(values)
    return found


def _zone(parameters: Parameters, default: str) -> tuple[str, ZoneInfo]:
    name = _one(parameters, "tz") or default
    try:
        return name, ZoneInfo(name)
    # A directory of the database ("Europe") is an OSError, a name too long for a path too.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidQuery("tz", f"{name!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def _instant(parameters: Parameters, name: str, zone: ZoneInfo) -> int | None:
    text = _one(parameters, name)
    if text is None:
        return None
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidQuery(name, f"{text!r} is not a day of the calendar") from None
        # As for instants (parse_timestamp_ms): an earlier year is a typo, and would not
        # print as RFC 3339's four digits either.
        if day.year < 1970:
            raise InvalidQuery(name, f"{text!r} is before 1970")
        return day_start_ms(day, zone)
    try:
        return parse_timestamp_ms(text)
    except InvalidTimestamp:
        raise InvalidQuery(
            name,
            f"{text!r} is neither a date (2026-11-02) nor an RFC 3339 instant with an offset "
            "(2026-11-02T09:00:00Z)",
        ) from None


def _check_range(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise InvalidQuery("to", "must come after from: the range is [from, to)")


def _periods_back(end_ms: int, period: Period, zone: ZoneInfo) -> int:
    """The start of the :data:`DEFAULT_PERIODS` periods that end with the one holding the
    range's last instant."""
    count = DEFAULT_PERIODS[period]
    first = period_start(local_day(end_ms - 1, zone), period)
    if period == "day":
        first -= timedelta(days=count - 1)
    elif period == "week":
        first -= timedelta(weeks=count - 1)
    else:
        year, month = divmod(first.year * 12 + first.month - 1 - (count - 1), 12)
        first = date(year, month + 1, 1)
    return day_start_ms(first, zone)


def _group_columns(parameters: Parameters) -> tuple[str, ...]:
    text = _one(parameters, "by") or ""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in GROUP_COLUMNS:
            raise InvalidQuery("by", f"{name!r} is not one of {', '.join(GROUP_COLUMNS)}")
    if len(set(names)) != len(names):
        raise InvalidQuery("by", f"{text!r} names a column twice")
    return tuple(names)


def _limit(parameters: Parameters, max_limit: int | None) -> int | None:
    text = _one(parameters, "limit")
    if text is None:
        return None
    top = "" if max_limit is None else f" to {max_limit}"
    if not _LIMIT.fullmatch(text) or int(text) < 1 or (max_limit and int(text) > max_limit):
        raise InvalidQuery("limit", f"{text!r} is not a whole number from 1{top}")
    return int(text)


# --- the store ----------------------------------------------------------------------------


def open_store(url: str) -> LogStore:
    """The SLA log store at ``url``, for reading: never migrated, and never created (a
    SQLite file that does not exist, or a database no sink has set up, raises
    :class:`LogStoreError` instead of being made empty)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).is_file():
        raise LogStoreError(f"{mask(url)}: no such file (no log sink has written an SLA log)")
    store = LogStore.open(url, migrate=False)
    try:
        if store.revision() is None:
            raise LogStoreError(
                f"{store.url}: holds no SLA log yet (a log sink creates it; or run "
                "`slawatch log-sink --migrate`)"
            )
    except BaseException:
        store.close()
        raise
    return store


# --- columns and records ------------------------------------------------------------------

#: A compliance row's figures, after its period and groups.
COMPLIANCE_MEASURES: Final = (
    "met",
    "met_avg_s",
    "met_max_s",
    "met_min_s",
    "missed",
    "missed_avg_s",
    "missed_max_s",
    "missed_min_s",
    "cancelled",
    "compliance_pct",
)
#: The SLA log's CSV columns: who and what first, then the times, then the rest.
LOG_CSV_COLUMNS: Final = (
    "conversation_id",
    "requester",
    "department",
    "agent",
    "level",
    "metric",
    "cycle",
    "status",
    "stop",
    "reason",
    "started_at",
    "due_at",
    "stopped_at",
    "remaining_s",
    "business_s",
    "target_s",
    "at_risk_at",
    "breached_at",
    "channel",
    "queue",
    "priority",
    "customer_group",
    "tenant",
    "conversation_kind",
    "conversation_key",
    "policy_version",
    "late",
)


def compliance_columns(by: Sequence[str]) -> tuple[str, ...]:
    """A compliance report's columns: the period, its instants, the ``by`` groups, then
    :data:`COMPLIANCE_MEASURES`."""
    return ("period", "start", "end", *by, *COMPLIANCE_MEASURES)


def compliance_record(row: ComplianceRow) -> dict[str, Any]:
    """A compliance row as the API and the CSV give it (keys :func:`compliance_columns`)."""
    record: dict[str, Any] = {
        "period": row.bucket,
        "start": format_timestamp_ms(row.bucket_start_ms),
        "end": format_timestamp_ms(row.bucket_end_ms),
    }
    record.update(row.group)
    for name in COMPLIANCE_MEASURES:
        record[name] = getattr(row, name)
    return record


def compliance_totals(rows: Iterable[ComplianceRow]) -> dict[str, Any]:
    """Met, missed and cancelled over ``rows``, and the compliance they make (None when
    nothing was met or missed)."""
    met = missed = cancelled = 0
    for row in rows:
        met, missed, cancelled = met + row.met, missed + row.missed, cancelled + row.cancelled
    decided = met + missed
    return {
        "met": met,
        "missed": missed,
        "cancelled": cancelled,
        "compliance_pct": 100.0 * met / decided if decided else None,
    }


def compliance_document(query: ComplianceQuery, rows: Sequence[ComplianceRow]) -> dict[str, Any]:
    """The compliance report as the API's JSON gives it."""
    log_filter = query.log_filter
    assert log_filter.start_ms is not None and log_filter.end_ms is not None
    return {
        "period": query.period,
        "time_zone": query.time_zone,
        "from": format_timestamp_ms(log_filter.start_ms),
        "to": format_timestamp_ms(log_filter.end_ms),
        "by": list(query.by),
        "rows": [compliance_record(row) for row in rows],
        "totals": compliance_totals(rows),
    }


def log_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the store's SLA log as the API gives it: instants as RFC 3339 ``*_at``."""
    return as_text(dict(row))


# --- CSV ----------------------------------------------------------------------------------


def csv_lines(
    records: Iterable[Mapping[str, Any]], columns: Sequence[str], *, header: bool = False
) -> bytes:
    """``records`` as CSV lines of ``columns`` (UTF-8), after a header line if asked."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for record in records:
        writer.writerow([csv_field(record[name]) for name in columns])
    return buffer.getvalue().encode()


#: What a spreadsheet reads as the start of a formula in a cell of text.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_field(value: object) -> str:
    """One field's text: empty for None, ``true``/``false`` for a boolean. Text that a
    spreadsheet would run as a formula (a requester called ``=HYPERLINK(...)``: text comes
    from customers) gets a leading ``'``, which spreadsheets show as text (OWASP, CSV
    injection); numbers, negative ones included, are written as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    return str(value)
