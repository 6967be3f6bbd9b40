"""``slawatch report compliance|log`` over a SQLite SLA log: the same CSV and JSON as the
reports API for the same question, a readable table on request, and one line naming the
option for anything wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from slawatch.cli.main import main
from slawatch.schemas.cycle_log import as_text
from tests.integration.test_reports_api import PARIS, ApiServer, fill, in_log_order, sample_rows

pytestmark = pytest.mark.integration

RANGE = ["--from", "2026-10-24", "--to", "2026-10-28", "--tz", PARIS]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return sample_rows()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]]) -> str:
    made = f"sqlite:///{tmp_path_factory.mktemp('report-cli')}/sla-log.db"
    fill(made, rows)
    return made


@pytest.fixture(scope="module")
def server(url: str) -> Iterator[ApiServer]:
    with ApiServer(url) as running:
        yield running


@pytest.fixture(autouse=True)
def no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLAWATCH_CONFIG", raising=False)
    monkeypatch.delenv("SLAWATCH_LOG_STORE_URL", raising=False)


def report(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    code = main(["report", *argv])
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def test_csv_is_the_default_off_a_terminal_and_is_the_api_s_file(capsysbinary, url, server):
    code, out, err = report(capsysbinary, "compliance", *RANGE, "--by", "department,level",
                            "--db", url)  # fmt: skip
    assert (code, err) == (0, "")
    params = {"from": "2026-10-24", "to": "2026-10-28", "tz": PARIS, "by": "department,level"}
    assert out == server.get("/api/reports/compliance", {**params, "format": "csv"}).body
    code, out, _ = report(capsysbinary, "log", "--sort", "remaining", "--desc", "--status",
                          "met", "--status", "missed", "--db", url)  # fmt: skip
    api = server.get(
        "/api/reports/log",
        [("sort", "remaining"), ("order", "desc"), ("status", "met"), ("status", "missed"),
         ("format", "csv")],
    )  # fmt: skip
    assert code == 0 and out == api.body and out.count(b"\r\n") > 10


def test_json_is_the_api_s_document_and_the_log_is_json_lines(capsysbinary, url, server, rows):
    code, out, _ = report(capsysbinary, "compliance", *RANGE, "--period", "week",
                          "--format", "json", "--db", url)  # fmt: skip
    params = {"from": "2026-10-24", "to": "2026-10-28", "tz": PARIS, "period": "week"}
    assert code == 0
    assert json.loads(out) == server.get("/api/reports/compliance", params).json()
    code, out, _ = report(capsysbinary, "log", "--format", "json", "--sort", "due", "--db", url)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == len(rows)
    assert [r["conversation_key"] for r in records] == in_log_order(rows, "due", False)
    assert records[0] == as_text(next(r for r in rows if r["conversation_key"] ==
                                      records[0]["conversation_key"]))  # fmt: skip


def test_a_table_is_aligned_and_says_when_rows_are_left(capsysbinary, url):
    code, out, err = report(capsysbinary, "log", "--format", "table", "--limit", "5",
                            "--department", "billing", "--db", url)  # fmt: skip
    lines = out.decode().splitlines()
    assert code == 0 and len(lines) == 2 + 5
    assert lines[0].split()[:4] == ["conversation_id", "requester", "department", "agent"]
    assert set(lines[1]) == {"-", " "}
    # Every column starts where its header does.
    starts = [i for i, c in enumerate(lines[0]) if c != " " and (i == 0 or lines[0][i - 1] == " ")]
    for line in lines[2:]:
        assert "billing" in line
        assert line[starts[2] : starts[2] + 7] == "billing"
    assert err == "slawatch: more than 5 rows: give --limit, or --format csv for all\n"
    code, out, err = report(capsysbinary, "compliance", *RANGE, "--format", "table", "--db", url)
    lines = out.decode().splitlines()
    assert code == 0 and err == ""
    assert lines[0].split() == ["period", "met", "met_avg_s", "met_max_s", "met_min_s", "missed",
                                "missed_avg_s", "missed_max_s", "missed_min_s", "cancelled",
                                "compliance_pct"]  # fmt: skip
    assert [line.split()[0] for line in lines[2:-2]] == [
        "2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27",
    ]  # fmt: skip
    assert lines[-1].startswith("total ")
    code, out, _ = report(capsysbinary, "log", "--format", "table", "--agent", "nobody",
                          "--db", url)  # fmt: skip
    assert (code, out) == (0, b"no rows\n")


def test_the_database_comes_from_the_settings(capsysbinary, url, monkeypatch, rows):
    monkeypatch.setenv("SLAWATCH_LOG_STORE_URL", url)
    code, out, _ = report(capsysbinary, "log", "--format", "json")
    assert code == 0 and len(out.splitlines()) == len(rows)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["log", "--sort", "colour"],
         "slawatch: --sort: 'colour' is not one of requester, conversation_id, started, due, "
         "stopped, remaining, department, agent, level, metric, status"),
        (["log", "--limit", "0"], "slawatch: --limit: '0' is not a whole number from 1"),
        (["log", "--on", "end"], "slawatch: --on: 'end' is not one of start, due, stop"),
        (["log", "--status", "solved"],
         "slawatch: --status: 'solved' is not one of open, at_risk, breached, met, missed, "
         "cancelled"),
        (["log", "--format", "xml"], "slawatch: --format: 'xml' is not one of table, csv, json"),
        (["compliance", "--tz", "Mars/Olympus"],
         "slawatch: --tz: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Paris)"),
        (["compliance", "--from", "2026-02-30"],
         "slawatch: --from: '2026-02-30' is not a day of the calendar"),
        (["compliance", "--from", "2026-10-28", "--to", "2026-10-24"],
         "slawatch: --to: must come after from: the range is [from, to)"),
        (["compliance", "--by", "department,colour"],
         "slawatch: --by: 'colour' is not one of department, level, metric, channel, queue, "
         "tenant, customer_group, agent, priority"),
        (["compliance", "--period", "year"],
         "slawatch: --period: 'year' is not one of day, week, month"),
        (["compliance", "--customer-group", "a\x00b"],
         "slawatch: --customer-group: 'a\\x00b' holds a NUL character"),
    ],
)  # fmt: skip
def test_a_wrong_option_is_one_line_naming_it(capsysbinary, url, argv, line):
    code, out, err = report(capsysbinary, *argv, "--db", url)
    assert (code, out, err) == (1, b"", line + "\n")


def test_a_missing_database_is_one_line_and_is_not_created(capsysbinary, tmp_path):
    missing = tmp_path / "nowhere.db"
    code, out, err = report(capsysbinary, "log", "--db", f"sqlite:///{missing}")
    assert (code, out) == (1, b"")
    assert (
        err == f"slawatch: sqlite:///{missing}: no such file (no log sink has written an SLA log)\n"
    )
    assert not missing.exists()
    code, _, err = report(capsysbinary, "log", "--db", "postgresql://u:s3cret@127.0.0.1:9/db")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("slawatch: postgresql://u:***@127.0.0.1:9/db: ") and "s3cret" not in err
