"""Call-centre KPIs per queue, in event time: offered, answered, abandoned, waits and the
service level under four formulas side by side.

A :class:`KpiAccumulator` is fed three call facts (a call was *queued*, *answered*,
*abandoned*), in any order, possibly more than once, and answers a :class:`KpiSnapshot`
at an event time ``now_ms``: per queue and overall, the calls waiting now and the longest
current wait, and per window the figures of :class:`WindowKpis`.

**Windows.** ``"day"`` is the queue's calendar day (midnight to midnight in the queue's
time zone) containing ``now_ms``; the sliding windows (by default ``"15m"`` and ``"1h"``,
any others may be configured) are ``(now_ms - length, now_ms]``. A call counts in a window
by when it **left the queue** (answered or abandoned), not by when it entered: only then is
its outcome and wait known, so every figure of a window is about the same calls (offered =
answered + abandoned) and a ratio never moves because calls still waiting are in its
denominator but not yet in its numerator. This is how Asterisk, Genesys and Amazon Connect
interval reports count too. Calls still waiting are reported apart (``waiting``,
``longest_wait_ms``). A call that waited across midnight counts in the day it left.

**Target and thresholds** are per queue (:class:`QueueSettings`, with a default): a call
answered (abandoned) *within the target* waited at most ``target_ms`` (``wait <= target``,
as the call-answer SLA of the state machine counts "met"); a *short abandon* hung up after
waiting strictly less than ``short_abandon_ms`` (the policy's ``short_abandon_ms``).
Overall figures are the sums of the queues' figures, each call judged against its own
queue's target; the overall ``"day"`` is the sum of each queue's own calendar day.

**Service level** (``WindowKpis``), a ratio in [0, 1]; any ratio whose denominator is zero
is ``None`` (no calls is not 0 % service):

- ``sl_asterisk`` = answered within / answered (Asterisk ``app_queue``
  ``ServicelevelPerf``);
- ``sl2_asterisk`` = (answered within + abandoned within) / (answered + abandoned)
  (Asterisk ``ServicelevelPerf2``);
- ``sl_genesys`` = answered within / (offered - short abandons) (Genesys-style
  "Service Level %", short abandons excluded from the denominator);
- ``sl_connect`` = calls that left the queue within the target, answered or abandoned,
  / offered (Amazon Connect "Service level X seconds").

With answered and abandoned the only ways out of a queue, offered = answered + abandoned,
so SL2 and the Connect-style figure are equal by construction; they part once other exits
(transfers out, callbacks, timeouts) are counted in ``offered``.

**Duplicates and odd orders.** Each call id has one entry and one exit: a second
``queued`` for a call waiting or already gone, or a second exit (the same fact again, or
the other one) for a call that already left, changes nothing (the first wins) and is
counted in ``duplicates``. An exit whose ``queued`` has not been seen is *not* counted as
a call with wait 0 (that would inflate every service level with calls whose wait is
unknown): it is held until its ``queued`` arrives (delivery out of order), then counted
with its true wait; if none arrives while the exit could still count in some window, it is
dropped and counted in ``unmatched``. A wait is never negative (an exit stamped before its
entry waited 0).

**Bounded memory.** Everything is kept only as long as some window can still need it,
measured from the high-water mark (the latest event time fed or ``now_ms`` asked for):
per-call exits for the longest sliding window; per-day totals for the current and the
previous calendar day (late exits of yesterday still count in yesterday); the ids of
calls that left, for deduplication, as long as their exit could still count; a call
waiting longer than ``max_wait_ms`` (its exit was lost) is dropped and counted in
``stale``. An exit too old to count in any window is dropped and counted in ``late``.
Snapshots are meant for ``now_ms`` at or after the events fed (a watermark or the latest
event time); for an earlier ``now_ms`` a sliding window counts only exits up to
``now_ms``, while the day counts every exit of that date fed so far.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from slawatch.core.events import CallAbandoned, CallAnswered, CallQueued, InputEvent

#: The name of the calendar-day window.
DAY = "day"
#: Sliding windows by default: the last 15 minutes and the last hour.
DEFAULT_WINDOWS_MS: Mapping[str, int] = {"15m": 15 * 60_000, "1h": 60 * 60_000}
#: A call waiting longer than this is taken to have lost its exit event.
DEFAULT_MAX_WAIT_MS = 12 * 3_600_000
#: How often (event time) expired state is swept away.
SWEEP_EVERY_MS = 60_000


#: Told (queue, wait_ms, answered, the queue's settings) of every call counted.
CountListener = Callable[[str, int, bool, "QueueSettings"], None]


class KpiError(ValueError):
    """Settings that cannot work (a non-positive target or window)."""


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """What one queue is measured against."""

    #: The service-level target: answered within this long is "within" (80/20: 20 s).
    target_ms: int = 20_000
    #: An abandon after waiting less than this is a short abandon.
    short_abandon_ms: int = 5_000
    #: The time zone of the queue's calendar day.
    tz: tzinfo = UTC
    #: The share of calls that should be answered within the target (80/20: 0.8).
    goal: float = 0.8

    def __post_init__(self) -> None:
        if self.target_ms <= 0:
            raise KpiError(f"target_ms must be positive, got {self.target_ms}")
        if self.short_abandon_ms < 0:
            raise KpiError(f"short_abandon_ms must not be negative, got {self.short_abandon_ms}")
        if not 0 < self.goal <= 1:
            raise KpiError(f"goal must be in (0, 1], got {self.goal}")


def _ratio(numerator: int | float, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class WindowKpis:
    """The calls that left a queue (or all queues) within one window, and their ratios."""

    #: Calls that left the queue in the window (answered + abandoned).
    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    #: Abandoned after waiting less than the short-abandon threshold.
    short_abandoned: int = 0
    abandoned_within: int = 0
    #: Sum of the waits of the answered calls (ms).
    answer_wait_ms: int = 0
    #: Sum of the waits of the abandoned calls (ms).
    abandon_wait_ms: int = 0
    max_abandon_wait_ms: int | None = None

    def __add__(self, other: WindowKpis) -> WindowKpis:
        maxima = [m for m in (self.max_abandon_wait_ms, other.max_abandon_wait_ms) if m is not None]
        return WindowKpis(
            offered=self.offered + other.offered,
            answered=self.answered + other.answered,
            answered_within=self.answered_within + other.answered_within,
            abandoned=self.abandoned + other.abandoned,
            short_abandoned=self.short_abandoned + other.short_abandoned,
            abandoned_within=self.abandoned_within + other.abandoned_within,
            answer_wait_ms=self.answer_wait_ms + other.answer_wait_ms,
            abandon_wait_ms=self.abandon_wait_ms + other.abandon_wait_ms,
            max_abandon_wait_ms=max(maxima) if maxima else None,
        )

    @property
    def left_within(self) -> int:
        """Calls that left the queue within the target, answered or abandoned."""
        return self.answered_within + self.abandoned_within

    @property
    def asa_ms(self) -> float | None:
        """Average speed of answer: the mean wait of the answered calls."""
        return _ratio(self.answer_wait_ms, self.answered)

    @property
    def avg_abandon_ms(self) -> float | None:
        """The mean wait of the abandoned calls."""
        return _ratio(self.abandon_wait_ms, self.abandoned)

    @property
    def abandonment_rate(self) -> float | None:
        """Abandoned / offered (short abandons included)."""
        return _ratio(self.abandoned, self.offered)

    @property
    def sl_asterisk(self) -> float | None:
        """Asterisk SL (``ServicelevelPerf``): answered within / answered."""
        return _ratio(self.answered_within, self.answered)

    @property
    def sl2_asterisk(self) -> float | None:
        """Asterisk SL2 (``ServicelevelPerf2``): (answered within + abandoned within) /
        (answered + abandoned)."""
        return _ratio(self.left_within, self.answered + self.abandoned)

    @property
    def sl_genesys(self) -> float | None:
        """Genesys-style: answered within / (offered - short abandons)."""
        return _ratio(self.answered_within, self.offered - self.short_abandoned)

    @property
    def sl_connect(self) -> float | None:
        """Amazon Connect-style: left the queue within the target (answered or abandoned)
        / offered."""
        return _ratio(self.left_within, self.offered)

    def service_levels(self) -> dict[str, float | None]:
        """The four service-level variants by name."""
        return {
            "asterisk": self.sl_asterisk,
            "asterisk_sl2": self.sl2_asterisk,
            "genesys": self.sl_genesys,
            "connect": self.sl_connect,
        }


class _Tally:
    """A mutable :class:`WindowKpis` under construction."""

    __slots__ = (
        "abandon_wait_ms",
        "abandoned",
        "abandoned_within",
        "answer_wait_ms",
        "answered",
        "answered_within",
        "max_abandon_wait_ms",
        "short_abandoned",
    )

    def __init__(self) -> None:
        self.answered = self.answered_within = self.answer_wait_ms = 0
        self.abandoned = self.abandoned_within = self.short_abandoned = 0
        self.abandon_wait_ms = 0
        self.max_abandon_wait_ms: int | None = None

    def add(self, wait_ms: int, answered: bool, settings: QueueSettings) -> None:
        within = wait_ms <= settings.target_ms
        if answered:
            self.answered += 1
            self.answered_within += within
            self.answer_wait_ms += wait_ms
        else:
            self.abandoned += 1
            self.abandoned_within += within
            self.short_abandoned += wait_ms < settings.short_abandon_ms
            self.abandon_wait_ms += wait_ms
            if self.max_abandon_wait_ms is None or wait_ms > self.max_abandon_wait_ms:
                self.max_abandon_wait_ms = wait_ms

    def freeze(self) -> WindowKpis:
        return WindowKpis(
            offered=self.answered + self.abandoned,
            answered=self.answered,
            answered_within=self.answered_within,
            abandoned=self.abandoned,
            short_abandoned=self.short_abandoned,
            abandoned_within=self.abandoned_within,
            answer_wait_ms=self.answer_wait_ms,
            abandon_wait_ms=self.abandon_wait_ms,
            max_abandon_wait_ms=self.max_abandon_wait_ms,
        )


@dataclass(frozen=True, slots=True)
class QueueKpis:
    """One queue (``queue`` None: all queues) at a snapshot's time."""

    queue: str | None
    #: Calls in the queue now (entered at or before the snapshot time, not yet left).
    waiting: int
    #: How long the longest-waiting of them has waited; None when none waits.
    longest_wait_ms: int | None
    #: The figures per window name (``"day"`` and the sliding windows).
    windows: Mapping[str, WindowKpis]


@dataclass(frozen=True, slots=True)
class KpiSnapshot:
    """Every queue's KPIs and the overall ones at event time ``at_ms``."""

    at_ms: int
    queues: Mapping[str, QueueKpis]
    overall: QueueKpis


@dataclass(slots=True)
class KpiHealth:
    """What the accumulator refused or gave up on, since it started."""

    duplicates: int = 0
    late: int = 0
    unmatched: int = 0
    stale: int = 0


def local_date(epoch_ms: int, tz: tzinfo) -> date:
    """The calendar date of ``epoch_ms`` in ``tz``."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz).date()


def day_start_ms(day: date, tz: tzinfo) -> int:
    """Epoch milliseconds of midnight starting ``day`` in ``tz``."""
    return int(datetime.combine(day, time(), tzinfo=tz).timestamp() * 1000)


def _first(record: tuple[int, int, bool]) -> int:
    return record[0]


class _Queue:
    __slots__ = (
        "days",
        "longest_ms",
        "max_wait_ms",
        "name",
        "next_sweep_ms",
        "records",
        "settings",
        "waiting",
    )

    def __init__(
        self, name: str, settings: QueueSettings, longest_ms: int, max_wait_ms: int
    ) -> None:
        self.name = name
        self.settings = settings
        #: The longest sliding window and the longest wait kept (the accumulator's).
        self.longest_ms = longest_ms
        self.max_wait_ms = max_wait_ms
        #: Call id -> when it entered, for the calls waiting now.
        self.waiting: dict[str, int] = {}
        #: (left_at, wait, answered) of every exit the sliding windows may need, by left_at.
        self.records: list[tuple[int, int, bool]] = []
        #: Totals per calendar day (queue's time zone) of the exits.
        self.days: dict[date, _Tally] = {}
        #: The event time before which a sweep has nothing to forget here (the earliest of
        #: the first exit leaving the windows, the oldest day leaving, a wait going stale).
        #: Whatever is added lowers it to its own time to be forgotten.
        self.next_sweep_ms = 0

    def count(self, left_ms: int, wait_ms: int, answered: bool) -> None:
        day = local_date(left_ms, self.settings.tz)
        tally = self.days.get(day)
        if tally is None:
            tally = self.days[day] = _Tally()
        tally.add(wait_ms, answered, self.settings)
        record = (left_ms, wait_ms, answered)
        if not self.records or self.records[-1] <= record:
            self.records.append(record)
        else:
            insort(self.records, record)
        self.next_sweep_ms = min(self.next_sweep_ms, left_ms + self.longest_ms)

    def enter(self, call_id: str, at_ms: int) -> None:
        """Call ``call_id`` waits in the queue since ``at_ms``."""
        self.waiting[call_id] = at_ms
        self.next_sweep_ms = min(self.next_sweep_ms, at_ms + self.max_wait_ms + 1)

    def window(self, now_ms: int, length_ms: int) -> WindowKpis:
        lo = bisect_right(self.records, now_ms - length_ms, key=_first)
        hi = bisect_right(self.records, now_ms, key=_first)
        tally = _Tally()
        for _, wait_ms, answered in self.records[lo:hi]:
            tally.add(wait_ms, answered, self.settings)
        return tally.freeze()

    def snapshot(self, now_ms: int, windows_ms: Mapping[str, int]) -> QueueKpis:
        entered = [at for at in self.waiting.values() if at <= now_ms]
        day = self.days.get(local_date(now_ms, self.settings.tz))
        windows = {DAY: day.freeze() if day is not None else WindowKpis()}
        for name, length in windows_ms.items():
            windows[name] = self.window(now_ms, length)
        return QueueKpis(
            queue=self.name,
            waiting=len(entered),
            longest_wait_ms=now_ms - min(entered) if entered else None,
            windows=windows,
        )

    def sweep(self, horizon_ms: int, oldest_day: date) -> None:
        """Forget exits at or before ``horizon_ms`` and days before ``oldest_day``."""
        records = self.records
        if records and records[0][0] <= horizon_ms:
            del records[: bisect_right(records, horizon_ms, key=_first)]
        if self.days and min(self.days) < oldest_day:
            for day in [d for d in self.days if d < oldest_day]:
                del self.days[day]

    def plan_sweep(self) -> None:
        """Set :attr:`next_sweep_ms` from what the queue holds now (after a sweep)."""
        due = []
        if self.records:
            due.append(self.records[0][0] + self.longest_ms)
        if self.days:
            due.append(day_start_ms(min(self.days) + timedelta(days=2), self.settings.tz))
        if self.waiting:
            due.append(min(self.waiting.values()) + self.max_wait_ms + 1)
        self.next_sweep_ms = min(due, default=0)

    def empty(self) -> bool:
        """Nothing waiting, no exit a window may need, no day kept."""
        return not (self.waiting or self.records or self.days)


@dataclass(frozen=True, slots=True)
class _Pending:
    """An exit seen before its call's ``queued``."""

    queue: str | None
    left_ms: int
    answered: bool
    expires_ms: int
    #: Who listened when the exit was fed (counted when the entry arrives).
    listener: CountListener | None = None


class KpiAccumulator:
    """Incremental, event-time call-centre KPIs per queue (see the module docstring).

    Feed it with :meth:`queued`, :meth:`answered` and :meth:`abandoned` (or the core's
    call events through :meth:`apply`); each returns whether the fact changed anything.
    Ask :meth:`snapshot` for the figures at an event time.
    """

    def __init__(
        self,
        *,
        default: QueueSettings | None = None,
        queues: Mapping[str, QueueSettings] | None = None,
        windows_ms: Mapping[str, int] = DEFAULT_WINDOWS_MS,
        max_wait_ms: int = DEFAULT_MAX_WAIT_MS,
    ) -> None:
        if DAY in windows_ms:
            raise KpiError(f"{DAY!r} is the calendar-day window; name sliding windows otherwise")
        if any(length <= 0 for length in windows_ms.values()):
            raise KpiError("every window must be positive")
        if max_wait_ms <= 0:
            raise KpiError("max_wait_ms must be positive")
        self._default = default if default is not None else QueueSettings()
        self._settings = dict(queues or {})
        self._windows = dict(windows_ms)
        self._longest_ms = max(self._windows.values(), default=0)
        self._max_wait_ms = max_wait_ms
        self._queues: dict[str, _Queue] = {}
        #: Call id -> its queue, for the calls waiting now.
        self._waiting_in: dict[str, str] = {}
        #: Call id -> when its entry expires, for the calls that left (deduplication).
        self._left: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        #: (expires_ms, call id) for ``_left`` and ``_pending``; stale entries are skipped.
        self._expiry: list[tuple[int, str]] = []
        self._high_ms: int | None = None
        self._next_sweep_ms: int | None = None
        self.health = KpiHealth()
        #: Called with (queue, wait_ms, answered, the queue's settings) for every call
        #: counted from now on (a worker's counters); None: no one listens.
        self.on_count: CountListener | None = None
        #: True while past calls are read back (a worker taking a partition over): a call
        #: entered long ago is not given up as lost before its exit is read.
        self.hold_stale = False

    # --- input ---------------------------------------------------------------------------

    def settings(self, queue: str | None) -> QueueSettings:
        """The settings of ``queue`` (the default ones for an unconfigured queue)."""
        if queue is None:
            return self._default
        return self._settings.get(queue, self._default)

    def reconfigure(
        self, default: QueueSettings, queues: Mapping[str, QueueSettings] | None = None
    ) -> None:
        """New settings (a policy reload): calls counted from now on are judged by them,
        and the sliding windows are judged again; the day's calls counted so far keep the
        verdict they got."""
        self._default = default
        self._settings = dict(queues or {})
        for name, queue in self._queues.items():
            queue.settings = self.settings(name)

    def queued(self, queue: str, call_id: str, at_ms: int) -> bool:
        """Call ``call_id`` entered ``queue`` at ``at_ms``."""
        self._observe(at_ms)
        if call_id in self._waiting_in or call_id in self._left:
            self.health.duplicates += 1
            return False
        pending = self._pending.pop(call_id, None)
        if pending is not None:  # its exit came first
            expires = max(pending.expires_ms, self._expires_ms(pending.left_ms, queue))
            wait = pending.left_ms - at_ms
            self._record(
                queue, call_id, pending.left_ms, wait, pending.answered, expires, pending.listener
            )
            self._sweep_if_due()
            return True
        self._queue(queue).enter(call_id, at_ms)
        self._waiting_in[call_id] = queue
        self._sweep_if_due()
        return True

    def answered(self, call_id: str, at_ms: int, queue: str | None = None) -> bool:
        """Call ``call_id`` was answered at ``at_ms`` (``queue`` is used only when its
        ``queued`` is not known)."""
        return self._leave(call_id, at_ms, True, queue)

    def abandoned(self, call_id: str, at_ms: int, queue: str | None = None) -> bool:
        """The caller of ``call_id`` hung up while waiting, at ``at_ms``."""
        return self._leave(call_id, at_ms, False, queue)

    def apply(self, event: InputEvent) -> bool:
        """Feed a core call event; other events are ignored (False)."""
        if isinstance(event, CallQueued):
            return self.queued(event.queue, event.call_id, event.occurred_at)
        if isinstance(event, CallAnswered):
            return self.answered(event.call_id, event.occurred_at, event.queue)
        if isinstance(event, CallAbandoned):
            return self.abandoned(event.call_id, event.occurred_at, event.queue)
        return False

    def feed(self, events: Iterable[InputEvent]) -> int:
        """Apply every event; return how many changed something."""
        return sum(self.apply(event) for event in events)

    # --- output --------------------------------------------------------------------------

    def snapshot(self, now_ms: int) -> KpiSnapshot:
        """Every queue's KPIs, and the overall ones, at event time ``now_ms``."""
        self._observe(now_ms)
        self._sweep_if_due()
        queues = {
            name: queue.snapshot(now_ms, self._windows)
            for name, queue in sorted(self._queues.items())
        }
        names = [DAY, *self._windows]
        totals = {name: WindowKpis() for name in names}
        longest: int | None = None
        for kpis in queues.values():
            for name in names:
                totals[name] = totals[name] + kpis.windows[name]
            if kpis.longest_wait_ms is not None:
                longest = max(longest or 0, kpis.longest_wait_ms)
        overall = QueueKpis(
            queue=None,
            waiting=sum(k.waiting for k in queues.values()),
            longest_wait_ms=longest,
            windows=totals,
        )
        return KpiSnapshot(at_ms=now_ms, queues=queues, overall=overall)

    def retained(self) -> int:
        """How many items the accumulator holds (calls, exits, days, ids): bounded by
        the traffic of the longest window plus two days, whatever the run's length."""
        per_queue = sum(
            len(q.waiting) + len(q.records) + len(q.days) for q in self._queues.values()
        )
        return (
            per_queue
            + len(self._waiting_in)
            + len(self._left)
            + len(self._pending)
            + len(self._expiry)
        )

    # --- internals -----------------------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue(
                name, self.settings(name), self._longest_ms, self._max_wait_ms
            )
        return queue

    def _expires_ms(self, left_ms: int, queue: str | None) -> int:
        """When an exit at ``left_ms`` can no longer count in any window: once it is
        older than the longest sliding window and its day is before yesterday."""
        tz = self.settings(queue).tz
        after_tomorrow = local_date(left_ms, tz) + timedelta(days=2)
        return max(left_ms + self._longest_ms, day_start_ms(after_tomorrow, tz))

    def _leave(self, call_id: str, at_ms: int, answered: bool, queue: str | None) -> bool:
        self._observe(at_ms)
        if call_id in self._left or call_id in self._pending:
            self.health.duplicates += 1
            return False
        entered_in = self._waiting_in.pop(call_id, None)
        expires = self._expires_ms(at_ms, entered_in if entered_in is not None else queue)
        assert self._high_ms is not None
        if expires <= self._high_ms:
            if entered_in is not None:  # too late to count; the call is gone all the same
                del self._queues[entered_in].waiting[call_id]
            self.health.late += 1
            return False
        if entered_in is None:
            self._pending[call_id] = _Pending(queue, at_ms, answered, expires, self.on_count)
            heapq.heappush(self._expiry, (expires, call_id))
        else:
            entered = self._queues[entered_in].waiting.pop(call_id)
            self._record(
                entered_in, call_id, at_ms, at_ms - entered, answered, expires, self.on_count
            )
        self._sweep_if_due()
        return True

    def _record(
        self,
        queue: str,
        call_id: str,
        left_ms: int,
        wait_ms: int,
        answered: bool,
        exp: int,
        listener: CountListener | None,
    ) -> None:
        """Count call ``call_id``, which left ``queue`` at ``left_ms`` after ``wait_ms``,
        and tell ``listener`` (who listened when its exit was fed)."""
        self._left[call_id] = exp
        heapq.heappush(self._expiry, (exp, call_id))
        counted = self._queue(queue)
        counted.count(left_ms, max(0, wait_ms), answered)
        if listener is not None:
            listener(queue, max(0, wait_ms), answered, counted.settings)

    def _observe(self, at_ms: int) -> None:
        if self._high_ms is None or at_ms > self._high_ms:
            self._high_ms = at_ms
        if self._next_sweep_ms is None:
            self._next_sweep_ms = at_ms + SWEEP_EVERY_MS

    def _sweep_if_due(self) -> None:
        assert self._high_ms is not None and self._next_sweep_ms is not None
        if self._high_ms >= self._next_sweep_ms:
            self.sweep()

    def sweep(self) -> None:
        """Forget what no window can need any more (done every minute of event time), and
        the queues left with nothing. Costs little for a queue with nothing to forget."""
        high = self._high_ms
        if high is None:
            return
        self._next_sweep_ms = high + SWEEP_EVERY_MS
        horizon = high - self._longest_ms
        stale_before = high - self._max_wait_ms
        oldest_days: dict[tzinfo, date] = {}
        emptied = []
        for name, queue in self._queues.items():
            if queue.next_sweep_ms > high:
                continue  # nothing to forget yet
            tz = queue.settings.tz
            oldest = oldest_days.get(tz)
            if oldest is None:
                oldest = oldest_days[tz] = local_date(high, tz) - timedelta(days=1)
            queue.sweep(horizon, oldest)
            if queue.waiting and not self.hold_stale:
                stale = [c for c, at in queue.waiting.items() if at < stale_before]
                for call_id in stale:
                    del queue.waiting[call_id]
                    del self._waiting_in[call_id]
                self.health.stale += len(stale)
            if queue.empty():
                emptied.append(name)
            else:
                queue.plan_sweep()
        for name in emptied:
            del self._queues[name]
        while self._expiry and self._expiry[0][0] <= high:
            expires, call_id = heapq.heappop(self._expiry)
            if self._left.get(call_id) == expires:
                del self._left[call_id]
            pending = self._pending.get(call_id)
            if pending is not None and pending.expires_ms == expires:
                del self._pending[call_id]
                self.health.unmatched += 1
