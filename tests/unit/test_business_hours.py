"""Business-hours calendars against a brute-force oracle, and examples to check by hand.

The oracle shares nothing with :mod:`slawatch.core.business_hours` but its definition: it walks
UTC minutes, reads each one's local wall clock with :func:`datetime.fromtimestamp` and
decides openness from the weekday, the minute of the day, the holidays and the exceptions.
Every boundary here (spans, exceptions, the zones' offsets and DST transitions, Lord
Howe's 30-minute one included) is minute aligned, so openness is constant within a UTC
minute and the oracle is exact to the millisecond.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slawatch.core.business_hours import (
    MAX_SEARCH_YEARS,
    BusinessCalendar,
    CalendarError,
    LocalSpan,
    local_ms,
)

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
LORD_HOWE = "Australia/Lord_Howe"
HO_CHI_MINH = "Asia/Ho_Chi_Minh"  # UTC+7, no DST
ZONES = [NEW_YORK, LONDON, LORD_HOWE, HO_CHI_MINH]


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


def wall(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local wall-clock reading (naive, as :class:`LocalSpan` takes it)."""
    return datetime(year, month, day, hour, minute)  # noqa: DTZ001


# The 2026 offset changes, as UTC instants (checked by test_the_anchors_are_transitions).
TRANSITIONS = {
    NEW_YORK: [utc_ms(2026, 3, 8, 7), utc_ms(2026, 11, 1, 6)],
    LONDON: [utc_ms(2026, 3, 29, 1), utc_ms(2026, 10, 25, 1)],
    LORD_HOWE: [utc_ms(2026, 4, 4, 15), utc_ms(2026, 10, 3, 15, 30)],
    HO_CHI_MINH: [utc_ms(2026, 1, 1), utc_ms(2026, 7, 1)],  # no transition: plain anchors
}


# --- the oracle -------------------------------------------------------------------------


class Oracle:
    """Openness minute by minute, straight from the definition."""

    def __init__(
        self,
        zone: str,
        weekly: Mapping[int, Sequence[tuple[int, int]]],
        holidays: Iterable[date] = (),
        open_exceptions: Iterable[tuple[datetime, datetime]] = (),
        closed_exceptions: Iterable[tuple[datetime, datetime]] = (),
    ) -> None:
        self.zone = ZoneInfo(zone)
        self.weekly = {day: list(spans) for day, spans in weekly.items()}
        self.holidays = set(holidays)
        self.open_exceptions = list(open_exceptions)
        self.closed_exceptions = list(closed_exceptions)
        self._minutes: dict[int, bool] = {}

    def weekly_open(self, local: datetime) -> bool:
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        for start, end in self.weekly.get(local.weekday(), ()):
            if start < end and start <= minute < end:
                return True
            if end <= start and minute >= start:  # overnight span, today's part
                return True
        for start, end in self.weekly.get((local.weekday() - 1) % 7, ()):
            if end <= start and minute < end:  # yesterday's overnight span, today's part
                return True
        return False

    def open_at_local(self, local: datetime) -> bool:
        if any(start <= local < end for start, end in self.closed_exceptions):
            return False
        if any(start <= local < end for start, end in self.open_exceptions):
            return True
        return self.weekly_open(local)

    def minute_open(self, minute: int) -> bool:
        """Is the UTC minute ``[minute, minute + 1)`` (minutes since the epoch) open?"""
        cached = self._minutes.get(minute)
        if cached is None:
            local = datetime.fromtimestamp(minute * 60, self.zone).replace(tzinfo=None)
            cached = self._minutes[minute] = self.open_at_local(local)
        return cached

    def is_open(self, at_ms: int) -> bool:
        return self.minute_open(at_ms // MINUTE)

    def elapsed(self, a_ms: int, b_ms: int) -> int:
        total = 0
        for minute in range(a_ms // MINUTE, -(-b_ms // MINUTE)):
            lo = max(a_ms, minute * MINUTE)
            hi = min(b_ms, (minute + 1) * MINUTE)
            if hi > lo and self.minute_open(minute):
                total += hi - lo
        return total

    def add(self, start_ms: int, working_ms: int, horizon_ms: int) -> int | None:
        """The smallest t with elapsed(start, t) == working_ms, None if past the horizon."""
        cursor, remaining = start_ms, working_ms
        while remaining > 0:
            if cursor >= start_ms + horizon_ms:
                return None
            minute = cursor // MINUTE
            minute_end = (minute + 1) * MINUTE
            if self.minute_open(minute):
                if remaining <= minute_end - cursor:
                    return cursor + remaining
                remaining -= minute_end - cursor
            cursor = minute_end
        return cursor


# --- random calendars -------------------------------------------------------------------

# Local times next to the zones' DST transitions (01:00-03:00), half hours (which meet Lord
# Howe's shift and the hour shifts) and arbitrary minutes.
near_transition = st.sampled_from([60, 90, 120, 150, 180])
span_start = st.one_of(
    near_transition, st.integers(0, 47).map(lambda h: h * 30), st.integers(0, 1439)
)
span_end = st.one_of(
    near_transition, st.integers(1, 48).map(lambda h: h * 30), st.integers(0, 1440)
)
# end < start is overnight. end == start (an empty span, see
# test_a_span_that_ends_where_it_starts_is_empty) becomes 24:00 here.
spans = st.tuples(span_start, span_end).map(lambda s: s if s[0] != s[1] else (s[0], 1440))
weekly_hours = st.dictionaries(st.integers(0, 6), st.lists(spans, max_size=3), max_size=7)
offset_minutes = st.one_of(
    st.tuples(st.integers(-4, 6), near_transition).map(lambda d: d[0] * 1440 + d[1]),
    st.integers(-4 * 48, 6 * 48).map(lambda h: h * 30),
    st.integers(-4 * 1440, 6 * 1440),
)
length_minutes = st.one_of(st.integers(1, 96).map(lambda h: h * 30), st.integers(1, 2 * 1440))
# Instants around an anchor: on the half hour (the transition itself included) or to the ms.
around = st.one_of(
    st.integers(-3 * 48, 3 * 48).map(lambda h: h * 30 * MINUTE), st.integers(-3 * DAY, 3 * DAY)
)
# Within hours of it, or a few ms or seconds off a half hour.
close_by = st.one_of(
    st.integers(-24, 24).map(lambda h: h * 30 * MINUTE),
    st.tuples(st.integers(-24, 24), st.sampled_from([-1000, -1, 1, 1000])).map(
        lambda h: h[0] * 30 * MINUTE + h[1]
    ),
    st.integers(-12 * HOUR, 12 * HOUR),
)


@st.composite
def scenarios(draw, at_transitions: bool = False):
    """A random calendar and start; ``at_transitions``: DST zones, the start within hours
    of a transition and spans that end next to it."""
    zone = draw(st.sampled_from(ZONES[:3] if at_transitions else ZONES))
    weekly = draw(weekly_hours)
    if at_transitions or draw(st.integers(0, 3)):  # mostly around a DST transition
        anchor = draw(st.sampled_from(TRANSITIONS[zone]))
        start = anchor + draw(close_by if at_transitions else around)
        for _ in range(draw(st.integers(1, 2)) if at_transitions else draw(st.integers(0, 1))):
            # A span with an end next to the transition, on its local day or overnight
            # from the day before.
            day = datetime.fromtimestamp(anchor // 1000, ZoneInfo(zone)).weekday()
            day = draw(st.sampled_from([day, (day - 1) % 7]))
            near, other = draw(near_transition), draw(span_start)
            span = draw(st.sampled_from([(near, other), (other, near)]))
            weekly.setdefault(day, []).append(span if span[0] != span[1] else (near, 1440))
    else:
        start = draw(st.integers(utc_ms(1990, 1, 1), utc_ms(2045, 1, 1)))
    if not any(weekly.values()):
        weekly[draw(st.integers(0, 6))] = [draw(spans)]
    base = datetime.fromtimestamp(start // 1000, ZoneInfo(zone)).replace(
        tzinfo=None, hour=0, minute=0, second=0
    )
    holidays = draw(
        st.lists(st.integers(-4, 6).map(lambda d: base.date() + timedelta(days=d)), max_size=3)
    )

    def exceptions():
        return st.lists(
            st.tuples(offset_minutes, length_minutes).map(
                lambda s: (
                    base + timedelta(minutes=s[0]),
                    base + timedelta(minutes=s[0] + s[1]),
                )
            ),
            max_size=3,
        )

    return {
        "zone": zone,
        "weekly": weekly,
        "holidays": holidays,
        "open_exceptions": draw(exceptions()),
        "closed_exceptions": draw(exceptions()),
        "start": start,
    }


def build(scenario) -> tuple[BusinessCalendar, Oracle]:
    calendar = BusinessCalendar(
        "random",
        scenario["zone"],
        scenario["weekly"],
        holidays=scenario["holidays"],
        open_exceptions=[LocalSpan(s, e) for s, e in scenario["open_exceptions"]],
        closed_exceptions=[LocalSpan(s, e) for s, e in scenario["closed_exceptions"]],
    )
    oracle = Oracle(
        scenario["zone"],
        scenario["weekly"],
        scenario["holidays"],
        scenario["open_exceptions"],
        scenario["closed_exceptions"],
    )
    return calendar, oracle


PROPERTY_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Working time: often whole quarter hours (so dues land exactly on span ends), or any ms.
work = st.one_of(st.integers(1, 3 * 96).map(lambda q: q * 15 * MINUTE), st.integers(1, 3 * DAY))
#: How far the oracle walks for add before it gives up (wall-clock time after the start).
HORIZON = 9 * DAY


# --- properties -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenarios(), st.lists(around, min_size=1, max_size=3))
def test_elapsed_and_is_open_match_the_oracle(scenario, offsets) -> None:
    calendar, oracle = build(scenario)
    start = scenario["start"]
    points = sorted({start, *(start + offset for offset in offsets)})
    for a in points:
        assert calendar.is_open(a) == oracle.is_open(a), a
        for b in points:
            if b >= a:
                assert calendar.elapsed(a, b) == oracle.elapsed(a, b), (a, b)
            else:
                assert calendar.elapsed(a, b) == 0
    # Additive over consecutive points.
    total = sum(calendar.elapsed(a, b) for a, b in itertools.pairwise(points))
    assert total == calendar.elapsed(points[0], points[-1])


@PROPERTY_SETTINGS
@given(scenarios(at_transitions=True), st.lists(close_by, min_size=1, max_size=4), work)
def test_right_at_the_transitions_matches_the_oracle(scenario, offsets, target) -> None:
    calendar, oracle = build(scenario)
    start = scenario["start"]
    points = sorted({start, *(start + offset for offset in offsets)})
    for a in points:
        assert calendar.is_open(a) == oracle.is_open(a), a
        for b in points:
            if b > a:
                assert calendar.elapsed(a, b) == oracle.elapsed(a, b), (a, b)
    expected = oracle.add(start, target, HORIZON)
    if expected is None:
        assert calendar.add(start, target) > start + HORIZON
    else:
        assert calendar.add(start, target) == expected


@PROPERTY_SETTINGS
@given(scenarios(), st.lists(work, min_size=1, max_size=3))
def test_add_matches_the_oracle(scenario, targets) -> None:
    calendar, oracle = build(scenario)
    start = scenario["start"]
    assert calendar.add(start, 0) == start
    for target in targets:
        due = calendar.add(start, target)
        expected = oracle.add(start, target, HORIZON)
        if expected is None:  # not used up within the horizon: neither is it for the module
            assert due > start + HORIZON
            assert oracle.elapsed(start, start + HORIZON) < target
        else:
            assert due == expected, (target, due, expected)


@PROPERTY_SETTINGS
@given(
    scenarios(),
    st.lists(
        st.one_of(work, st.integers(1, 60 * DAY), st.integers(1, 40).map(lambda h: h * HOUR)),
        min_size=1,
        max_size=5,
        unique=True,
    ),
)
def test_add_inverts_elapsed_and_is_monotonic(scenario, targets) -> None:
    calendar = build(scenario)[0]
    start = scenario["start"]
    dues = []
    for target in sorted(targets):
        due = calendar.add(start, target)
        assert calendar.elapsed(start, due) == target
        # The smallest such instant: the millisecond before it was still open.
        assert calendar.elapsed(start, due - 1) == target - 1
        assert calendar.is_open(due - 1)
        dues.append(due)
    assert dues == sorted(dues)
    assert len(set(dues)) == len(dues)  # strictly increasing in the target


def test_the_anchors_are_transitions() -> None:
    for zone in (NEW_YORK, LONDON, LORD_HOWE):
        zone_info = ZoneInfo(zone)
        for at in TRANSITIONS[zone]:
            before = datetime.fromtimestamp(at // 1000 - 1, zone_info).utcoffset()
            after = datetime.fromtimestamp(at // 1000, zone_info).utcoffset()
            assert before != after, (zone, at)


def test_the_oracle_itself() -> None:
    # Mon-Fri 09:00-17:00 in UTC+7, and a Friday night shift 22:00-02:00.
    weekly = {day: [(540, 1020)] for day in range(4)} | {4: [(540, 1020), (1320, 120)]}
    oracle = Oracle(HO_CHI_MINH, weekly)
    monday = utc_ms(2026, 1, 5, 2)  # Monday 09:00 local
    assert oracle.elapsed(monday, monday + 7 * DAY) == 5 * 8 * HOUR + 4 * HOUR
    assert oracle.elapsed(monday + 30_000, monday + 90_500) == 60_500
    assert oracle.add(monday, 8 * HOUR, DAY) == monday + 8 * HOUR
    assert oracle.add(monday, 8 * HOUR + 1, DAY) is None
    assert oracle.add(monday, 8 * HOUR + 1, 2 * DAY) == monday + DAY + 1
    # An end at its start: overnight, 24 hours (as the module docstring has it).
    assert Oracle(HO_CHI_MINH, {0: [(540, 540)]}).elapsed(monday - DAY, monday + 2 * DAY) == DAY


# --- examples to check by hand -----------------------------------------------------------

SATURDAY_NIGHT = {5: [(22 * 60, 6 * 60)]}  # Saturday 22:00 to Sunday 06:00
WEEKDAYS_9_TO_5 = {day: [(9 * 60, 17 * 60)] for day in range(5)}


def test_new_york_spring_forward_night_shift_is_seven_hours() -> None:
    calendar = BusinessCalendar("night", NEW_YORK, SATURDAY_NIGHT)
    start = utc_ms(2026, 3, 8, 3)  # Sat 7 Mar 22:00 EST
    end = utc_ms(2026, 3, 8, 10)  # Sun 8 Mar 06:00 EDT
    assert calendar.elapsed(utc_ms(2026, 3, 7, 12), utc_ms(2026, 3, 8, 18)) == 7 * HOUR
    assert calendar.add(start, 7 * HOUR) == end
    assert calendar.add(start, 2 * HOUR) == utc_ms(2026, 3, 8, 5)  # 00:00 EST
    assert calendar.add(start, 4 * HOUR) == utc_ms(2026, 3, 8, 7)  # 03:00 EDT: 02:xx skipped
    # One ms more: next Saturday 22:00 EDT (Sun 15 Mar 02:00 UTC).
    assert calendar.add(start, 7 * HOUR + 1) == utc_ms(2026, 3, 15, 2) + 1
    assert calendar.is_open(end - 1)
    assert not calendar.is_open(end)
    assert not calendar.is_open(start - 1)
    # Sunday 01:00-02:00 is a whole hour, up to the jump at 02:00 EST (07:00 UTC).
    early = BusinessCalendar("early", NEW_YORK, {6: [(60, 120)]})
    assert early.elapsed(utc_ms(2026, 3, 8), utc_ms(2026, 3, 9)) == HOUR
    assert early.is_open(utc_ms(2026, 3, 8, 7) - 1)
    assert not early.is_open(utc_ms(2026, 3, 8, 7))
    assert early.add(utc_ms(2026, 3, 8), HOUR) == utc_ms(2026, 3, 8, 7)


def test_new_york_fall_back_night_shift_is_nine_hours() -> None:
    calendar = BusinessCalendar("night", NEW_YORK, SATURDAY_NIGHT)
    start = utc_ms(2026, 11, 1, 2)  # Sat 31 Oct 22:00 EDT
    end = utc_ms(2026, 11, 1, 11)  # Sun 1 Nov 06:00 EST
    assert calendar.elapsed(utc_ms(2026, 10, 31, 12), utc_ms(2026, 11, 1, 18)) == 9 * HOUR
    assert calendar.add(start, 9 * HOUR) == end
    assert calendar.add(start, 3 * HOUR) == utc_ms(2026, 11, 1, 5)  # the first 01:00 (EDT)
    assert calendar.add(start, 4 * HOUR) == utc_ms(2026, 11, 1, 6)  # the second 01:00 (EST)
    assert calendar.add(start, 9 * HOUR + 1) == utc_ms(2026, 11, 8, 3) + 1  # Sat 22:00 EST
    # Sunday 01:00-02:00 happens twice: 01:00 EDT (05:00 UTC) to 02:00 EST (07:00 UTC).
    early = BusinessCalendar("early", NEW_YORK, {6: [(60, 120)]})
    assert early.elapsed(utc_ms(2026, 11, 1), utc_ms(2026, 11, 2)) == 2 * HOUR
    assert early.add(utc_ms(2026, 11, 1), 2 * HOUR) == utc_ms(2026, 11, 1, 7)


def test_lord_howe_half_hour_shifts() -> None:
    calendar = BusinessCalendar("night", LORD_HOWE, SATURDAY_NIGHT)
    # April: 02:00 LHDT (+11) goes back to 01:30 LHST (+10:30): 8.5 real hours.
    start = utc_ms(2026, 4, 4, 11)  # Sat 4 Apr 22:00 +11
    end = utc_ms(2026, 4, 4, 19, 30)  # Sun 5 Apr 06:00 +10:30
    assert calendar.elapsed(start - DAY, end + DAY) == 8 * HOUR + 30 * MINUTE
    assert calendar.add(start, 8 * HOUR + 30 * MINUTE) == end
    # October: 02:00 LHST (+10:30) jumps to 02:30 LHDT (+11): 7.5 real hours.
    start = utc_ms(2026, 10, 3, 11, 30)  # Sat 3 Oct 22:00 +10:30
    end = utc_ms(2026, 10, 3, 19)  # Sun 4 Oct 06:00 +11
    assert calendar.elapsed(start - DAY, end + DAY) == 7 * HOUR + 30 * MINUTE
    assert calendar.add(start, 7 * HOUR + 30 * MINUTE) == end
    assert calendar.add(start, 4 * HOUR) == utc_ms(2026, 10, 3, 15, 30)  # 02:30 +11

    # Sunday 01:00-03:00 on both nights: the repeated half hour counts twice, the
    # skipped one never.
    sunday = BusinessCalendar("sunday", LORD_HOWE, {6: [(60, 180)]})
    # 01:00 +11 (14:00 UTC) .. 03:00 +10:30 (16:30 UTC).
    assert sunday.elapsed(utc_ms(2026, 4, 4), utc_ms(2026, 4, 5)) == 2 * HOUR + 30 * MINUTE
    assert sunday.add(utc_ms(2026, 4, 4), 2 * HOUR + 30 * MINUTE) == utc_ms(2026, 4, 4, 16, 30)
    # 01:00 +10:30 (14:30 UTC) .. 03:00 +11 (16:00 UTC).
    assert sunday.elapsed(utc_ms(2026, 10, 3), utc_ms(2026, 10, 4)) == HOUR + 30 * MINUTE
    assert sunday.add(utc_ms(2026, 10, 3), HOUR + 30 * MINUTE) == utc_ms(2026, 10, 3, 16)


def test_london_across_both_transitions() -> None:
    calendar = BusinessCalendar("office", LONDON, WEEKDAYS_9_TO_5)
    # Fri 27 Mar 12:00 GMT .. Mon 30 Mar 12:00 BST (11:00 UTC): 5 h + 3 h.
    assert calendar.elapsed(utc_ms(2026, 3, 27, 12), utc_ms(2026, 3, 30, 11)) == 8 * HOUR
    # Fri 16:00 GMT + 2 h = Mon 10:00 BST = 09:00 UTC.
    assert calendar.add(utc_ms(2026, 3, 27, 16), 2 * HOUR) == utc_ms(2026, 3, 30, 9)
    # Fri 23 Oct 16:00 BST (15:00 UTC) + 2 h = Mon 26 Oct 10:00 GMT.
    assert calendar.add(utc_ms(2026, 10, 23, 15), 2 * HOUR) == utc_ms(2026, 10, 26, 10)

    night = BusinessCalendar("night", LONDON, {5: [(20 * 60, 4 * 60)]})
    # Sat 28 Mar 20:00 GMT .. Sun 29 Mar 04:00 BST (03:00 UTC): 7 h.
    assert night.elapsed(utc_ms(2026, 3, 28), utc_ms(2026, 3, 30)) == 7 * HOUR
    assert night.add(utc_ms(2026, 3, 28, 20), 7 * HOUR) == utc_ms(2026, 3, 29, 3)


def test_a_holiday_cuts_an_overnight_span_at_midnight() -> None:
    # Every night 22:00-06:00 in UTC+7; New Year's Day is a holiday.
    calendar = BusinessCalendar(
        "night",
        HO_CHI_MINH,
        {day: [(22 * 60, 6 * 60)] for day in range(7)},
        holidays=[date(2026, 1, 1)],
    )
    start = utc_ms(2025, 12, 31, 15)  # Wed 31 Dec 22:00 local
    # 31 Dec 22:00-24:00 and 2 Jan 00:00-06:00: 1 Jan is closed all day.
    assert calendar.elapsed(utc_ms(2025, 12, 31, 5), utc_ms(2026, 1, 2, 5)) == 8 * HOUR
    assert calendar.add(start, 2 * HOUR) == utc_ms(2025, 12, 31, 17)  # 1 Jan 00:00 local
    assert calendar.add(start, 2 * HOUR + 1) == utc_ms(2026, 1, 1, 17) + 1  # 2 Jan 00:00
    assert not calendar.is_open(utc_ms(2025, 12, 31, 20))  # 1 Jan 03:00
    assert not calendar.is_open(utc_ms(2026, 1, 1, 16))  # 1 Jan 23:00
    assert calendar.is_open(utc_ms(2026, 1, 1, 20))  # 2 Jan 03:00


def test_a_due_that_uses_up_the_day_is_five_pm() -> None:
    calendar = BusinessCalendar("office", NEW_YORK, WEEKDAYS_9_TO_5)
    monday_9 = utc_ms(2026, 1, 5, 14)  # Mon 5 Jan 09:00 EST
    monday_17 = utc_ms(2026, 1, 5, 22)
    assert calendar.add(monday_9, 8 * HOUR) == monday_17  # not Tue 09:00
    assert calendar.add(monday_17 - HOUR, HOUR) == monday_17
    assert calendar.add(monday_17 - HOUR, HOUR + 1) == utc_ms(2026, 1, 6, 14) + 1
    # Friday 13:00 + 4 h is Friday 17:00, not Monday 09:00.
    assert calendar.add(utc_ms(2026, 1, 9, 18), 4 * HOUR) == utc_ms(2026, 1, 9, 22)
    # Starting at 17:00 itself, the next hour is Tuesday's first.
    assert calendar.add(monday_17, HOUR) == utc_ms(2026, 1, 6, 15)


def test_closed_exceptions_win_over_open_ones() -> None:
    calendar = BusinessCalendar(
        "office",
        HO_CHI_MINH,  # UTC+7
        WEEKDAYS_9_TO_5,
        holidays=[date(2026, 1, 12)],  # Monday
        open_exceptions=[
            LocalSpan(wall(2026, 1, 10, 9), wall(2026, 1, 10, 13)),  # Saturday
            LocalSpan(wall(2026, 1, 12, 10), wall(2026, 1, 12, 12)),  # on the holiday
            LocalSpan(wall(2026, 1, 13, 10), wall(2026, 1, 13, 11)),  # Tuesday
        ],
        closed_exceptions=[
            LocalSpan(wall(2026, 1, 10, 11), wall(2026, 1, 10, 12)),
            LocalSpan(wall(2026, 1, 13, 9), wall(2026, 1, 13, 17)),  # all Tuesday
        ],
    )
    friday_17 = utc_ms(2026, 1, 9, 10)
    wednesday_9 = utc_ms(2026, 1, 14, 2)
    # Saturday 09-11 and 12-13, Monday 10-12, nothing on Tuesday.
    assert calendar.elapsed(friday_17, wednesday_9) == 5 * HOUR
    assert calendar.add(friday_17, 2 * HOUR) == utc_ms(2026, 1, 10, 4)  # Sat 11:00
    assert calendar.add(friday_17, 2 * HOUR + 1) == utc_ms(2026, 1, 10, 5) + 1  # Sat 12:00
    assert calendar.add(friday_17, 5 * HOUR) == utc_ms(2026, 1, 12, 5)  # Mon 12:00
    assert calendar.add(friday_17, 5 * HOUR + 1) == wednesday_9 + 1
    assert not calendar.is_open(utc_ms(2026, 1, 13, 3, 30))  # Tue 10:30


@pytest.mark.parametrize("hours", [2000, 20_000])
def test_long_targets_are_fast_and_right(hours) -> None:
    holidays = [
        date(2026, 1, 19),
        date(2026, 5, 25),
        date(2026, 7, 3),
        date(2026, 9, 7),
        date(2026, 11, 26),
        date(2026, 12, 25),
    ]
    zone = ZoneInfo(NEW_YORK)
    # Directly: the due is the 17:00 of the (hours / 8)th business day (2000 h: 250 days,
    # into January 2027; 20 000 h: 2500 days, into 2035), whatever DST does in between.
    day, count = date(2026, 1, 5), 0  # Monday
    while True:
        if day.weekday() < 5 and day not in holidays:
            count += 1
            if count == hours // 8:
                break
        day += timedelta(days=1)
    expected = int(datetime(day.year, day.month, day.day, 17, tzinfo=zone).timestamp()) * 1000
    start = int(datetime(2026, 1, 5, 9, tzinfo=zone).timestamp()) * 1000

    began = time.perf_counter()
    calendar = BusinessCalendar("office", NEW_YORK, WEEKDAYS_9_TO_5, holidays=holidays)
    due = calendar.add(start, hours * HOUR)
    assert calendar.elapsed(start, due) == hours * HOUR
    assert calendar.add(start, hours * HOUR - 30 * MINUTE) == due - 30 * MINUTE
    spent = time.perf_counter() - began
    assert due == expected
    # A table lookup, not a walk (a minute-by-minute walk over 10 years takes far longer).
    assert spent < 2.0, spent


def test_working_time_after_a_long_closure() -> None:
    # Closed from Thu 1 Jan 2026 to Mon 3 Jan 2028 00:00 (UTC+7): the table has to grow
    # over two empty years.
    calendar = BusinessCalendar(
        "closed",
        HO_CHI_MINH,
        WEEKDAYS_9_TO_5,
        closed_exceptions=[LocalSpan(wall(2026, 1, 1), wall(2028, 1, 3))],
    )
    start = utc_ms(2026, 1, 5, 2)  # Mon 5 Jan 2026 09:00 local
    assert calendar.elapsed(start, start + 30 * DAY) == 0
    assert calendar.add(start, HOUR) == utc_ms(2028, 1, 3, 3)  # Mon 3 Jan 2028 10:00 local
    assert calendar.elapsed(start, utc_ms(2028, 1, 4)) == 8 * HOUR


def test_no_working_time_for_centuries_is_a_due_centuries_away_not_an_error() -> None:
    # The policy file refuses such a calendar (closed_stretches); the core still never
    # raises in the middle of a tick: a target it cannot meet within MAX_SEARCH_YEARS
    # is due at the end of the search.
    calendar = BusinessCalendar(
        "closed",
        HO_CHI_MINH,
        WEEKDAYS_9_TO_5,
        closed_exceptions=[LocalSpan(wall(2020, 1, 1), wall(2500, 1, 1))],
    )
    start = utc_ms(2026, 1, 1)
    assert calendar.elapsed(start, utc_ms(2026, 2, 1)) == 0
    due = calendar.add(start, HOUR)
    assert due - start >= MAX_SEARCH_YEARS * 365 * DAY
    assert calendar.elapsed(start, due) == 0
    assert calendar.add(start, HOUR) == due  # the table is kept: the second call is a lookup


def test_a_week_without_open_hours_is_an_error() -> None:
    for weekly in ({}, {0: []}, {day: [] for day in range(7)}):
        with pytest.raises(CalendarError):
            BusinessCalendar("closed", NEW_YORK, weekly)


def test_a_span_that_ends_where_it_starts_is_empty() -> None:
    # The policy file refuses "09:00-09:00"; the core reads it as nothing, never 24 hours.
    with pytest.raises(CalendarError):
        BusinessCalendar("monday", HO_CHI_MINH, {0: [(9 * 60, 9 * 60)]})
    calendar = BusinessCalendar("monday", HO_CHI_MINH, {0: [(9 * 60, 9 * 60), (600, 660)]})
    monday_9 = utc_ms(2026, 1, 5, 2)  # Mon 5 Jan 09:00 local
    assert calendar.elapsed(monday_9 - DAY, monday_9 + 2 * DAY) == HOUR


def test_an_unknown_zone_raises() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        BusinessCalendar("nowhere", "Mars/Olympus_Mons", WEEKDAYS_9_TO_5)


@pytest.mark.parametrize("kind", ["open_exceptions", "closed_exceptions"])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (wall(2026, 1, 5, 12), wall(2026, 1, 5, 11)),
        (wall(2026, 1, 5, 12), wall(2026, 1, 5, 12)),
    ],
)
def test_an_exception_that_ends_before_it_starts_raises(kind, start, end) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar("office", NEW_YORK, WEEKDAYS_9_TO_5, **{kind: [LocalSpan(start, end)]})


@pytest.mark.parametrize(
    "weekly",
    [
        {7: [(540, 1020)]},
        {-1: [(540, 1020)]},
        {0: [(1440, 60)]},
        {0: [(540, 1441)]},
        {0: [(-1, 60)]},
    ],
)
def test_out_of_range_weekly_hours_raise(weekly) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar("office", NEW_YORK, weekly)


# --- closed stretches ---------------------------------------------------------------------

WEEK = 7 * DAY
CLOSURE_BASE = wall(2027, 3, 1)  # naive: local wall-clock time


@st.composite
def closures(draw):
    """Weekly hours with holiday ranges and exceptions, often long, within 70 days."""
    zone = draw(st.sampled_from(ZONES))
    weekly = draw(weekly_hours)
    if not any(weekly.values()):
        weekly[draw(st.integers(0, 6))] = [draw(spans)]
    first_day = CLOSURE_BASE.date()
    holidays = draw(
        st.lists(
            st.tuples(st.integers(-10, 60), st.integers(0, 20)).map(
                lambda d: (first_day + timedelta(days=d[0]), first_day + timedelta(d[0] + d[1]))
            ),
            max_size=6,
        )
    )

    def exceptions(longest_minutes: int):
        return st.lists(
            st.tuples(st.integers(-10 * 1440, 60 * 1440), st.integers(1, longest_minutes)).map(
                lambda s: (
                    CLOSURE_BASE + timedelta(minutes=s[0]),
                    CLOSURE_BASE + timedelta(minutes=s[0] + s[1]),
                )
            ),
            max_size=4,
        )

    return {
        "zone": zone,
        "weekly": weekly,
        "holidays": holidays,
        "open_exceptions": draw(exceptions(2 * 1440)),
        "closed_exceptions": draw(exceptions(20 * 1440)),
    }


def oracle_closed_runs(scenario, longer_than_ms: int) -> list[tuple[int, int]]:
    """The oracle's closed stretches (local wall-clock ms), from its definition of open.

    Openness only changes at a local midnight, a weekly span's edge or an exception's
    edge, so the oracle is asked at each of those instants across the 70 days and 30 on
    either side (where the weekly hours are open at least once a week)."""
    oracle = Oracle(
        scenario["zone"],
        scenario["weekly"],
        {a + timedelta(days=i) for a, b in scenario["holidays"] for i in range((b - a).days + 1)},
        scenario["open_exceptions"],
        scenario["closed_exceptions"],
    )
    lo, hi = CLOSURE_BASE - timedelta(days=30), CLOSURE_BASE + timedelta(days=100)
    edges = {lo, hi}
    day = lo
    while day < hi:
        edges.add(day)
        for start, end in scenario["weekly"].get(day.weekday(), ()):
            edges.add(day + timedelta(minutes=start))
            edges.add(day + timedelta(minutes=end if end > start else end + 1440))
        day += timedelta(days=1)
    for start, end in (*scenario["open_exceptions"], *scenario["closed_exceptions"]):
        edges.update((start, end))
    points = sorted(edge for edge in edges if lo <= edge <= hi)
    runs, closed_since = [], None
    for point in points[:-1]:
        is_open = oracle.open_at_local(point)
        if not is_open and closed_since is None:
            closed_since = point
        elif is_open and closed_since is not None:
            runs.append((local_ms(closed_since), local_ms(point)))
            closed_since = None
    # A run cut by the edges is the weekly hours' alone (shorter than a week): left out.
    return [(a, b) for a, b in runs if b - a > longer_than_ms and a > local_ms(lo)]


@given(closures())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_closed_stretches_match_the_oracle(scenario) -> None:
    calendar = BusinessCalendar(
        "closures",
        scenario["zone"],
        scenario["weekly"],
        holidays=scenario["holidays"],
        open_exceptions=[LocalSpan(s, e) for s, e in scenario["open_exceptions"]],
        closed_exceptions=[LocalSpan(s, e) for s, e in scenario["closed_exceptions"]],
    )
    # Any stretch longer than a week is made of holidays and closed exceptions: all found.
    assert calendar.closed_stretches(WEEK) == oracle_closed_runs(scenario, WEEK)
    # Shorter ones are found when they hold a holiday or closed exception (never invented).
    for stretch in calendar.closed_stretches(0):
        assert stretch in oracle_closed_runs(scenario, 0)


@pytest.mark.parametrize(
    "holidays",
    [
        [(date(1, 1, 1), date(9999, 12, 31))],
        [
            (date(2027, 1, 1) + timedelta(days=i), date(2027, 1, 1) + timedelta(days=i))
            for i in range(800)
        ],
    ],
    ids=["one range over all time", "800 one-day holidays"],
)
def test_a_closure_of_any_length_is_found_at_once(holidays) -> None:
    calendar = BusinessCalendar("closed", LONDON, WEEKDAYS_9_TO_5, holidays=holidays)
    began = time.perf_counter()
    (stretch,) = calendar.closed_stretches(366 * DAY)
    assert time.perf_counter() - began < 0.5
    assert stretch[1] - stretch[0] > 366 * DAY
    # The table still works on the days around (no three million dates were made).
    assert calendar.elapsed(utc_ms(2026, 1, 5), utc_ms(2026, 1, 6)) == (
        8 * HOUR if len(holidays) > 1 else 0
    )


def test_a_holiday_range_closes_every_day_in_it_and_only_those() -> None:
    week = (date(2026, 1, 5), date(2026, 1, 7))  # Monday to Wednesday
    ranged = BusinessCalendar("office", NEW_YORK, WEEKDAYS_9_TO_5, holidays=[week])
    daily = BusinessCalendar(
        "office", NEW_YORK, WEEKDAYS_9_TO_5, holidays=[date(2026, 1, d) for d in (5, 6, 7)]
    )
    monday, next_monday = utc_ms(2026, 1, 5), utc_ms(2026, 1, 12)
    assert ranged.elapsed(monday, next_monday) == 2 * 8 * HOUR  # Thursday and Friday
    assert daily.elapsed(monday, next_monday) == 2 * 8 * HOUR
    assert ranged.add(monday, HOUR) == daily.add(monday, HOUR) == utc_ms(2026, 1, 8, 15)
    with pytest.raises(CalendarError):
        BusinessCalendar("office", NEW_YORK, WEEKDAYS_9_TO_5, holidays=[(week[1], week[0])])
