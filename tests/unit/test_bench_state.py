"""``slawatch bench-state`` measures what it says: the retention bounds the state and the
compacted changelog, and the baseline of the same run keeps every state."""

from __future__ import annotations

import json

from slawatch.dev.bench_state import run_state_bench


def test_the_state_stays_flat_with_a_retention_and_grows_without(tmp_path, capsys) -> None:
    out = tmp_path / "state.json"
    assert run_state_bench(days=4, rate=0.1, retention_s=86400, seed=3, out=out) == 0
    results = json.loads(out.read_text())
    kept, base = results["retention"], results["baseline_no_retention"]
    assert [r["day"] for r in kept] == [r["day"] for r in base] == [1, 2, 3, 4]
    assert [r["events"] for r in kept] == [r["events"] for r in base]  # the same traffic
    assert kept[-1]["expired"] > 0 and base[-1]["expired"] == 0
    # Without retention every finished conversation stays: more states every day.
    assert base[0]["states"] < base[1]["states"] < base[2]["states"] < base[3]["states"]
    assert base[-1]["changelog_records"] == base[-1]["states"]
    # With a day's retention, from the third day on the state is flat (the traffic is the
    # same every day), and the compacted changelog is the states plus a day's tombstones.
    assert abs(kept[3]["states"] - kept[2]["states"]) <= 0.1 * kept[2]["states"]
    assert kept[-1]["states"] < 0.6 * base[-1]["states"]
    assert kept[-1]["changelog_records"] < base[-1]["changelog_records"]
    assert "retention / baseline" in capsys.readouterr().out
