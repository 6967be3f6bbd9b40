"""The demo's queue_log player (slawatch/dev/queue_log_player.py): the recorded sample
moved to now, quiet gaps cut, every hold and wait kept at its recorded length over the
time scale."""

from __future__ import annotations

from slawatch.connectors.queue_log import parse_line
from slawatch.dev.queue_log_player import moved_lines
from tests.realdata import asterisk as sample

START_MS = 1_800_000_000_000


def test_the_played_sample_keeps_its_holds_and_waits_and_skips_the_nights() -> None:
    recorded = sample.PBXWARE.read_bytes().splitlines()
    played = list(moved_lines(recorded, start_ms=START_MS, time_scale=10))
    assert len(played) == 1000  # every row but the header
    times = [at for at, _ in played]
    assert times == sorted(times) and times[0] == START_MS
    lines = [parse_line(raw) for _, raw in played]
    for line, (at, _) in zip(lines, played, strict=True):
        assert line is not None and line.epoch_ms == at
    entered: dict[str, int] = {}
    checked = 0
    for line in lines:
        assert line is not None
        if line.event == "ENTERQUEUE":
            entered[line.callid] = line.epoch_ms
        elif line.event == "CONNECT":  # hold, recorded in seconds, now over 10
            assert abs(line.epoch_ms - entered[line.callid] - int(line.data[0]) * 100) <= 1
            checked += 1
        elif line.event in ("ABANDON", "EXITWITHTIMEOUT"):
            assert abs(line.epoch_ms - entered[line.callid] - int(line.data[2]) * 100) <= 1
            checked += 1
    assert checked == 93 + 13
    # Five days recorded; quiet gaps cut to 5 s: minutes at a tenth of the pace.
    assert (times[-1] - times[0]) / 1000 < 3600


def test_a_line_that_is_no_queue_log_line_is_played_as_it_is() -> None:
    recorded = [b"100|c|IT|NONE|ENTERQUEUE||x|1", b"garbage", b"110|c|IT|Agent/1|CONNECT|10|u|1"]
    played = list(moved_lines(recorded, start_ms=START_MS, time_scale=2))
    assert played == [
        (START_MS, b"1800000000.000|c|IT|NONE|ENTERQUEUE||x|1"),
        (START_MS, b"garbage"),
        (START_MS + 5000, b"1800000005.000|c|IT|Agent/1|CONNECT|10|u|1"),
    ]
