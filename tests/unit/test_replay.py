"""``slawatch replay`` offline: the SLA log of a file of events, without Kafka."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from slawatch.cli.main import main
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.policy import load_policy, parse_policy
from slawatch.replay.engine import replay
from slawatch.schemas.cycle_log import as_text
from tests.samples import event

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
T0 = parse_timestamp_ms("2026-11-02T01:00:00Z")  # Monday 08:00 in Hanoi
AS_OF = parse_timestamp_ms("2026-12-01T00:00:00Z")
POLICY = """
version: r1
default_level: normal
levels:
  normal: {targets: {first_reply: 10m, resolution: 1d}}
"""


def line(type_: str, n: int, at_ms: int, ticket: str, **fields) -> bytes:
    body = event(type_, n, occurred_at=at_ms, **fields)
    body["ticket_id"] = ticket
    body["event_id"] = f"{ticket}-{n}"
    return orjson.dumps(body)


def test_one_record_per_cycle_with_status_times_and_working_time() -> None:
    lines = [
        line("ticket.created", 1, T0, "A"),
        line("message.sent", 2, T0 + 4 * 60_000, "A", visibility="public"),
        line("ticket.created", 3, T0, "B"),  # never answered: breached as of AS_OF
        line("ticket.created", 4, AS_OF - 60_000, "C"),  # a minute old: open, quiet
        b"{not json",
    ]
    rows, report = replay(lines, parse_policy(POLICY, "p.yaml"), as_of_ms=AS_OF)
    records = [as_text(row) for row in rows]
    by = {(r["conversation_id"], r["metric"]): r for r in records}
    met = by[("A", "first_reply")]
    assert (met["status"], met["business_s"], met["policy_version"]) == ("met", 240.0, "r1")
    assert (met["remaining_s"], met["stop"], met["reason"]) == (360.0, "replied", None)
    assert met["stopped_at"] == "2026-11-02T01:04:00.000Z" and met["breached_at"] is None
    breached = by[("B", "first_reply")]
    assert breached["status"] == "breached" and breached["stopped_at"] is None
    assert breached["breached_at"] == breached["due_at"] == "2026-11-02T01:10:00.000Z"
    assert breached["at_risk_at"] == "2026-11-02T01:07:30.000Z"
    quiet = by[("C", "first_reply")]
    assert (quiet["status"], quiet["at_risk_at"], quiet["breached_at"]) == ("open", None, None)
    assert report.lines == 5 and report.events == 4 and report.rejected == {"not_json": 1}
    assert [r["conversation_id"] for r in records] == ["A", "A", "B", "B", "C", "C"]


def test_processes_share_the_work_and_give_the_same_log() -> None:
    lines = [
        m.value
        for m in generate_traffic(
            TrafficProfile(rate_eps=20.0, malformed_share=0.02, file_output=True),
            seed=9,
            start_ms=T0,
            duration_s=1800,
        )
    ]
    policy = load_policy(EXAMPLE)
    one, report_one = replay(lines, policy, as_of_ms=AS_OF, jobs=1)
    two, report_two = replay(lines, policy, as_of_ms=AS_OF, jobs=2)
    assert one == two and len(one) > 500
    assert report_one.summary() == report_two.summary()
    statuses = Counter(r["status"] for r in one)
    assert statuses["met"] and statuses["breached"] and statuses["cancelled"]


def test_the_cli_writes_the_log_and_reports_on_stderr(tmp_path, capsys) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(line("ticket.created", 1, T0, "A") + b"\n")
    out = tmp_path / "sla.jsonl"
    code = main(["replay", str(events), "--policy", str(EXAMPLE), "--out", str(out),
                 "--as-of", "2026-11-02T01:05:00Z", "--jobs", "1"])  # fmt: skip
    assert code == 0
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert {r["metric"] for r in records} == {"first_reply", "resolution"}
    # 08:00 Hanoi + 8 business hours, lunch off: 17:00 Hanoi
    first = next(r for r in records if r["metric"] == "first_reply")
    assert first["due_at"] == "2026-11-02T10:00:00.000Z" and first["status"] == "open"
    assert "1 lines, 1 events applied, 0 rejected" in capsys.readouterr().err


def test_the_cli_refuses_a_bad_as_of_and_a_missing_file_in_one_line(tmp_path, capsys) -> None:
    assert main(["replay", str(tmp_path / "none.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0]
    events = tmp_path / "e.jsonl"
    events.write_text("")
    assert main(["replay", str(events), "--as-of", "yesterday"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("slawatch: --as-of")
