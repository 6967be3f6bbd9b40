"""Business-hours calendars: working time in an IANA time zone.

A calendar is open at an instant when the instant's *local wall-clock reading* falls in
its open hours:

- **weekly hours**, per weekday, as ``(start, end)`` minutes after local midnight; an
  ``end`` before ``start`` is an overnight span that ends on the next day
  (``22:00-06:00``), ``end`` may be 1440 (24:00); ``end == start`` is empty (the
  policy file refuses it);
- minus **holidays**: whole local dates, 00:00 to 24:00 (also the part of an overnight
  span that runs into the holiday), given as dates or as ranges of dates (kept as ranges:
  ``0001-01-01 .. 9999-12-31`` is one pair, not three million dates);
- plus **open exceptions** (extra open local spans: a Saturday before a holiday);
- minus **closed exceptions** (extra closed local spans). Closed wins over open.

Daylight saving follows from that definition: on the night clocks go forward the skipped
local hour is never open; on the night they go back the repeated local hour is open twice
(two real hours) if open hours cover it. Lord Howe's 30-minute shift is no different.

Arithmetic runs on a cached table of the open intervals in UTC epoch milliseconds with a
running sum of open time, so :meth:`BusinessCalendar.add` and
:meth:`BusinessCalendar.elapsed` are two binary searches, whatever the target's length.
The table covers whole UTC years and grows when an instant falls outside it.

A calendar can be open only rarely: holidays over years, closed exceptions.
:meth:`BusinessCalendar.closed_stretches` finds every stretch without working time longer
than a bound, over all time, from the holidays and exceptions themselves (no table), so
the policy file refuses such a calendar when it loads. A target that still cannot be met
within :data:`MAX_SEARCH_YEARS` is due at the end of that search: never, in practice, and
no error in the middle of a tick.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: Probe spacing when looking for the zone's offset changes (no zone changes twice this fast).
_PROBE_MS = 3 * 3_600_000
#: How far :meth:`BusinessCalendar.add` looks for working time before giving up.
MAX_SEARCH_YEARS = 200
#: 1970-01-01, local day 0, was a Thursday (weekday 3).
_EPOCH_WEEKDAY = 3


class CalendarError(ValueError):
    """A calendar that cannot work (no open hours, a span that ends before it starts)."""


def local_midnight_ms(day: date) -> int:
    """The local wall-clock reading of ``day``'s midnight, as if it were UTC epoch ms."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS


def local_ms(moment: datetime) -> int:
    """A naive local datetime as local wall-clock milliseconds (see :func:`local_midnight_ms`)."""
    return (
        local_midnight_ms(moment.date())
        + ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000
        + moment.microsecond // 1000
    )


@dataclass(frozen=True, slots=True)
class LocalSpan:
    """An exception span in local wall-clock time, ``start`` inclusive, ``end`` exclusive."""

    start: datetime
    end: datetime


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(
    intervals: list[tuple[int, int]], holes: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``intervals`` minus ``holes`` (both sorted and disjoint)."""
    out: list[tuple[int, int]] = []
    j = 0
    for start, end in intervals:
        while j < len(holes) and holes[j][1] <= start:
            j += 1
        k = j
        cursor = start
        while k < len(holes) and holes[k][0] < end:
            if holes[k][0] > cursor:
                out.append((cursor, holes[k][0]))
            cursor = max(cursor, holes[k][1])
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def _in_any(intervals: list[tuple[int, int]], starts: list[int], lo: int, hi: int) -> bool:
    """Whether a sorted, disjoint interval meets [lo, hi)."""
    i = bisect_right(starts, lo) - 1
    if i >= 0 and intervals[i][1] > lo:
        return True
    return i + 1 < len(intervals) and intervals[i + 1][0] < hi


class BusinessCalendar:
    """Working time on weekly hours in a time zone, less holidays, with exceptions."""

    def __init__(
        self,
        name: str,
        zone: str,
        weekly: Mapping[int, Sequence[tuple[int, int]]],
        holidays: Iterable[date | tuple[date, date]] = (),
        open_exceptions: Iterable[LocalSpan] = (),
        closed_exceptions: Iterable[LocalSpan] = (),
    ) -> None:
        self.name = name
        self.zone_name = zone
        self.zone = ZoneInfo(zone)  # raises ZoneInfoNotFoundError for an unknown zone
        self.weekly = {day: tuple(spans) for day, spans in weekly.items()}
        for day, spans in self.weekly.items():
            if not 0 <= day <= 6:
                raise CalendarError(f"weekday {day} is not 0 (Monday) .. 6 (Sunday)")
            for start, end in spans:
                if not (0 <= start < 1440 and 0 <= end <= 1440):
                    raise CalendarError(f"span {start}-{end} is outside 00:00-24:00")
        if not any(start != end for spans in self.weekly.values() for start, end in spans):
            raise CalendarError(f"calendar {name!r} has no open hours in its week")
        # Holidays as merged spans of local wall-clock ms, [first midnight, last + 24:00).
        closed_days: list[tuple[int, int]] = []
        for holiday in holidays:
            first, last = holiday if isinstance(holiday, tuple) else (holiday, holiday)
            if last < first:
                raise CalendarError(f"holidays {first} .. {last} end before they start")
            closed_days.append((local_midnight_ms(first), local_midnight_ms(last) + DAY_MS))
        self.holidays = _merge(closed_days)
        self._holiday_starts = [start for start, _ in self.holidays]
        self.open_exceptions = tuple(open_exceptions)
        self.closed_exceptions = tuple(closed_exceptions)
        for span in (*self.open_exceptions, *self.closed_exceptions):
            if span.end <= span.start:
                raise CalendarError(f"exception {span.start} .. {span.end} ends before it starts")
        # The table: open intervals in UTC ms within [_lo, _hi) (none built yet: empty
        # range), and the open time before each interval. A range may hold no open time.
        self._lo = self._hi = 0
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._cum: list[int] = []
        self._cum_end: list[int] = []

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.name!r}, {self.zone_name!r})"

    # --- the Calendar interface ---------------------------------------------------------

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Working milliseconds between two instants (0 if ``end_ms`` is not after)."""
        if end_ms <= start_ms:
            return 0
        self._cover(start_ms, end_ms)
        return self._open_before(end_ms) - self._open_before(start_ms)

    def add(self, start_ms: int, working_ms: int) -> int:
        """The instant at which ``working_ms`` of working time after ``start_ms`` is used up.

        ``add(t, 0)`` is ``t``. A due that uses up an open span exactly is the span's end
        (17:00), not the next opening.
        """
        if working_ms <= 0:
            return start_ms
        self._cover(start_ms, start_ms + 1)
        target = self._open_before(start_ms) + working_ms
        while not self._cum_end or target > self._cum_end[-1]:
            if self._hi - start_ms > MAX_SEARCH_YEARS * 366 * DAY_MS:
                return self._hi  # no such working time for centuries: never due, in practice
            self._cover(self._lo, self._hi + (self._hi - self._lo))
        j = bisect_left(self._cum_end, target)
        return self._starts[j] + (target - self._cum[j])

    def is_open(self, at_ms: int) -> bool:
        self._cover(at_ms, at_ms + 1)
        i = bisect_right(self._starts, at_ms) - 1
        return i >= 0 and at_ms < self._ends[i]

    # --- closed stretches ---------------------------------------------------------------

    def closed_stretches(self, longer_than_ms: int) -> list[tuple[int, int]]:
        """Every stretch without working time longer than ``longer_than_ms``, as
        ``(start, end)`` in local wall-clock ms (:func:`local_midnight_ms`), over all time.

        Outside holidays and exceptions the weekly hours open at least once in any 7 days,
        so a long stretch is made of holidays and closed exceptions (less the open
        exceptions inside them) that follow each other with no working time between, plus
        the closed weekly hours at either end. Working from those spans, not from the
        table, costs the same for ``0001-01-01 .. 9999-12-31`` as for one day.
        """
        opened = _merge((local_ms(s.start), local_ms(s.end)) for s in self.open_exceptions)
        closed = _merge((local_ms(s.start), local_ms(s.end)) for s in self.closed_exceptions)
        open_starts = [start for start, _ in opened]
        # Closed whatever the weekly hours say; between two of these, the weekly hours and
        # the open exceptions are working time.
        blocked = _merge([*_subtract(self.holidays, opened), *closed])

        def works(lo: int, hi: int) -> bool:
            if hi - lo >= 7 * DAY_MS:
                return True
            return bool(self._weekly_local(lo, hi)) or _in_any(opened, open_starts, lo, hi)

        def last_work_end(lo: int, hi: int) -> int:
            lo = max(lo, hi - 8 * DAY_MS)
            ends = [min(end, hi) for _, end in self._weekly_local(lo, hi)]
            i = bisect_left(open_starts, hi) - 1
            if i >= 0 and opened[i][1] > lo:
                ends.append(min(opened[i][1], hi))
            return max(ends, default=lo)

        def first_work_start(lo: int, hi: int) -> int:
            hi = min(hi, lo + 8 * DAY_MS)
            starts = [max(start, lo) for start, _ in self._weekly_local(lo, hi)]
            i = bisect_right(open_starts, lo) - 1
            if i >= 0 and opened[i][1] > lo:
                starts.append(lo)
            elif i + 1 < len(opened) and opened[i + 1][0] < hi:
                starts.append(opened[i + 1][0])
            return min(starts, default=hi)

        stretches: list[tuple[int, int]] = []
        previous_end: int | None = None
        i = 0
        while i < len(blocked):
            start, end = blocked[i]
            while i + 1 < len(blocked) and not works(end, blocked[i + 1][0]):
                i += 1
                end = blocked[i][1]
            before = start - 8 * DAY_MS if previous_end is None else previous_end
            after = blocked[i + 1][0] if i + 1 < len(blocked) else end + 8 * DAY_MS
            first, last = last_work_end(before, start), first_work_start(end, after)
            if last - first > longer_than_ms:
                stretches.append((first, last))
            previous_end = end
            i += 1
        return stretches

    def _weekly_local(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The weekly hours' open intervals in local wall-clock ms that meet [lo, hi),
        holidays and exceptions aside (day arithmetic only: any year works)."""
        out = []
        for day in range(lo // DAY_MS - 1, (hi - 1) // DAY_MS + 1):
            midnight = day * DAY_MS
            for start, end in self.weekly.get((day + _EPOCH_WEEKDAY) % 7, ()):
                stop = end if end > start else end + 1440  # overnight into the next day
                a, b = midnight + start * MINUTE_MS, midnight + stop * MINUTE_MS
                if start != end and a < hi and b > lo:
                    out.append((a, b))
        return _merge(out)

    # --- the table ------------------------------------------------------------------------

    def _open_before(self, t: int) -> int:
        """Open milliseconds from the table's start to ``t`` (``t`` inside the table)."""
        i = bisect_right(self._starts, t) - 1
        if i < 0:
            return 0
        return self._cum[i] + min(t, self._ends[i]) - self._starts[i]

    def _cover(self, start_ms: int, end_ms: int) -> None:
        if self._lo <= start_ms and end_ms <= self._hi:
            return
        built = self._hi > self._lo
        lo = min(start_ms, self._lo) if built else start_ms
        hi = max(end_ms, self._hi) if built else end_ms
        lo_year = datetime.fromtimestamp(lo // 1000, UTC).year
        hi_year = datetime.fromtimestamp(hi // 1000, UTC).year + 1
        self._build(
            int(datetime(lo_year, 1, 1, tzinfo=UTC).timestamp() * 1000),
            int(datetime(hi_year, 1, 1, tzinfo=UTC).timestamp() * 1000),
        )

    def _build(self, lo: int, hi: int) -> None:
        """Tabulate the open intervals of the UTC range [lo, hi)."""
        intervals: list[tuple[int, int]] = []
        for seg_start, seg_end, offset in self._offset_segments(lo, hi):
            local = self._open_local(seg_start + offset, seg_end + offset)
            for start, end in local:
                start, end = max(start, seg_start + offset), min(end, seg_end + offset)
                if start < end:
                    intervals.append((start - offset, end - offset))
        merged = _merge(intervals)
        self._lo, self._hi = lo, hi
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]
        cum, total = [], 0
        for s, e in merged:
            cum.append(total)
            total += e - s
        self._cum = cum
        self._cum_end = [c + e - s for c, (s, e) in zip(cum, merged, strict=True)]

    def _offset(self, t_ms: int) -> int:
        moment = datetime.fromtimestamp(t_ms / 1000, self.zone)
        delta = moment.utcoffset()
        assert delta is not None
        return int(delta.total_seconds() * 1000)

    def _offset_segments(self, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """[lo, hi) cut where the zone's UTC offset changes: (start, end, offset ms)."""
        segments: list[tuple[int, int, int]] = []
        seg_start, offset = lo, self._offset(lo)
        probe = lo
        while probe < hi:
            nxt = min(probe + _PROBE_MS, hi)
            next_offset = self._offset(nxt) if nxt < hi else offset
            if next_offset != offset:
                # Binary search the change to the second (zones change on whole seconds).
                a, b = probe // 1000, nxt // 1000
                while b - a > 1:
                    mid = (a + b) // 2
                    if self._offset(mid * 1000) == offset:
                        a = mid
                    else:
                        b = mid
                change = b * 1000
                segments.append((seg_start, change, offset))
                seg_start, offset = change, next_offset
            probe = nxt
        segments.append((seg_start, hi, offset))
        return segments

    def _open_local(self, lo_local: int, hi_local: int) -> list[tuple[int, int]]:
        """Open intervals in local wall-clock ms that meet [lo_local, hi_local)."""
        first = date.fromordinal(_EPOCH_ORDINAL + lo_local // DAY_MS) - timedelta(days=1)
        last = date.fromordinal(_EPOCH_ORDINAL + hi_local // DAY_MS)
        weekly: list[tuple[int, int]] = []
        holidays: list[tuple[int, int]] = []
        day = first
        while day <= last:
            midnight = local_midnight_ms(day)
            for start, end in self.weekly.get(day.weekday(), ()):
                if end > start:
                    weekly.append((midnight + start * MINUTE_MS, midnight + end * MINUTE_MS))
                elif end < start:  # overnight: runs into the next day
                    weekly.append(
                        (midnight + start * MINUTE_MS, midnight + (1440 + end) * MINUTE_MS)
                    )
            day += timedelta(days=1)
        lo, hi = local_midnight_ms(first), local_midnight_ms(last) + DAY_MS
        i = max(0, bisect_right(self._holiday_starts, lo) - 1)
        while i < len(self.holidays) and self.holidays[i][0] < hi:
            holidays.append(self.holidays[i])
            i += 1
        open_local = _subtract(_merge(weekly), holidays)
        extra = [(local_ms(s.start), local_ms(s.end)) for s in self.open_exceptions]
        closed = _merge((local_ms(s.start), local_ms(s.end)) for s in self.closed_exceptions)
        return _subtract(_merge([*open_local, *extra]), closed)
