from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slawatch.core.timestamps import InvalidTimestamp, format_timestamp_ms, parse_timestamp_ms

# Naive bounds are what st.datetimes() wants; the test attaches an offset to each value.
moments = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001
    max_value=datetime(2099, 12, 30),  # noqa: DTZ001
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(moments, offsets)
def test_rfc3339_with_any_offset_matches_datetime(moment, tz) -> None:
    aware = moment.replace(tzinfo=tz, microsecond=moment.microsecond // 1000 * 1000)
    expected = int(aware.replace(microsecond=0).timestamp()) * 1000 + aware.microsecond // 1000
    assert parse_timestamp_ms(aware.isoformat(timespec="milliseconds")) == expected


def test_history_is_accepted_as_rfc3339_but_not_as_epoch_ms() -> None:
    assert parse_timestamp_ms("1999-02-01T07:02:56+02:00") == 917_845_376_000
    with pytest.raises(InvalidTimestamp, match="seconds or microseconds"):
        parse_timestamp_ms(917_845_376_000)


@given(st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999))
def test_format_then_parse_is_identity(epoch_ms) -> None:
    assert parse_timestamp_ms(format_timestamp_ms(epoch_ms)) == epoch_ms


def test_fraction_digits_are_cut_not_rounded() -> None:
    assert parse_timestamp_ms("2026-01-01T00:00:00.9999Z") % 1000 == 999
    assert parse_timestamp_ms("2026-01-01T00:00:00.5Z") % 1000 == 500


def test_zulu_and_offset_agree() -> None:
    assert parse_timestamp_ms("2026-06-01T12:00:00Z") == parse_timestamp_ms(
        "2026-06-01T14:00:00+02:00"
    )
    assert parse_timestamp_ms("2026-06-01T12:00:00Z") == int(
        datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp() * 1000
    )


@pytest.mark.parametrize(
    "value",
    [
        "2026-06-01T12:00:00",  # naive
        "2026-06-01",  # date only
        "2026-13-01T12:00:00Z",
        "2026-06-01T24:00:00Z",
        "2026-06-01T12:00:00+24:00",
        "1969-12-31T23:59:59Z",  # before the epoch
        1_795_348_800,  # seconds, not milliseconds
        1_795_348_800_000_000,  # microseconds
        True,
        12.5,
        None,
    ],
)
def test_refused(value) -> None:
    with pytest.raises(InvalidTimestamp):
        parse_timestamp_ms(value)
