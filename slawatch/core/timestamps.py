"""Event-time parsing: RFC 3339 with an offset, or epoch milliseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

#: RFC 3339 ``date-time`` with a mandatory offset (``Z`` or ``+hh:mm``). The same pattern is
#: published in the JSON Schemas, so producers in other languages can check it too.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)

#: Epoch milliseconds accepted: 2000-01-01 to 2100-01-01. Anything outside is far more
#: likely seconds or microseconds sent by mistake than a real event time. RFC 3339 strings
#: cannot be mistaken that way and may be any time since 1970 (history replays, backfills).
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000


class InvalidTimestamp(ValueError):
    """The value is not an RFC 3339 date-time with offset nor epoch milliseconds in range."""


def parse_timestamp_ms(value: object) -> int:
    """Return ``value`` as epoch milliseconds (UTC), or raise :class:`InvalidTimestamp`.

    Accepts an RFC 3339 string with an explicit offset (a naive time is ambiguous and is
    refused) from 1970 on, or an integer count of epoch milliseconds in 2000..2100.
    Sub-millisecond digits are cut, not rounded, so parsing is stable whatever the
    precision sent.
    """
    if isinstance(value, bool):
        raise InvalidTimestamp(f"expected an RFC 3339 string or epoch milliseconds, got {value!r}")
    if isinstance(value, int):
        if not MIN_EPOCH_MS <= value < MAX_EPOCH_MS:
            raise InvalidTimestamp(
                f"epoch milliseconds {value} is outside 2000-01-01..2100-01-01 "
                "(seconds or microseconds sent by mistake?)"
            )
        return value
    if not isinstance(value, str):
        raise InvalidTimestamp(
            f"expected an RFC 3339 string or epoch milliseconds, got {type(value).__name__}"
        )
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise InvalidTimestamp(f"{value!r} is not an RFC 3339 date-time with offset")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        tz = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise InvalidTimestamp(f"{value!r} has an offset of 24 hours or more")
        tz = timezone(-offset if sign == "-" else offset)
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError as exc:
        raise InvalidTimestamp(f"{value!r} is not a real date-time: {exc}") from None
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    epoch_ms = int(moment.timestamp()) * 1000 + millis
    if epoch_ms < 0:
        raise InvalidTimestamp(f"{value!r} is before 1970-01-01")
    return epoch_ms


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def parse_written_ms(value: str) -> int:
    """An instant as :func:`format_timestamp_ms` writes it (``2026-11-02T01:04:54.752Z``),
    in a sixth of the time :func:`parse_timestamp_ms` takes: for reading slawatch's own
    records back. Anything else goes through :func:`parse_timestamp_ms` (and its errors)."""
    if (
        len(value) == 24
        and value[23] == "Z"
        and value[19] == "."
        and value[10] == "T"
        and value.isascii()
    ):
        try:
            return (datetime.fromisoformat(value) - _EPOCH) // _MILLISECOND
        except ValueError:
            pass
    return parse_timestamp_ms(value)


@lru_cache(maxsize=8192)
def _format_second(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def format_timestamp_ms(epoch_ms: int) -> str:
    """Return ``epoch_ms`` as an RFC 3339 UTC string with milliseconds.

    The seconds part is cached: output events carry four timestamps each, mostly in the
    same few seconds, and formatting a datetime was a measurable share of a worker's time.
    """
    return f"{_format_second(epoch_ms // 1000)}{epoch_ms % 1000:03d}Z"
