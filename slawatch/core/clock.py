"""Clocks: the only way the core learns what time it is."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in epoch milliseconds (UTC)."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The real wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to: for tests and offline replay."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, ms: int) -> None:
        """Move the clock forward by ``ms`` milliseconds (never backwards)."""
        if ms < 0:
            raise ValueError(f"a clock cannot go back: advance({ms})")
        self._now_ms += ms

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms``; it must not be earlier than the current time."""
        if now_ms < self._now_ms:
            raise ValueError(f"a clock cannot go back: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms
