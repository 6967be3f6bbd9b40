"""Calendar periods (day, week, month) in a time zone, as epoch-millisecond ranges.

The compliance report groups cycles by the local calendar period of their stop. SQLite
knows no time zones, so the periods are computed here, with :mod:`zoneinfo`, and handed
to the database as a small table of ranges to join. A day is the centre's calendar day:
23 or 25 hours long across a DST change. Weeks start on Monday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slawatch.reports.errors import InvalidQuery

Period = Literal["day", "week", "month"]
PERIODS: tuple[str, ...] = ("day", "week", "month")
#: At most this many periods in one report (three years of days).
MAX_PERIODS = 1100

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One period: its first local day and its instants ``[start_ms, end_ms)``."""

    first_day: date
    start_ms: int
    end_ms: int


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`InvalidQuery` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
        raise InvalidQuery("time_zone", f"{name!r} is not an IANA time zone") from None


def local_day(instant_ms: int, zone: ZoneInfo) -> date:
    """The calendar day in ``zone`` at ``instant_ms``."""
    return (_EPOCH + instant_ms * _MS).astimezone(zone).date()


def day_start_ms(day: date, zone: ZoneInfo) -> int:
    """The first instant of ``day`` in ``zone``.

    Local midnight with ``fold=0``: where midnight is skipped by a DST change, zoneinfo
    reads it with the offset before the change, which is the instant the day begins; where
    it happens twice, the first one."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (start - _EPOCH) // _MS


def period_start(day: date, period: Period) -> date:
    """The first day of the period holding ``day``."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(first_day: date, period: Period) -> date:
    """The first day of the period after the one starting on ``first_day``."""
    if period == "day":
        return first_day + timedelta(days=1)
    if period == "week":
        return first_day + timedelta(days=7)
    if first_day.month == 12:
        return date(first_day.year + 1, 1, 1)
    return date(first_day.year, first_day.month + 1, 1)


def buckets(start_ms: int, end_ms: int, period: Period, zone: ZoneInfo) -> list[Bucket]:
    """The periods that overlap ``[start_ms, end_ms)``, in order; whole periods (the first
    may start before ``start_ms``, the last end after ``end_ms``)."""
    if period not in PERIODS:
        raise InvalidQuery("period", f"{period!r} is not one of {', '.join(PERIODS)}")
    try:
        day = period_start(local_day(start_ms, zone), period)
        found: list[Bucket] = []
        start = day_start_ms(day, zone)
        while start < end_ms:
            if len(found) == MAX_PERIODS:
                raise InvalidQuery(
                    "period", f"the range holds more than {MAX_PERIODS} {period}s: ask for less"
                )
            following = next_period(day, period)
            end = day_start_ms(following, zone)
            if end > start:  # a day a zone skipped (Pacific/Apia, 2011-12-30) has none
                found.append(Bucket(day, start, end))
            day, start = following, end
    except (OverflowError, ValueError) as error:
        if isinstance(error, InvalidQuery):
            raise
        raise InvalidQuery("start_ms", f"the range is outside the calendar: {error}") from None
    return found
