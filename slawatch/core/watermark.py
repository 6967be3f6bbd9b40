"""Event-time watermarks: how far the input has provably been read.

A breach may be declared only when no unread input could still stop the cycle. Each input
partition reports a watermark W meaning "every event with ``occurred_at`` <= W that this
partition will ever hold has been read":

- a partition read to its end (caught up) reports ``observed - grace``, where
  ``observed`` is when its end offset was last learned from the broker (not "now": an end
  offset may be a fetch wait old, and what arrived since is unread);
- a lagging partition reports the earlier of the Kafka timestamp of the last record read
  and the latest ``occurred_at`` read, minus the grace: the unread records were produced
  after the first, and (up to the grace) occurred after the second. The event time
  matters when a backlog of history is read: its records were produced just now, but
  their stops occurred long ago, in the order they are read.

A conversation's events may sit in any input partition, so the watermark the timers use
is the minimum over every input partition; until all have reported there is none, and no
breach is declared. The rule for idle partitions is the first case: a quiet partition is
caught up, so it never holds the others back.
"""

from __future__ import annotations

from collections.abc import Iterable


def partition_watermark(
    *,
    caught_up: bool,
    last_record_ms: int | None,
    end_observed_ms: int | None,
    grace_ms: int,
    last_event_ms: int | None = None,
) -> int | None:
    """The watermark one input partition reports (None: not known yet).

    ``end_observed_ms`` is when the partition's end offset (which ``caught_up`` compares
    the read position with) was observed; ``last_event_ms`` is the latest ``occurred_at``
    of the valid events read from it.
    """
    if caught_up and end_observed_ms is not None:
        return max(end_observed_ms, last_record_ms or 0) - grace_ms
    if last_record_ms is None:
        return None
    if last_event_ms is not None and last_event_ms < last_record_ms:
        return last_event_ms - grace_ms
    return last_record_ms - grace_ms


class InputWatermarks:
    """The watermarks reported for every input partition; their minimum is the watermark."""

    __slots__ = ("_expected", "_reported")

    def __init__(self, expected: Iterable[str]) -> None:
        self._expected = frozenset(expected)
        self._reported: dict[str, int] = {}

    def report(self, partition: str, watermark_ms: int) -> None:
        """Record a report; a watermark never goes back (a report from a previous owner of
        the partition may have been higher, and what it covered was already delivered)."""
        if partition not in self._expected:
            return
        if watermark_ms > self._reported.get(partition, -(2**63)):
            self._reported[partition] = watermark_ms

    def value(self) -> int | None:
        """The watermark over all input partitions, or None until every one has reported."""
        if len(self._reported) < len(self._expected):
            return None
        return min(self._reported.values())

    def missing(self) -> list[str]:
        return sorted(self._expected - set(self._reported))
