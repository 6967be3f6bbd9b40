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

Only accepted records count (:class:`ReadProgress`): a refused record says nothing
about event time. And no watermark is ever ahead of the reader's clock, whatever the
timestamps say: record timestamps are set by producers and never checked, and a few
records stamped a month ahead would otherwise declare every commitment due within that
month breached at once. The clock is the right bound, not the clock plus the skew allowed
for ``occurred_at``: an event stamped ahead of the clock (a producer whose clock runs
fast) may be accepted, but the events still to come may be stamped as early as now, so
"everything up to W has been read" is never true of a W ahead of now, and a watermark
there would declare commitments breached before they are due by the worker's clock.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from slawatch.core.clock import Clock


def partition_watermark(
    *,
    caught_up: bool,
    last_record_ms: int | None,
    end_observed_ms: int | None,
    grace_ms: int,
    last_event_ms: int | None = None,
    ceiling_ms: int | None = None,
) -> int | None:
    """The watermark one input partition reports (None: not known yet).

    ``end_observed_ms`` is when the partition's end offset (which ``caught_up`` compares
    the read position with) was observed; ``last_record_ms`` is the Kafka timestamp of the
    latest accepted record and ``last_event_ms`` the latest ``occurred_at`` of the valid
    events read from it. ``ceiling_ms`` (the reader's clock) bounds every input, and so
    the watermark.
    """
    if ceiling_ms is not None:
        end_observed_ms = _at_most(end_observed_ms, ceiling_ms)
        last_record_ms = _at_most(last_record_ms, ceiling_ms)
        last_event_ms = _at_most(last_event_ms, ceiling_ms)
    if caught_up and end_observed_ms is not None:
        return max(end_observed_ms, last_record_ms or 0) - grace_ms
    if last_record_ms is None:
        return None
    if last_event_ms is not None and last_event_ms < last_record_ms:
        return last_event_ms - grace_ms
    return last_record_ms - grace_ms


def _at_most(value: int | None, ceiling: int) -> int | None:
    return None if value is None else min(value, ceiling)


class ReadProgress:
    """How far a reader has read each of its input partitions, as watermarks can use it.

    :meth:`accepted` records the Kafka timestamp and the event time of a partition's
    latest accepted record (refused records are never reported); both are cut to
    ``clock`` + ``max_ahead_ms`` when recorded, and every :meth:`watermark` is cut to the
    same bound taken at that moment. Ingest passes 0 (see the module's docstring).
    """

    __slots__ = ("_events", "_records", "clock", "grace_ms", "max_ahead_ms")

    def __init__(self, clock: Clock, *, grace_ms: int, max_ahead_ms: int = 0) -> None:
        self.clock = clock
        self.max_ahead_ms = max_ahead_ms
        self.grace_ms = grace_ms
        self._records: dict[Hashable, int] = {}
        self._events: dict[Hashable, int] = {}

    def ceiling_ms(self) -> int:
        """The latest instant a watermark may name now."""
        return self.clock.now_ms() + self.max_ahead_ms

    def accepted(self, partition: Hashable, *, record_ms: int, event_ms: int) -> None:
        """Accepted records of ``partition``, the latest Kafka timestamp and ``occurred_at``
        among them (neither goes back)."""
        ceiling = self.ceiling_ms()
        record_ms, event_ms = min(record_ms, ceiling), min(event_ms, ceiling)
        if record_ms > self._records.get(partition, -(2**63)):
            self._records[partition] = record_ms
        if event_ms > self._events.get(partition, -(2**63)):
            self._events[partition] = event_ms

    def last_record_ms(self, partition: Hashable) -> int | None:
        return self._records.get(partition)

    def last_event_ms(self, partition: Hashable) -> int | None:
        return self._events.get(partition)

    def watermark(
        self, partition: Hashable, *, caught_up: bool, end_observed_ms: int | None
    ) -> int | None:
        """The watermark ``partition`` reports now (see :func:`partition_watermark`)."""
        return partition_watermark(
            caught_up=caught_up,
            last_record_ms=self._records.get(partition),
            last_event_ms=self._events.get(partition),
            end_observed_ms=end_observed_ms,
            grace_ms=self.grace_ms,
            ceiling_ms=self.ceiling_ms(),
        )


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
