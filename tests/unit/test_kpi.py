"""The call-centre KPI accumulator (slawatch/core/kpi.py) on calls made by hand."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slawatch.core.events import CallAbandoned, CallAnswered, CallQueued, MessageReceived
from slawatch.core.kpi import (
    DAY,
    KpiAccumulator,
    KpiError,
    QueueSettings,
    WindowKpis,
)

T0 = int(datetime(2024, 3, 5, 9, 0, tzinfo=UTC).timestamp() * 1000)
S = 1000
MIN = 60 * S
HOUR = 60 * MIN


def call(
    acc: KpiAccumulator, cid: str, entered: int, wait: int, answered: bool, q: str = "s"
) -> None:
    acc.queued(q, cid, entered)
    if answered:
        acc.answered(cid, entered + wait)
    else:
        acc.abandoned(cid, entered + wait)


def hand_made() -> KpiAccumulator:
    """Six calls on one queue, target 20 s, short abandon < 5 s."""
    acc = KpiAccumulator()
    call(acc, "a10", T0, 10 * S, True)  # answered within
    call(acc, "a20", T0, 20 * S, True)  # answered within (the target itself counts)
    call(acc, "a30", T0, 30 * S, True)  # answered late
    call(acc, "x3", T0, 3 * S, False)  # short abandon (also within)
    call(acc, "x15", T0, 15 * S, False)  # abandoned within
    call(acc, "x40", T0, 40 * S, False)  # abandoned late
    return acc


def test_the_four_service_levels_on_a_hand_made_example() -> None:
    w = hand_made().snapshot(T0 + MIN).queues["s"].windows["15m"]
    assert (w.offered, w.answered, w.answered_within) == (6, 3, 2)
    assert (w.abandoned, w.short_abandoned, w.abandoned_within) == (3, 1, 2)
    assert w.left_within == 4
    assert w.sl_asterisk == pytest.approx(2 / 3)  # 2 answered within / 3 answered
    assert w.sl2_asterisk == pytest.approx(4 / 6)  # (2 + 2) / (3 + 3)
    assert w.sl_genesys == pytest.approx(2 / 5)  # 2 / (6 offered - 1 short)
    assert w.sl_connect == pytest.approx(4 / 6)  # 4 left within / 6 offered
    assert w.asa_ms == pytest.approx(20 * S)  # (10 + 20 + 30) / 3
    assert w.avg_abandon_ms == pytest.approx((3 + 15 + 40) * S / 3)
    assert w.max_abandon_wait_ms == 40 * S
    assert w.abandonment_rate == pytest.approx(0.5)
    assert w.service_levels() == {
        "asterisk": w.sl_asterisk,
        "asterisk_sl2": w.sl2_asterisk,
        "genesys": w.sl_genesys,
        "connect": w.sl_connect,
    }


def test_short_abandon_threshold_is_strict_and_per_queue() -> None:
    acc = KpiAccumulator(
        queues={"vip": QueueSettings(target_ms=10 * S, short_abandon_ms=2 * S)},
    )
    call(acc, "s5", T0, 5 * S, False)  # default queue: 5 s is not < 5 s
    call(acc, "s4", T0, 4_999, False)
    call(acc, "v2", T0, 2 * S, False, q="vip")  # not < 2 s
    call(acc, "v15", T0, 15 * S, True, q="vip")  # late for vip (10 s), within for s
    call(acc, "s15", T0, 15 * S, True)
    snap = acc.snapshot(T0 + MIN)
    s, vip = snap.queues["s"].windows[DAY], snap.queues["vip"].windows[DAY]
    assert (s.short_abandoned, s.answered_within) == (1, 1)
    assert (vip.short_abandoned, vip.answered_within, vip.abandoned_within) == (0, 0, 1)
    overall = snap.overall.windows[DAY]  # each call judged against its own queue
    assert overall == s + vip
    assert (overall.answered_within, overall.offered) == (1, 5)


def test_zero_denominators_are_none() -> None:
    empty = KpiAccumulator().snapshot(T0)
    w = empty.overall.windows["1h"]
    assert w == WindowKpis()
    assert empty.queues == {}
    assert all(v is None for v in w.service_levels().values())
    assert w.asa_ms is w.avg_abandon_ms is w.abandonment_rate is w.max_abandon_wait_ms is None
    assert empty.overall.waiting == 0 and empty.overall.longest_wait_ms is None

    acc = KpiAccumulator()
    call(acc, "x1", T0, 1 * S, False)  # only a short abandon
    w = acc.snapshot(T0 + S).overall.windows["15m"]
    assert w.sl_asterisk is None  # no answered call
    assert w.sl_genesys is None  # offered - short abandons = 0
    assert w.sl2_asterisk == w.sl_connect == 1.0
    assert w.asa_ms is None and w.abandonment_rate == 1.0


def test_windows_slide_by_when_calls_left_the_queue() -> None:
    acc = KpiAccumulator()
    call(acc, "c1", T0 - 5 * MIN, 5 * MIN, True)  # entered before, left at T0
    call(acc, "c2", T0 + 10 * MIN, 0, True)
    call(acc, "c3", T0 + 50 * MIN, 0, False)

    def offered(now: int, window: str) -> int:
        return acc.snapshot(now).overall.windows[window].offered

    assert offered(T0 + 55 * MIN, "15m") == 1
    assert offered(T0 + 55 * MIN, "1h") == 3
    assert offered(T0 + HOUR - 1, "1h") == 3
    assert offered(T0 + HOUR, "1h") == 2  # (now - 1 h, now]: c1 left exactly 1 h ago
    assert offered(T0 + 50 * MIN + 15 * MIN, "15m") == 0
    assert offered(T0 + 50 * MIN + 15 * MIN - 1, "15m") == 1
    assert offered(T0 + 2 * HOUR, DAY) == 3  # the day keeps them all


def test_the_day_is_the_queues_calendar_day_in_its_time_zone() -> None:
    ny = ZoneInfo("America/New_York")
    acc = KpiAccumulator(queues={"ny": QueueSettings(tz=ny)})  # "utc" uses the default
    midnight_ny = int(datetime(2024, 3, 6, tzinfo=ny).timestamp() * 1000)  # 05:00 UTC
    call(acc, "late", midnight_ny - 2 * S, 1 * S, True, q="ny")  # left 23:59:59
    acc.queued("ny", "across", midnight_ny - 10 * S)  # waits across midnight
    call(acc, "utc1", midnight_ny - 2 * S, 1 * S, True, q="utc")
    before = acc.snapshot(midnight_ny - 1)
    assert before.queues["ny"].windows[DAY].offered == 1
    assert (before.queues["ny"].waiting, before.queues["ny"].longest_wait_ms) == (1, 9_999)
    acc.answered("across", midnight_ny + 20 * S)
    call(acc, "early", midnight_ny + 5 * S, 1 * S, False, q="ny")
    after = acc.snapshot(midnight_ny + MIN)
    ny_day = after.queues["ny"].windows[DAY]
    assert (ny_day.offered, ny_day.answered, ny_day.abandoned) == (2, 1, 1)
    assert ny_day.answered_within == 0  # "across" waited 30 s and counts in the day it left
    assert after.queues["ny"].windows["15m"].offered == 3
    # 05:01 UTC is still March 6th in UTC: the utc queue's day holds its call
    assert after.queues["utc"].windows[DAY].offered == 1
    assert after.overall.windows[DAY].offered == 3
    next_day = acc.snapshot(midnight_ny + 24 * HOUR)
    assert next_day.queues["ny"].windows[DAY].offered == 0


def test_duplicates_count_once() -> None:
    acc = KpiAccumulator()
    assert acc.queued("s", "c", T0)
    assert not acc.queued("s", "c", T0)  # delivered twice
    assert not acc.queued("other", "c", T0 + S)  # a second entry for a waiting call
    assert acc.answered("c", T0 + 10 * S)
    assert not acc.answered("c", T0 + 10 * S)
    assert not acc.abandoned("c", T0 + 12 * S)  # the other exit: the first one wins
    assert not acc.queued("s", "c", T0)  # its entry again, after it left
    w = acc.snapshot(T0 + MIN).overall.windows[DAY]
    assert (w.offered, w.answered, w.abandoned, w.answer_wait_ms) == (1, 1, 0, 10 * S)
    assert acc.health.duplicates == 5
    assert list(acc.snapshot(T0 + MIN).queues) == ["s"]


def test_an_exit_before_its_entry_waits_for_it_and_is_never_a_zero_wait() -> None:
    acc = KpiAccumulator()
    assert acc.answered("c", T0 + 30 * S, queue="s")
    assert not acc.answered("c", T0 + 30 * S)  # a duplicate while it waits for its entry
    assert acc.snapshot(T0 + MIN).overall.windows[DAY].offered == 0
    assert acc.queued("s", "c", T0)  # its entry arrives (out of order)
    w = acc.snapshot(T0 + MIN).queues["s"].windows[DAY]
    assert (w.answered, w.answered_within, w.answer_wait_ms) == (1, 0, 30 * S)

    assert acc.abandoned("lost", T0 + MIN, queue="s")  # its entry never comes
    acc.snapshot(T0 + 3 * 24 * HOUR)
    assert acc.health.unmatched == 1
    assert acc.snapshot(T0 + MIN).overall.windows["1h"].offered == 0


def test_an_exit_stamped_before_its_entry_waited_zero() -> None:
    acc = KpiAccumulator()
    acc.queued("s", "c", T0)
    acc.answered("c", T0 - 3 * S)
    w = acc.snapshot(T0).overall.windows["15m"]
    assert (w.answered, w.answered_within, w.answer_wait_ms) == (1, 1, 0)


def test_calls_waiting_now_and_the_longest_wait() -> None:
    acc = KpiAccumulator()
    acc.queued("a", "a1", T0)
    acc.queued("a", "a2", T0 + 5 * S)
    acc.queued("b", "b1", T0 + 10 * S)
    acc.queued("b", "b2", T0 + 100 * S)  # after the snapshot's time
    snap = acc.snapshot(T0 + 30 * S)
    assert (snap.queues["a"].waiting, snap.queues["a"].longest_wait_ms) == (2, 30 * S)
    assert (snap.queues["b"].waiting, snap.queues["b"].longest_wait_ms) == (1, 20 * S)
    assert (snap.overall.waiting, snap.overall.longest_wait_ms) == (3, 30 * S)
    acc.answered("a1", T0 + 40 * S)
    snap = acc.snapshot(T0 + 2 * MIN)
    assert (snap.queues["a"].waiting, snap.queues["a"].longest_wait_ms) == (1, 115 * S)
    assert (snap.overall.waiting, snap.overall.longest_wait_ms) == (3, 115 * S)


def test_a_call_whose_exit_was_lost_stops_waiting_after_max_wait() -> None:
    acc = KpiAccumulator(max_wait_ms=2 * HOUR)
    acc.queued("s", "lost", T0)
    assert acc.snapshot(T0 + HOUR).overall.waiting == 1
    assert acc.snapshot(T0 + 3 * HOUR).overall.waiting == 0
    assert acc.health.stale == 1


def test_an_exit_too_old_for_any_window_is_late() -> None:
    acc = KpiAccumulator()
    acc.snapshot(T0 + 3 * 24 * HOUR)
    assert not acc.answered("old", T0, queue="s")
    assert acc.health.late == 1
    assert acc.snapshot(T0 + 3 * 24 * HOUR).overall.windows[DAY].offered == 0


def test_memory_stays_bounded_over_many_days() -> None:
    acc = KpiAccumulator(queues={"paris": QueueSettings(tz=ZoneInfo("Europe/Paris"))})
    sizes = {}
    for day in range(40):
        for minute in range(0, 24 * 60, 2):
            at = T0 + day * 24 * HOUR + minute * MIN
            call(acc, f"{day}-{minute}", at, (minute % 45) * S, minute % 7 != 0, q="paris")
        acc.queued("paris", f"lost-{day}", T0 + day * 24 * HOUR)  # never leaves
        sizes[day] = acc.retained()
        snap = acc.snapshot(T0 + (day + 1) * 24 * HOUR - MIN)
        assert snap.queues["paris"].windows["1h"].offered == 30
    # two days of per-day totals, an hour of exits, the ids that can still count
    assert max(sizes[d] for d in range(5, 40)) <= 1.1 * max(sizes[d] for d in range(2, 5))
    assert sizes[39] < 8 * 720  # a day holds 720 calls; 40 days would be 28,800
    assert acc.health.stale == 40  # each waited more than 12 h by the day's last snapshot


def test_apply_reads_the_core_call_events() -> None:
    acc = KpiAccumulator()
    common = {"schema_version": 1, "call_id": "c"}
    assert acc.apply(CallQueued(**common, event_id="q", occurred_at=T0, queue="s"))
    assert acc.apply(CallAnswered(**common, event_id="a", occurred_at=T0 + S, agent="ann"))
    assert not acc.apply(CallAbandoned(**common, event_id="x", occurred_at=T0 + S))
    other = MessageReceived(
        schema_version=1,
        event_id="m",
        occurred_at=T0,
        ticket_id="t",
        message_id="m",
    )
    assert not acc.apply(other)
    assert acc.snapshot(T0 + S).queues["s"].windows[DAY].answered == 1


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(KpiError):
        QueueSettings(target_ms=0)
    with pytest.raises(KpiError):
        QueueSettings(short_abandon_ms=-1)
    for goal in (0, -0.5, 1.01, 80, float("nan")):
        with pytest.raises(KpiError, match="goal"):
            QueueSettings(goal=goal)
    assert QueueSettings(goal=1).goal == 1
    assert QueueSettings().goal == 0.8
    with pytest.raises(KpiError):
        KpiAccumulator(windows_ms={DAY: HOUR})
    with pytest.raises(KpiError):
        KpiAccumulator(windows_ms={"x": 0})


# --- property: any order, any duplicates, the same figures as a direct count --------------

calls_strategy = st.lists(
    st.tuples(
        st.integers(0, 3 * HOUR),  # entered, after T0
        st.one_of(st.none(), st.integers(0, 90 * S)),  # wait (None: still waiting)
        st.booleans(),  # answered
        st.sampled_from(["a", "b"]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(calls=calls_strategy, seed=st.integers(0, 2**32 - 1), duplicates=st.integers(0, 10))
def test_any_order_and_duplicates_give_the_direct_count(
    calls: list[tuple[int, int | None, bool, str]], seed: int, duplicates: int
) -> None:
    facts = []
    for n, (entered, wait, answered, queue) in enumerate(calls):
        facts.append(("q", queue, str(n), T0 + entered))
        if wait is not None:
            facts.append(("a" if answered else "x", queue, str(n), T0 + entered + wait))
    rng = random.Random(seed)
    if not facts:
        duplicates = 0
    facts += [rng.choice(facts) for _ in range(duplicates)]
    rng.shuffle(facts)
    acc = KpiAccumulator()
    for kind, queue, cid, at in facts:
        if kind == "q":
            acc.queued(queue, cid, at)
        elif kind == "a":
            acc.answered(cid, at)
        else:
            acc.abandoned(cid, at)
    now = T0 + 3 * HOUR + 2 * MIN
    snap = acc.snapshot(now)
    assert acc.health.duplicates == duplicates
    for name, lo in ((DAY, T0 - HOUR), ("15m", now - 15 * MIN), ("1h", now - HOUR)):
        mine = [(e, w, a) for e, w, a, _ in calls if w is not None and lo < T0 + e + w <= now]
        w = snap.overall.windows[name]
        assert w.answered == sum(a for _, _, a in mine)
        assert w.abandoned == sum(not a for _, _, a in mine)
        assert w.answered_within == sum(a and wt <= 20 * S for _, wt, a in mine)
        assert w.abandoned_within == sum(not a and wt <= 20 * S for _, wt, a in mine)
        assert w.short_abandoned == sum(not a and wt < 5 * S for _, wt, a in mine)
        assert w.answer_wait_ms == sum(wt for _, wt, a in mine if a)
    waiting = [T0 + e for e, w, _, _ in calls if w is None]
    assert snap.overall.waiting == len(waiting)
    assert snap.overall.longest_wait_ms == (now - min(waiting) if waiting else None)


def test_an_exit_fed_live_is_counted_when_its_entry_is_read_back_later() -> None:
    """A worker that took a partition over applies a call's exit live before its read-back
    reaches the call's entry: the call is counted (by whoever listened at its exit)."""
    counted: list[tuple[str, int, bool]] = []
    kpis = KpiAccumulator()
    kpis.on_count = lambda queue, wait, answered, settings: counted.append((queue, wait, answered))
    assert kpis.answered("c1", T0 + 30_000, "q")  # live: its entry is not known yet
    listener, kpis.on_count = kpis.on_count, None  # the read-back feeds without counting
    assert kpis.queued("q", "c1", T0)
    kpis.on_count = listener
    assert counted == [("q", 30_000, True)]
    # ... and a call read back whole is not counted (its first owner counted it).
    kpis.on_count = None
    kpis.queued("q", "c2", T0)
    kpis.answered("c2", T0 + 1_000)
    kpis.on_count = listener
    assert counted == [("q", 30_000, True)]


def test_a_call_waiting_in_a_quiet_queue_goes_stale_on_time() -> None:
    """A queue quiet for hours is swept again as soon as something new in it needs it."""
    kpis = KpiAccumulator(max_wait_ms=12 * 3_600_000)
    kpis.queued("q", "c0", T0)
    kpis.answered("c0", T0 + 5_000)
    kpis.snapshot(T0 + 2 * 3_600_000)  # a sweep plans the quiet queue's next one far ahead
    lost = T0 + 2 * 3_600_000 + 60_000
    kpis.queued("q", "lost", lost)  # its exit never comes
    later = kpis.snapshot(lost + 13 * 3_600_000)
    assert "q" not in later.queues or later.queues["q"].waiting == 0
    assert kpis.health.stale == 1


def test_a_call_read_back_is_not_given_up_while_its_exit_is_still_to_come() -> None:
    """A worker reading yesterday's calls back snapshots at wall-clock now meanwhile: a call
    that entered 13 h ago (same day) and whose exit is in a later message still counts."""
    kpis = KpiAccumulator(max_wait_ms=12 * 3_600_000)
    now = T0 + 13 * 3_600_000
    kpis.hold_stale = True
    kpis.queued("q", "old", T0)
    kpis.snapshot(now)  # a publisher's snapshot sweeps at now
    kpis.answered("old", T0 + 10_000)
    kpis.hold_stale = False
    assert kpis.health.stale == 0
    assert kpis.snapshot(now).queues["q"].windows["day"].answered == 1
