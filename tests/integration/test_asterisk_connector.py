"""``slawatch connect asterisk`` on the real queue_log sample, into the embedded broker.

Two runs. The PBXware export read once and a real worker behind it: the call-answer met
and missed events, call by call, carry the hold and wait times Asterisk wrote in the
file's own columns (read here with the csv module, not with the connector). The
standard file followed as it is written in pieces, with a line still being written, a
rotation, a bad line and a restart in the middle: every call event reaches the calls
topic exactly once, and the bad line the dead-letter topic.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from slawatch.config.settings import Settings
from slawatch.schemas.deadletter import DeadLetter
from tests.integration.conftest import run, worker_environment
from tests.integration.kafka_helpers import read_until
from tests.integration.workers import WorkerProcess, sla_records
from tests.realdata import asterisk as sample

pytestmark = pytest.mark.integration

#: The 80/20 rules of tests/unit/test_real_calls.py, as a policy file.
POLICY = """
version: asterisk-80-20
default_level: normal
short_abandon: 5s
levels:
  normal: {targets: {call_answer: 20s}}
"""


def connect(settings: Settings, path: Path, state: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "slawatch", "connect", "asterisk", str(path),
         "--state-file", str(state), *more],
        env=worker_environment(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def independent_outcomes() -> dict[str, tuple[str, int]]:
    """Call id -> (met or missed, seconds) from the export's own columns: a CONNECT's
    ``htime`` is the hold, an ABANDON's or EXITWITHTIMEOUT's the wait. Answered within
    20 s is met, later missed; abandoned after 20 s missed, earlier neither."""
    outcomes = {}
    with sample.PBXWARE.open(newline="") as rows:
        for row in csv.DictReader(rows):
            seconds = int(row["htime"])
            if row["event"] == "CONNECT":
                outcomes[row["callid"]] = ("met" if seconds <= 20 else "missed", seconds)
            elif row["event"] in ("ABANDON", "EXITWITHTIMEOUT") and seconds > 20:
                outcomes[row["callid"]] = ("missed", seconds)
    return outcomes


def test_the_sample_through_a_worker_gives_asterisks_own_hold_times(
    settings_factory, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    # The sample is from 2018: keep every state (retention would refuse such old events).
    settings = settings_factory(policy_file=str(policy), state_retention_s=0)
    connector = connect(settings, sample.PBXWARE, tmp_path / "state.json")
    out, err = connector.communicate(timeout=60)
    assert connector.returncode == 0, err
    assert out == (
        f"asterisk {sample.PBXWARE}: 1001 lines read, 108 calls published (305 events), "
        "695 lines ignored, 0 dead letters, 0 bytes behind the file\n"
    )
    calls = run(read_until(settings, settings.topic_calls, lambda r: len(r) >= 305))
    assert len(calls) == 305
    events = [orjson.loads(r.value) for r in calls]
    assert all(r.key == e["call_id"].encode() for r, e in zip(calls, events, strict=True))
    assert len({e["event_id"] for e in events}) == 305

    expected = independent_outcomes()
    assert Counter(kind for kind, _ in expected.values()) == {"met": 39, "missed": 66}

    def decided(records) -> int:
        return sum(r["kind"] in ("met", "missed") for r in sla_records(records))

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        records = run(read_until(settings, settings.topic_sla_events,
                                 lambda r: decided(r) >= len(expected), timeout_s=90))  # fmt: skip
    finally:
        worker.stop()
    got = {}
    for record in sla_records(records):
        if record["metric"] == "call_answer" and record["kind"] in ("met", "missed"):
            assert record["conversation_id"] not in got, record  # once per call
            got[record["conversation_id"]] = (record["kind"], round(record["elapsed_s"]))
    assert got == expected


def test_following_through_rotation_and_a_restart_sends_every_call_once(
    settings_factory, tmp_path: Path
) -> None:
    settings = settings_factory()
    lines = sample.STANDARD.read_bytes().splitlines(keepends=True)
    assert len(lines) == 717
    expected = [e["event_id"] for e in sample.connector_events()]
    log, state = tmp_path / "queue_log", tmp_path / "state.json"
    log.write_bytes(b"".join(lines[:200]))

    def ids(records) -> list[str]:
        return [orjson.loads(r.value)["event_id"] for r in records]

    def reaches(event_id: str):
        return lambda records: event_id in ids(records)

    def event_before(line: int) -> str:
        """The id of the last call event among the sample's first ``line`` lines."""
        head = tmp_path / "head"
        head.write_bytes(b"".join(lines[:line]))
        return [e["event_id"] for e in sample.connector_events(head)][-1]

    follow = ("--follow", "--poll-interval", "0.05", "--batch-lines", "50")
    connector = connect(settings, log, state, *follow)
    try:
        run(read_until(settings, settings.topic_calls, reaches(event_before(200))))
        with log.open("ab") as out:  # more lines, the last one still being written
            out.write(b"".join(lines[200:350]) + lines[350][:20])
            out.flush()
            run(read_until(settings, settings.topic_calls, reaches(event_before(350))))
            out.write(lines[350][20:] + b"".join(lines[351:380]))
        # Held still while the old file gets its last lines (the very last one without its
        # newline: the writer died mid-line) and is rotated: it must read them all first.
        connector.send_signal(signal.SIGSTOP)
        with log.open("ab") as out:
            out.write(b"".join(lines[380:399]) + b"not a queue_log line\n" + lines[399][:-1])
        log.rename(tmp_path / "queue_log.1")
        log.write_bytes(b"".join(lines[400:500]))
        connector.send_signal(signal.SIGCONT)
        run(read_until(settings, settings.topic_calls, reaches(event_before(500))))
    finally:
        connector.send_signal(signal.SIGTERM)
        first_out, err = connector.communicate(timeout=30)
    assert connector.returncode == 0, err
    assert "rotated: " in err
    first_read = int(first_out.split(" lines read")[0].split()[-1])
    assert 401 < first_read <= 501  # 400 lines and the bad one, then some of the new file
    with log.open("ab") as out:  # written while the connector is stopped
        out.write(b"".join(lines[500:]))
    connector = connect(settings, log, state, *follow)
    try:
        records = run(read_until(settings, settings.topic_calls, reaches(expected[-1])))
    finally:
        connector.send_signal(signal.SIGTERM)
        out_text, err = connector.communicate(timeout=30)
    assert connector.returncode == 0, err
    # Between them the two runs read every line once: 717 and the bad one.
    read_counts = [first_read, int(out_text.split(" lines read")[0].split()[-1])]
    assert sum(read_counts) == 718, (first_out, out_text)

    sent = ids(records)
    assert Counter(sent) == Counter(expected)  # every call event, each once
    per_call = {e: e.split(":")[1] for e in expected}
    for call in set(per_call.values()):  # and each call's in the file's order
        assert [e for e in sent if per_call[e] == call] == [
            e for e in expected if per_call[e] == call
        ]
    letters = run(read_until(settings, settings.topic_dead_letter, lambda r: len(r) >= 1))
    assert len(letters) == 1
    letter = DeadLetter.decode(letters[0].value)
    assert (letter.reason, letter.original()) == ("missing_field", b"not a queue_log line")
    assert letter.source_topic == f"file:{log}"


def test_the_demo_follows_a_played_copy_of_the_sample(tmp_path: Path) -> None:
    """``slawatch demo --asterisk-queue-log`` (``make demo ASTERISK=...``): the sample,
    played at the demo's time scale (about 20 s), all read by the connector."""
    run_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "demo", "--duration", "30", "--rate", "20",
         "--seed", "3", "--run-dir", str(run_dir), "--asterisk-queue-log",
         str(sample.STANDARD)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    copy = run_dir / "asterisk" / "queue_log"
    assert (
        f"asterisk {copy}: 717 lines read, 108 calls published (303 events), 414 lines "
        "ignored, 0 dead letters, 0 bytes behind the file"
    ) in result.stdout.splitlines(), result.stdout[-3000:]
    assert len(copy.read_bytes().splitlines()) == 717
    table = result.stdout[result.stdout.index("sla-events by metric") :].splitlines()
    call_answer = next(row.split() for row in table if row.strip().startswith("call_answer"))
    assert int(call_answer[3]) > 0 and int(call_answer[4]) > 0  # met, missed
