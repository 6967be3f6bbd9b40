from __future__ import annotations

from slawatch.core.clock import ManualClock
from slawatch.core.watermark import InputWatermarks, ReadProgress, partition_watermark


def test_caught_up_partition_vouches_up_to_when_its_end_was_seen() -> None:
    assert (
        partition_watermark(caught_up=True, last_record_ms=100, end_observed_ms=5_000, grace_ms=500)
        == 4_500
    )


def test_lagging_partition_vouches_only_up_to_its_last_record() -> None:
    assert (
        partition_watermark(
            caught_up=False, last_record_ms=1_000, end_observed_ms=9_000, grace_ms=500
        )
        == 500
    )
    assert (
        partition_watermark(
            caught_up=False, last_record_ms=None, end_observed_ms=9_000, grace_ms=500
        )
        is None
    )


def test_no_watermark_until_every_input_partition_reported() -> None:
    marks = InputWatermarks(["tickets/0", "tickets/1", "calls/0"])
    marks.report("tickets/0", 10)
    marks.report("calls/0", 30)
    assert marks.value() is None and marks.missing() == ["tickets/1"]
    marks.report("tickets/1", 20)
    assert marks.value() == 10


def test_the_slowest_partition_holds_everyone_back_and_nothing_goes_back() -> None:
    marks = InputWatermarks(["a/0", "b/0"])
    marks.report("a/0", 1_000)
    marks.report("b/0", 50)
    assert marks.value() == 50
    marks.report("b/0", 40)  # an older report (a previous owner) never moves it back
    assert marks.value() == 50
    marks.report("b/0", 2_000)
    assert marks.value() == 1_000
    marks.report("zzz/9", 0)  # not an input partition: ignored
    assert marks.value() == 1_000


def test_a_lagging_backlog_of_history_is_judged_in_its_own_event_time() -> None:
    # Records produced at 1,000,000 about events that occurred at 2,000: the unread rest of
    # the backlog occurred after 2,000, not after the produce time.
    lagging = {"caught_up": False, "last_record_ms": 1_000_000, "end_observed_ms": 9_000_000}
    assert partition_watermark(**lagging, last_event_ms=2_000, grace_ms=500) == 1_500
    # Live traffic (events occur just before they are produced): the produce time bounds it.
    assert partition_watermark(**lagging, last_event_ms=1_000_200, grace_ms=500) == 999_500
    # Caught up: everything produced was read, whatever its event time.
    caught_up = {**lagging, "caught_up": True}
    assert partition_watermark(**caught_up, last_event_ms=2_000, grace_ms=500) == 8_999_500


MONTH_MS = 30 * 86_400_000


def test_no_input_carries_a_watermark_past_the_ceiling() -> None:
    far = 1_000_000 + MONTH_MS
    for caught_up in (True, False):
        assert (
            partition_watermark(
                caught_up=caught_up,
                last_record_ms=far,
                last_event_ms=far,
                end_observed_ms=far,
                grace_ms=500,
                ceiling_ms=1_300_000,
            )
            == 1_299_500
        )
    # Below the ceiling nothing changes.
    assert (
        partition_watermark(
            caught_up=False,
            last_record_ms=1_000_000,
            last_event_ms=900_000,
            end_observed_ms=2_000_000,
            grace_ms=500,
            ceiling_ms=1_300_000,
        )
        == 899_500
    )


def test_read_progress_never_reports_past_its_clock() -> None:
    clock = ManualClock(1_000_000)
    progress = ReadProgress(clock, grace_ms=500)
    assert progress.watermark("t/0", caught_up=False, end_observed_ms=1_000_000) is None
    # A record stamped a month ahead, with an event time a little ahead (validation lets
    # occurred_at be up to the allowed skew ahead).
    progress.accepted("t/0", record_ms=1_000_000 + MONTH_MS, event_ms=1_200_000)
    assert progress.last_record_ms("t/0") == 1_000_000  # cut when recorded
    assert progress.last_event_ms("t/0") == 1_000_000
    # Caught up, with the end seen (by another clock) a month ahead: still the clock.
    caught_up = progress.watermark("t/0", caught_up=True, end_observed_ms=1_000_000 + MONTH_MS)
    assert caught_up == 1_000_000 - 500
    assert progress.watermark("t/0", caught_up=False, end_observed_ms=None) == 999_500
    # Time passes: the stored times do not follow the clock; the bound does.
    clock.advance(600_000)
    assert progress.watermark("t/0", caught_up=False, end_observed_ms=None) == 999_500
    assert progress.watermark("t/0", caught_up=True, end_observed_ms=1_550_000) == 1_549_500
    assert progress.watermark("t/0", caught_up=True, end_observed_ms=MONTH_MS) == 1_599_500


def test_read_progress_may_be_allowed_ahead_of_its_clock() -> None:
    progress = ReadProgress(ManualClock(1_000_000), grace_ms=0, max_ahead_ms=300_000)
    progress.accepted("t/0", record_ms=1_000_000 + MONTH_MS, event_ms=1_000_000 + MONTH_MS)
    assert progress.watermark("t/0", caught_up=False, end_observed_ms=None) == 1_300_000


def test_read_progress_never_goes_back() -> None:
    progress = ReadProgress(ManualClock(10_000), grace_ms=0)
    progress.accepted("t/0", record_ms=9_000, event_ms=8_000)
    progress.accepted("t/0", record_ms=5_000, event_ms=4_000)  # an older record, read later
    assert (progress.last_record_ms("t/0"), progress.last_event_ms("t/0")) == (9_000, 8_000)
    assert progress.last_record_ms("t/1") is None
