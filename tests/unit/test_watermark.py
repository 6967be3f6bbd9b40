from __future__ import annotations

from slawatch.core.watermark import InputWatermarks, partition_watermark


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
