"""Durations as people write them in configuration: ``90s``, ``15m``, ``8h``, ``3d``."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$")


class InvalidDuration(ValueError):
    """Not a positive number followed by one of ms, s, m, h, d."""


def parse_duration_ms(text: object) -> int:
    """``"15m"`` -> 900000. Plain numbers are refused: a unit is always required."""
    if not isinstance(text, str):
        raise InvalidDuration(f"expected a duration like 90s, 15m, 8h or 3d, got {text!r}")
    match = _DURATION.match(text)
    if match is None:
        raise InvalidDuration(f"{text!r} is not a duration like 90s, 15m, 8h or 3d")
    value = round(float(match.group(1)) * _UNITS_MS[match.group(2)])
    if value <= 0:
        raise InvalidDuration(f"{text!r} must be longer than zero")
    return value
