"""``slawatch connect asterisk``: what it refuses is one line and exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from slawatch.cli.main import main


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SLAWATCH_CONFIG", raising=False)
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path / "data"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_missing_file_is_one_line(capsys, tmp_path: Path) -> None:
    code, out, err = run(capsys, "connect", "asterisk", str(tmp_path / "queue_log"))
    assert (code, out) == (1, "")
    assert err == f"slawatch: connect asterisk: {tmp_path / 'queue_log'}: no such file\n"


def test_a_state_file_of_another_file_is_one_line(capsys, tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("")
    state = tmp_path / "state.json"
    state.write_text('{"version": 1, "source": "/var/log/other", "inode": 1, "offset": 0}')
    code, _, err = run(capsys, "connect", "asterisk", str(log), "--state-file", str(state))
    assert code == 1 and err.count("\n") == 1
    assert err == (
        f"slawatch: {state} holds the position in /var/log/other, not {log}: give each file "
        "its own --state-file\n"
    )


def test_an_unreachable_broker_is_one_line_naming_the_setting(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SLAWATCH_BROKER_URL", "kafka://127.0.0.1:9")
    log = tmp_path / "queue_log"
    log.write_text("1543602677|1543602660.197|IT|NONE|ENTERQUEUE||x|1\n")
    code, _, err = run(capsys, "connect", "asterisk", str(log))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("slawatch: cannot reach the broker at kafka://127.0.0.1:9")
    assert not (tmp_path / "data" / "connectors").exists()  # nothing read, nothing saved


def test_bad_numbers_are_refused(capsys, tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("")
    code, _, err = run(capsys, "connect", "asterisk", str(log), "--batch-lines", "0")
    assert code == 1 and "must be positive" in err
