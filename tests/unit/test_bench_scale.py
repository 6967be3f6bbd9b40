"""``slawatch bench-scale``'s summary (medians per worker count, ratios against the first
count) and the arguments it refuses before starting anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slawatch.dev.bench_scale import summarise


def _run(workers: int, events_per_s: float, us: float) -> dict:
    return {
        "workers": workers,
        "events_per_s": events_per_s,
        "worker_cpu_us_per_event": us,
        "start_to_done_s": 100_000 / events_per_s,
        "cores": {"workers": 1.0, "broker": 0.1, "redis": 0.0, "others": 0.2},
    }


def test_each_count_gets_its_medians_and_its_ratio_to_the_first_count() -> None:
    runs = [
        _run(1, 10_000, 90), _run(2, 8_000, 180), _run(1, 12_000, 80),
        _run(2, 9_000, 170), _run(1, 11_000, 95), _run(2, 100, 900),
    ]  # fmt: skip
    by = summarise(runs, [1, 2])
    assert by["1"]["events_per_s"] == 11_000
    assert by["1"]["worker_cpu_us_per_event"] == 90
    assert by["1"]["ratio_to_first"] == 1.0
    assert by["2"]["events_per_s"] == 8_000  # the outlier at 100 is not the median
    assert by["2"]["ratio_to_first"] == pytest.approx(8_000 / 11_000)
    assert by["2"]["broker_cores"] == 0.1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "1,x"], "--workers '1,x': expected numbers like 1,2,3"),
        (["--workers", "1,4", "--partitions", "3"], "--partitions 3: fewer than 4 workers"),
        (["--workers", "0,1"], "every --workers value must be at least 1"),
        (["--standby-replicas", "-1"], "--standby-replicas must be 0 or more"),
    ],
)
def test_wrong_arguments_stop_it_with_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slawatch", "bench-scale", *args, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()
