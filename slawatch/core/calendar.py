"""Time arithmetic behind one interface, so a business-hours calendar plugs in later.

All instants are epoch milliseconds (UTC); all durations are milliseconds of the
calendar's working time.
"""

from __future__ import annotations

from typing import Protocol


class Calendar(Protocol):
    """Working time: when the clock of a commitment runs."""

    def add(self, start_ms: int, working_ms: int) -> int:
        """The instant ``working_ms`` of working time after ``start_ms``."""
        ...

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        """Working time between two instants (0 if ``end_ms`` is not after ``start_ms``)."""
        ...


class AlwaysOpen:
    """24x7: every millisecond is working time."""

    def add(self, start_ms: int, working_ms: int) -> int:
        return start_ms + working_ms

    def elapsed(self, start_ms: int, end_ms: int) -> int:
        return max(0, end_ms - start_ms)
