"""Faust's table recovery, overtaken by a new rebalance, starts again
(``streams/compat.py: faust_recovery_restarts_on_rebalance``): on the real ``Recovery``
of a Faust app, the two steps an overtaken iteration would run on the new assignment's
partitions raise ``RebalanceAgain`` (which Faust's loop answers by starting over) while a
newer rebalance waits, and run as before otherwise."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import faust
import pytest
from faust.tables.recovery import RebalanceAgain
from faust.types import TP

from slawatch.streams.compat import faust_recovery_restarts_on_rebalance


class _SeekRecorder:
    """Stands in for the consumer's one call the pass-through test needs."""

    def __init__(self) -> None:
        self.seeks: list[dict[TP, int]] = []

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.seeks.append(offsets)


@pytest.fixture
def recovery() -> Any:
    assert faust_recovery_restarts_on_rebalance()
    app = faust.App("recovery-test", broker="kafka://127.0.0.1:1", store="memory://")
    return app.tables.recovery


def test_the_fix_is_in_place_on_the_pinned_faust_and_applies_once(recovery: Any) -> None:
    seek = type(recovery)._seek_offsets
    assert faust_recovery_restarts_on_rebalance()
    assert type(recovery)._seek_offsets is seek  # not wrapped twice


def test_an_overtaken_recovery_seeks_nothing_and_completes_nothing(recovery: Any) -> None:
    """The crash: standby partitions of the new assignment, offsets never built (None)."""
    completed: list[Any] = []

    async def on_complete(sender: Any, **kwargs: Any) -> None:
        completed.append(sender)

    recovery.app.on_rebalance_complete.connect(on_complete)
    consumer = _SeekRecorder()
    standby = TP("app-sla-state-changelog", 5)

    async def scenario() -> None:
        recovery.signal_recovery_start.set()  # a rebalance came during this recovery
        with pytest.raises(RebalanceAgain):
            await recovery._seek_offsets(consumer, {standby}, Counter({standby: None}), "s")
        with pytest.raises(RebalanceAgain):
            await recovery.on_recovery_completed(generation_id=1)

    asyncio.run(scenario())
    assert consumer.seeks == []
    assert completed == []  # the timers are not built from a table not yet recovered


def test_a_recovery_not_overtaken_seeks_as_faust_does(recovery: Any) -> None:
    consumer = _SeekRecorder()
    fresh, read = TP("app-sla-state-changelog", 0), TP("app-sla-state-changelog", 1)

    async def scenario() -> None:
        recovery.signal_recovery_start.clear()
        await recovery._seek_offsets(consumer, {fresh, read}, Counter({fresh: -1, read: 41}), "s")

    asyncio.run(scenario())
    assert consumer.seeks == [{fresh: 0, read: 41}]  # Faust's -1 means "from the start"
