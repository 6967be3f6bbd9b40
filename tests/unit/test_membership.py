"""After the worker's process stood still, the timers wait for the group's word
(streams/membership.py). The clock is injected: no test waits for a timer."""

from __future__ import annotations

import asyncio

import pytest

from slawatch.streams.membership import Ownership, PauseWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watch_and_ownership(
    clock: Clock, assigned: set[str], answered: dict[str, float], fallback_s: float | None = None
) -> tuple[PauseWatch, Ownership, list[str]]:
    counted: list[str] = []
    watch = PauseWatch(threshold_s=1.5, clock=clock)
    ownership = Ownership(
        watch, "group", answered.get, lambda: assigned, fallback_s=fallback_s, clock=clock,
        poll_s=0, on_pause=lambda: counted.append("pause"), on_drop=lambda: counted.append("drop"),
    )  # fmt: skip
    return watch, ownership, counted


def test_beats_closer_than_the_threshold_are_no_pause() -> None:
    clock = Clock()
    watch, ownership, _ = watch_and_ownership(clock, {"tp0"}, {})
    for _ in range(100):
        clock.now += 1.4
        watch.beat()
        assert watch.pause_ended() is None
        assert ownership.quiet()


def test_a_pause_seen_by_the_thread_is_settled_by_a_heartbeat_sent_after_it() -> None:
    clock = Clock()
    answered = {"group": 100.0}
    watch, ownership, counted = watch_and_ownership(clock, {"tp0", "tp1"}, answered)
    clock.now = 110.0
    watch.beat()  # the thread runs first after the process resumes
    noticed = watch.pause_ended()
    assert noticed == 110.0 and watch.stood_still_s == pytest.approx(10.0)
    assert not ownership.quiet()

    async def scenario() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp0"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done(), "a heartbeat sent before the pause ended says nothing"
        answered["group"] = 110.2  # sent after the pause, answered without error
        assert await waiting
        assert await ownership.holds("tp1")

    asyncio.run(scenario())
    assert counted == ["pause"]
    assert watch.pause_ended() is None


def test_a_pause_the_agent_sees_before_the_thread_is_a_pause_too() -> None:
    clock = Clock()
    watch, ownership, _ = watch_and_ownership(clock, {"tp0"}, {"group": 100.0})
    clock.now = 104.0  # resumed; the thread has not beaten yet
    assert watch.pause_ended() == 104.0
    watch.beat()  # then the thread beats: the same pause, still to settle
    assert watch.pause_ended() == 104.0
    assert not ownership.quiet()


def test_a_partition_given_away_meanwhile_is_dropped_until_the_next_rebalance() -> None:
    clock = Clock()
    assigned = {"tp0", "tp1"}
    answered: dict[str, float] = {}
    _watch, ownership, counted = watch_and_ownership(clock, assigned, answered)
    clock.now = 110.0

    async def scenario() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp1"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        assigned.discard("tp1")  # the group moved tp1 on; this worker still has tp0
        answered["group"] = 110.5
        assert not await waiting
        assert not await ownership.holds("tp1"), "its buffered messages are dropped too"
        assert await ownership.holds("tp0")
        ownership.rebalanced()
        assert ownership.quiet()

    asyncio.run(scenario())
    assert counted == ["pause", "drop", "drop"]


def test_a_rebalance_after_the_pause_settles_it() -> None:
    clock = Clock()
    _watch, ownership, counted = watch_and_ownership(clock, {"tp0"}, {})
    clock.now = 110.0

    async def scenario() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp0"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        clock.now = 111.0
        ownership.rebalanced()  # revoked
        assert await waiting  # assigned now: tp0
        assert not await ownership.holds("tp1"), "not assigned when it settled"
        ownership.rebalanced()  # the next rebalance: the group's word again
        assert ownership.quiet()

    asyncio.run(scenario())
    assert counted == ["pause", "drop"]


def test_without_heartbeat_news_it_waits_the_fallback_only_when_one_is_set() -> None:
    clock = Clock()
    _watch, ownership, _ = watch_and_ownership(clock, {"tp0"}, {})
    clock.now = 110.0

    async def no_fallback() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp0"))
        clock.now = 1000.0
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done(), "with heartbeats recorded, it waits for the group"
        waiting.cancel()

    asyncio.run(no_fallback())

    clock = Clock()
    _watch, ownership, _ = watch_and_ownership(clock, {"tp0"}, {}, fallback_s=6.0)
    clock.now = 110.0

    async def fallback() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp0"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        clock.now = 116.5
        assert await waiting

    asyncio.run(fallback())


def test_the_threshold_must_exceed_the_beat() -> None:
    with pytest.raises(ValueError):
        PauseWatch(threshold_s=0.1, every_s=0.1)


def test_a_heartbeat_refused_after_the_pause_settles_it_with_nothing_applied() -> None:
    """The session expired during the pause: the coordinator answers the next heartbeat
    "unknown member" and a rebalance follows, which Faust starts by waiting for the
    message the timers hold. So the refusal settles the pause at once (no waiting on the
    rebalance: both would wait forever), every partition is refused until the rebalance,
    and then all are the group's word again."""
    clock = Clock()
    answered: dict[str, float] = {"group": 100.0}
    refused: dict[str, float] = {}
    counted: list[str] = []
    watch = PauseWatch(threshold_s=1.5, clock=clock)
    ownership = Ownership(
        watch, "group", answered.get, lambda: {"tp0", "tp1"}, heartbeat_refused_at=refused.get,
        clock=clock, poll_s=0, on_pause=lambda: counted.append("pause"),
        on_drop=lambda: counted.append("drop"),
    )  # fmt: skip
    clock.now = 110.0
    watch.beat()

    async def scenario() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp0"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        refused["group"] = 109.0  # sent before the pause ended: says nothing
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        refused["group"] = 110.3  # answered after it: "rejoin"
        assert not await waiting
        assert not await ownership.holds("tp1")
        assert ownership.refuses("tp0") and ownership.refuses("tp1")
        clock.now = 111.0
        watch.beat()
        ownership.rebalanced()  # the rebalance, once the message in hand is let go
        assert not ownership.refuses("tp0")
        assert await ownership.holds("tp0")  # settled by the rebalance: the group's word

    asyncio.run(scenario())
    assert counted == ["drop", "drop", "pause"]


def test_a_rebalance_begun_after_the_pause_settles_it_with_nothing_applied() -> None:
    """The refusal was answered before the pause was noticed (or never reached this
    group's record), but the rebalance it asked for has begun: Faust's revocation waits
    for the message the timers hold, so the pause settles at once, nothing applied."""
    clock = Clock()
    rebalancing = [False]
    watch = PauseWatch(threshold_s=1.5, clock=clock)
    ownership = Ownership(
        watch, "group", {"group": 100.0}.get, lambda: {"tp0"}, clock=clock, poll_s=0,
        rebalancing=lambda: rebalancing[0],
    )  # fmt: skip
    clock.now = 110.0
    watch.beat()

    async def scenario() -> None:
        waiting = asyncio.ensure_future(ownership.holds("tp0"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        rebalancing[0] = True  # the revocation has begun
        assert not await waiting
        clock.now = 111.0
        watch.beat()
        ownership.rebalanced()  # the revocation, once the message is let go
        assert await ownership.holds("tp0")  # the assignment's tail: settled, not refused

    asyncio.run(scenario())


def test_a_pause_settled_at_the_tail_of_a_rebalance_is_not_refused_for_good() -> None:
    """The pause ends while Faust finishes a rebalance that assigned after it (its flag
    still up): the assignment is the group's word, not a rebalance still to come, or the
    worker would refuse its partitions until some later rebalance."""
    clock = Clock()
    watch = PauseWatch(threshold_s=1.5, clock=clock)
    ownership = Ownership(
        watch, "group", {}.get, lambda: {"tp0"}, clock=clock, poll_s=0,
        rebalancing=lambda: True,
    )  # fmt: skip
    clock.now = 110.0
    watch.beat()
    clock.now = 111.0
    watch.beat()
    ownership.rebalanced()  # assigned after the pause; the rebalance's tail still runs
    assert asyncio.run(ownership.holds("tp0"))
    assert not ownership.refuses("tp0")
