"""The ``calendars`` section: business hours, holidays and exceptions, in a time zone.

Each calendar becomes a core :class:`~slawatch.core.business_hours.BusinessCalendar`;
:data:`ALWAYS_OPEN` names the built-in calendar in which every instant is working time.
A calendar without working time for more than :data:`MAX_CLOSED_DAYS` days in a row,
anywhere in time, is refused, however its holidays and exceptions are written.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from slawatch.core.business_hours import (
    DAY_MS,
    BusinessCalendar,
    CalendarError,
    LocalSpan,
    local_midnight_ms,
    local_ms,
)
from slawatch.core.calendar import Calendar
from slawatch.policy.problems import PolicyReader

#: The built-in calendar: every instant is working time.
ALWAYS_OPEN = "24x7"
#: The keys of one calendar.
CALENDAR_KEYS = ("time_zone", "hours", "holidays", "exceptions")
#: The longest time-zone name read (the longest IANA name has 32 characters).
MAX_ZONE_CHARS = 64
#: The weekdays ``hours`` names, Monday first; ``mon-fri`` is a range, ``daily`` all seven.
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY = "daily"
#: The one key of an entry of ``exceptions``.
EXCEPTION_KINDS = ("open", "closed")
#: The longest a calendar may go without working time: a year (a leap year's days).
MAX_CLOSED_DAYS = 366
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _minutes(hours: str, minutes: str) -> int | None:
    h, m = int(hours), int(minutes)
    if m >= 60 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _days(spec: str) -> list[int] | None:
    """``mon``, ``mon-fri``, ``sat-sun`` (a range may wrap: ``fri-mon``)."""
    spec = spec.strip().lower()
    if spec == DAILY:
        return list(range(7))
    first, _, last = spec.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        return None
    a, b = DAYS.index(first), DAYS.index(last or first)
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def _local_datetime(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


def _local_text(ms: int) -> str:
    """A local wall-clock instant (:func:`local_ms`) as ``2027-01-01 00:00``."""
    day, rest = divmod(ms, DAY_MS)
    try:
        when = date.fromordinal(_EPOCH_ORDINAL + day)
    except (ValueError, OverflowError):
        return "the end of 9999" if ms > 0 else "the start of year 1"
    return f"{when} {rest // 3_600_000:02d}:{rest // 60_000 % 60:02d}"


def read_time_zone(r: PolicyReader, node: yaml.Node, field: str) -> str | None:
    """The IANA time-zone name at ``node``, checked with :mod:`zoneinfo`; None, with the
    problem recorded, when it is not one (calendars' ``time_zone``, queues' ``timezone``)."""
    zone = r.text(node, field)
    if zone is None:
        return None
    try:
        if len(zone) > MAX_ZONE_CHARS:  # IANA names are short; zoneinfo recurses
            raise ValueError("too long")
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
        r.fail(
            node,
            field,
            f"unknown time zone {zone!r}",
            hint="an IANA zone: Europe/London, America/New_York, Asia/Ho_Chi_Minh",
        )
        return None
    return zone


def read_calendars(r: PolicyReader, node: yaml.Node) -> dict[str, Calendar | None]:
    """The ``calendars`` section by name; None for a calendar with problems."""
    calendars: dict[str, Calendar | None] = {}
    for name, (name_node, calendar_node) in r.mapping(node, "calendars").items():
        if name == ALWAYS_OPEN:
            r.fail(name_node, f"calendars.{name}", f"{ALWAYS_OPEN} is built in (always open)")
            continue
        calendars[name] = None
        with r.guard(calendar_node, f"calendars.{name}"):
            calendars[name] = _calendar(r, name, calendar_node)
    return calendars


def _calendar(r: PolicyReader, name: str, node: yaml.Node) -> Calendar | None:
    field = f"calendars.{name}"
    keys = r.mapping(node, field, CALENDAR_KEYS)
    if not keys:
        return None
    zone = None
    if "time_zone" not in keys:
        r.fail(node, field, "time_zone is missing", hint="an IANA zone: Asia/Ho_Chi_Minh")
    else:
        zone = read_time_zone(r, keys["time_zone"][1], f"{field}.time_zone")
    weekly: dict[int, list[tuple[int, int]]] = {}
    if "hours" not in keys:
        r.fail(node, field, "hours is missing", hint='mon-fri: ["09:00-17:00"]')
    else:
        for day_spec, (day_node, spans_node) in r.mapping(
            keys["hours"][1], f"{field}.hours"
        ).items():
            path = f"{field}.hours.{day_spec}"
            days = _days(day_spec)
            if days is None:
                r.fail(
                    day_node,
                    path,
                    "not a weekday or range of weekdays",
                    hint="mon, tue, ..., sun, a range like mon-fri, or daily",
                )
                continue
            for span_node in r.sequence(spans_node, path):
                text = r.text(span_node, path)
                match = _SPAN.match(text or "")
                span = None
                if match:
                    start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
                    if start is not None and end is not None and start < 1440 and start != end:
                        span = (start, end)
                if span is None:
                    r.fail(
                        span_node,
                        path,
                        f"{text!r} is not a span of hours",
                        hint='"09:00-17:00"; overnight "22:00-06:00"; "00:00-24:00"',
                    )
                    continue
                for day in days:
                    weekly.setdefault(day, []).append(span)
    holidays: list[tuple[date, date]] = []
    # What closes whole stretches, with where it was written: (local start, end, node, field).
    closers: list[tuple[int, int, yaml.Node, str]] = []
    for holiday_node in (
        r.sequence(keys["holidays"][1], f"{field}.holidays") if "holidays" in keys else []
    ):
        text = r.text(holiday_node, f"{field}.holidays") or ""
        first_text, sep, last_text = text.partition("..")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if sep else first
        except ValueError:
            r.fail(
                holiday_node,
                f"{field}.holidays",
                f"{text!r} is not a date or date range",
                hint="2027-02-06 or 2027-02-05 .. 2027-02-10",
            )
            continue
        if last < first:
            r.fail(holiday_node, f"{field}.holidays", "the range ends before it starts")
            continue
        holidays.append((first, last))
        closers.append(
            (
                local_midnight_ms(first),
                local_midnight_ms(last) + DAY_MS,
                holiday_node,
                f"{field}.holidays",
            )
        )
    opened: list[LocalSpan] = []
    closed: list[LocalSpan] = []
    for exc_node in (
        r.sequence(keys["exceptions"][1], f"{field}.exceptions") if "exceptions" in keys else []
    ):
        path = f"{field}.exceptions"
        entry = r.mapping(exc_node, path, EXCEPTION_KINDS)
        if len(entry) != 1:
            if entry:
                r.fail(exc_node, path, "one of open or closed per entry")
            continue
        ((kind, (_, span_node)),) = entry.items()
        text = r.text(span_node, f"{path}.{kind}") or ""
        start_text, _, end_text = text.partition("..")
        span_start, span_end = _local_datetime(start_text), _local_datetime(end_text)
        if span_start is None or span_end is None:
            r.fail(
                span_node,
                f"{path}.{kind}",
                f"{text!r} is not a span of local times",
                hint='"2026-12-24 13:00 .. 2026-12-24 17:30" (no offset: the zone\'s local time)',
            )
            continue
        if span_end <= span_start:
            r.fail(span_node, f"{path}.{kind}", "the span ends before it starts")
            continue
        (opened if kind == "open" else closed).append(LocalSpan(span_start, span_end))
        if kind == "closed":
            closers.append((local_ms(span_start), local_ms(span_end), span_node, f"{path}.closed"))
    if zone is None or "hours" not in keys:
        return None
    try:
        calendar = BusinessCalendar(name, zone, weekly, holidays, opened, closed)
    except CalendarError as exc:
        r.fail(
            keys["hours"][1],
            f"{field}.hours",
            str(exc),
            hint="give at least one weekday an open span",
        )
        return None
    stretches = calendar.closed_stretches(MAX_CLOSED_DAYS * DAY_MS)
    closers.sort(key=lambda c: c[0])
    closer_starts = [c[0] for c in closers]
    for start, end in stretches:
        # Named at the first holiday or closed exception (in time) in the stretch.
        i = bisect_left(closer_starts, start)
        _, _, node_at, field_at = closers[i if i < len(closers) and closers[i][0] < end else i - 1]
        r.fail(
            node_at,
            field_at,
            f"no working time from {_local_text(start)} to {_local_text(end)}: "
            f"more than {MAX_CLOSED_DAYS} days",
            hint=f"a calendar opens at least once in any {MAX_CLOSED_DAYS} days; "
            "check the holidays and closed exceptions",
        )
    return None if stretches else calendar
