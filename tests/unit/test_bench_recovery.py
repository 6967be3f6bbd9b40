"""``slawatch bench-recovery`` reads what a recovery did from the worker's log: Faust's
recovery tables (as Faust prints them) and the timers' rebuild lines."""

from __future__ import annotations

from pathlib import Path

from slawatch.dev.bench_recovery import _from_log

LOG = """\
[2026-12-02 22:26:12,761] [3610] [INFO] [^---Recovery]: Highwater for active changelog partitions:
+Highwater - Active-----------------------------------------------+-----------+-----------+
| topic                                                           | partition | highwater |
+-----------------------------------------------------------------+-----------+-----------+
| t1-sla-state-changelog                                          | 0         | 149       |
| 〃                                                              | 1         | 200       |
| 〃                                                              | 2         | -1        |
+-----------------------------------------------------------------+-----------+-----------+
[2026-12-02 22:26:12,762] [3610] [INFO] [^---Recovery]: active offsets at start of reading:
+Reading Starts At - Active---------------------------------------+-----------+--------+
| topic                                                           | partition | offset |
+-----------------------------------------------------------------+-----------+--------+
| t1-sla-state-changelog                                          | 0         | 149    |
| 〃                                                              | 1         | 99     |
| 〃                                                              | 2         | -1     |
+-----------------------------------------------------------------+-----------+--------+
[22:26:13,148] partition 1: 250 timers, 3 recent SLA events, rebuilt in 1.25s; applying from 86
[22:26:13,202] partition 0: 120 timers, 0 recent SLA events, rebuilt in 0.50s; applying from 80
"""


def test_the_records_read_and_the_rebuilds_come_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("an earlier run's lines\n" + LOG)
    assert _from_log(log) == {
        "changelog_records_read": 101,  # partition 1 from 99 to 200; 0 and 2: nothing
        "partitions_rebuilt": 2,
        "rebuild_s_total": 1.75,
        "rebuild_s_longest": 1.25,
    }
    after = len(("an earlier run's lines\n" + LOG).encode())
    assert _from_log(log, since=after) == {
        "changelog_records_read": 0,
        "partitions_rebuilt": 0,
        "rebuild_s_total": 0,
        "rebuild_s_longest": 0.0,
    }
