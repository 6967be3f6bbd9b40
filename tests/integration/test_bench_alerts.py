"""``slawatch bench-alerts`` on a tiny load: its own redis-server and local receiver, every
alert delivered exactly once, and figures that make sense."""

from __future__ import annotations

import math
import time

from slawatch.dev.bench_alerts import measure_alerts


def test_a_tiny_run_delivers_every_alert_once_and_reports_sane_figures() -> None:
    started = time.monotonic()
    report = measure_alerts(alerts=200, runs=1, batch=50, rate=400)
    assert time.monotonic() - started < 15

    assert report["params"] == {"alerts": 200, "runs": 1, "batch": 50, "rate": 400}
    (run,) = report["runs"]
    live = run["live"]
    # N records, N notifications, each delivered once
    assert live["distinct"] == live["matched"] == live["deliveries"] == 200
    assert live["duplicates"] == live["missing"] == live["not_accepted"] == 0
    assert live["left_in_outbox"] == 0 and not live["stalled"]
    assert report["j_live"]["exactly_once"] is True
    assert report["j_live"]["delivered_min"] == 200

    for rate in (
        report["h_baseline_no_dedup_per_s"],
        report["i_routed_with_dedup_per_s"],
        report["j_live"]["routed_per_s"],
        report["j_live"]["delivered_per_s"],
    ):
        assert math.isfinite(rate) and rate > 0
    # Redis in the path costs something: routing alone is the faster of the two.
    assert report["i_ratio_to_baseline"] < 1
    delay = report["j_live"]["delay_ms"]
    assert 0 <= delay["p50"] <= delay["p99"] <= delay["max"] < 15_000

    machine = report["machine"]
    assert machine["cores"] >= 1
    assert len(machine["load_before"]) == len(machine["load_after"]) == 3
    targets = report["targets"]
    assert targets["routed_met"] == (report["i_routed_with_dedup_per_s"] >= 5_000)
    assert targets["p99_met"] == (delay["p99"] <= 1_000)
