"""A month of real calls (Anonymous Bank, February 1999) through ``slawatch replay
--out-db`` into PostgreSQL: the compliance report per day counts what the file's own
columns say, day by day (README, Reports)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from slawatch.cli.main import main
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.reports.filters import LogFilter
from slawatch.reports.store import LogStore
from tests.realdata.anonymous_bank import ISRAEL_STANDARD_TIME, read_calls, to_events

pytestmark = pytest.mark.integration

#: The 80/20 rules of tests/unit/test_real_calls.py, as a policy file.
POLICY = """
version: bank-80-20
default_level: normal
short_abandon: 5s
levels:
  normal: {targets: {call_answer: 20s}}
"""
#: Israel standard time (February 1999 had no DST): UTC+2, "Etc/GMT-2" in IANA's names.
ZONE = "Etc/GMT-2"


def independent_days() -> dict[str, Counter[str]]:
    """Met and missed per local day of the stop, straight from q_time and outcome."""
    days: dict[str, Counter[str]] = {}
    for call in read_calls():
        left = call.entered + timedelta(seconds=call.wait_s)
        day = left.astimezone(ISRAEL_STANDARD_TIME).date().isoformat()
        counts = days.setdefault(day, Counter())
        if call.wait_s > 20:  # answered or abandoned after due
            counts["missed"] += 1
        elif call.answered:
            counts["met"] += 1
        # abandoned within 20 s: cancelled (short or before due), neither met nor missed
    return days


def test_the_bank_month_report_per_day_counts_what_the_file_says(
    postgres_url: str, tmp_path: Path
) -> None:
    events = tmp_path / "bank.jsonl"
    with events.open("wb") as out:
        for call in read_calls():
            for event in to_events(call):
                out.write(orjson.dumps(event) + b"\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    code = main(["replay", str(events), "--policy", str(policy), "--out-db", postgres_url,
                 "--as-of", "1999-03-15T00:00:00Z", "--jobs", "2"])  # fmt: skip
    assert code == 0

    month = LogFilter(
        metric="call_answer",
        start_ms=parse_timestamp_ms("1999-02-01T00:00:00+02:00"),
        end_ms=parse_timestamp_ms("1999-03-01T00:00:00+02:00"),
        on="stop",
    )
    with LogStore.open(postgres_url) as store:
        report = store.compliance(month, period="day", time_zone=ZONE)
    expected = independent_days()
    got = {row.bucket: Counter(met=row.met, missed=row.missed) for row in report if
           row.met or row.missed}  # fmt: skip
    assert got == {day: counts for day, counts in expected.items() if +counts}
    assert len(got) >= 25  # a month of working days
    total = sum(expected.values(), Counter())
    assert total["met"] > 10_000 and total["missed"] > 1_000
    for row in report:
        if row.met:
            assert row.met_max_s is not None and row.met_max_s <= 20
        if row.missed:
            assert row.missed_min_s is not None and row.missed_min_s > 20
