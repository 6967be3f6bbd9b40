"""The CLI's contract: a bad command or setting is one line on stderr and a non-zero exit."""

from __future__ import annotations

import signal

import pytest

from slawatch.cli.main import main
from slawatch.dev.processes import Stopped


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_config_error_is_one_line(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SLAWATCH_CONFIG", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("partitions: 4\nweb_port: lots\n")
    code, out, err = run(capsys, "--config", str(bad), "config")
    assert code == 1
    assert err == f"slawatch: {bad}:2: web_port: expected an integer, got 'lots'\n"
    assert "Traceback" not in out + err


def test_unreachable_broker_is_one_line(capsys, monkeypatch) -> None:
    monkeypatch.setenv("SLAWATCH_BROKER_URL", "kafka://127.0.0.1:9")
    code, _, err = run(capsys, "topics", "create")
    assert code == 1
    assert err.startswith("slawatch: cannot reach the broker at kafka://127.0.0.1:9")
    assert "check SLAWATCH_BROKER_URL" in err
    assert err.count("\n") == 1


def test_unreachable_redis_is_one_line_naming_the_setting(capsys, monkeypatch) -> None:
    monkeypatch.setenv("SLAWATCH_REDIS_URL", "redis://:s3cret@127.0.0.1:9/0")
    code, out, err = run(capsys, "status")
    assert (code, out) == (1, "")
    assert err.startswith("slawatch: cannot reach Redis at redis://***@127.0.0.1:9/0: ")
    assert err.endswith("; check SLAWATCH_REDIS_URL (and that Redis runs)\n")
    assert err.count("\n") == 1 and "s3cret" not in err


@pytest.mark.parametrize(
    ("error", "setting"),
    [
        ("aiokafka.errors.KafkaTimeoutError", "SLAWATCH_BROKER_URL"),
        ("redis.exceptions.ConnectionError", "SLAWATCH_REDIS_URL"),
    ],
)
def test_a_client_library_error_names_the_setting_of_its_server(
    capsys, monkeypatch, error, setting
) -> None:
    module, name = error.rsplit(".", 1)
    exception = getattr(__import__(module, fromlist=[name]), name)

    def fail(args):
        raise exception("it went away")

    monkeypatch.setattr("slawatch.cli.worker._run_topics", fail)
    code, _, err = run(capsys, "topics", "list")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("slawatch: ") and f"check {setting}" in err and "it went away" in err


@pytest.mark.parametrize(
    ("interruption", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "slawatch: stopped by SIGINT\n"),
        (Stopped(signal.SIGTERM), 143, "slawatch: stopped by SIGTERM\n"),
        (Stopped(signal.SIGHUP), 129, "slawatch: stopped by SIGHUP\n"),
    ],
)
def test_a_stopped_command_says_so_in_one_line(
    capsys, monkeypatch, interruption, code, line
) -> None:
    def interrupted(args):
        raise interruption

    monkeypatch.setattr("slawatch.cli.worker._run_topics", interrupted)
    assert run(capsys, "topics", "list") == (code, "", line)


def test_bad_simulation_arguments(capsys) -> None:
    code, _, err = run(capsys, "simulate", "--rate", "0", "--out", "/dev/null")
    assert (code, err) == (1, "slawatch: rate must be greater than 0\n")
    code, _, err = run(capsys, "simulate", "--start", "yesterday", "--out", "/dev/null")
    assert code == 1 and "RFC 3339" in err


def test_unknown_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


def test_config_prints_every_setting_masked(capsys, monkeypatch) -> None:
    monkeypatch.setenv("SLAWATCH_REDIS_URL", "redis://:s3cret@cache:6379/0")
    code, out, _ = run(capsys, "config")
    assert code == 0
    assert "SLAWATCH_BROKER_URL" in out and "s3cret" not in out


def test_schemas_check_passes_on_the_committed_files(capsys) -> None:
    code, out, _ = run(capsys, "schemas", "check")
    assert code == 0 and "match the models" in out


def test_simulate_to_file(capsys, tmp_path) -> None:
    out_file = tmp_path / "events.jsonl"
    code, out, _ = run(
        capsys, "simulate", "--rate", "20", "--duration", "120", "--seed", "4",
        "--start", "2026-11-22T09:00:00Z", "--out", str(out_file),
    )  # fmt: skip
    assert code == 0 and out.startswith("wrote ")
    assert len(out_file.read_bytes().splitlines()) > 500


def test_policy_publish_refuses_a_bad_file_before_reaching_for_the_broker(
    capsys, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SLAWATCH_BROKER_URL", "kafka://127.0.0.1:9")  # nothing listens
    bad = tmp_path / "bad.yaml"
    bad.write_text("default_level: normal\nlevels: {normal: {targets: {first_reply: 0s}}}\n")
    code, out, err = run(capsys, "policy", "publish", str(bad))
    assert code == 1 and out == ""
    first, last = err.strip().splitlines()
    assert first.startswith(f"{bad}:2: levels.normal.targets.first_reply:")
    assert last == f"slawatch: {bad} not published; the policy in force stays"
    code, _, err = run(capsys, "policy", "publish", str(tmp_path / "missing.yaml"))
    assert code == 1 and err.count("\n") == 1 and "cannot read" in err
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"# caf\xe9\ndefault_level: normal\n")
    code, out, err = run(capsys, "policy", "publish", str(latin1))
    assert code == 1 and out == "" and "unexpected" not in err
    assert err.startswith(f"{latin1}:1: (document): not UTF-8 text")
    # a good file gets as far as the broker, which is not there: one line too
    good = tmp_path / "good.yaml"
    good.write_text("default_level: normal\nlevels: {normal: {targets: {first_reply: 1h}}}\n")
    code, _, err = run(capsys, "policy", "publish", str(good))
    assert code == 1 and err.startswith("slawatch: cannot reach the broker")
