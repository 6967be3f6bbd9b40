"""The credits report over HTTP and on the command line: what ``credits_report`` computes
(tests/integration/test_credits_report.py checks its amounts by hand), as JSON and CSV,
with the policy's terms and the fees file; a wrong month is a 400, a broken fees file a
503 naming its line."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from slawatch.cli.main import main
from slawatch.config.settings import Secret, Settings
from slawatch.reports.credits import credits_report
from slawatch.reports.export import CREDITS_COLUMNS
from slawatch.reports.store import LogStore
from tests.integration.test_credits_report import PARIS, ROWS, TERMS
from tests.integration.test_reports_api import ApiServer

pytestmark = pytest.mark.integration

FEES = """\
currency: EUR
customers:
  acme: {monthly_fee: 12000}
  globex: {monthly_fee: 8000.20, currency: USD}
  enterprise: {monthly_fee: 40000}
"""


@pytest.fixture
def log_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with LogStore.open(url) as store:
        store.upsert(ROWS)
    return url


@pytest.fixture
def fees_file(tmp_path: Path) -> Path:
    path = tmp_path / "fees.yaml"
    path.write_text(FEES)
    return path


def serve(url: str, fees: Path) -> ApiServer:
    server = ApiServer(url)
    settings = Settings(
        log_store_url=Secret(url), report_time_zone=PARIS, customer_fees_file=str(fees)
    )
    server.api.settings = settings
    server.api.credit_terms = lambda: TERMS
    return server


def test_the_api_gives_the_month_s_credits_as_json_and_csv(log_db: str, fees_file: Path) -> None:
    from slawatch.config.fees import load_fees

    with LogStore.open(log_db) as store:
        expected = credits_report(store, TERMS, load_fees(fees_file), "2027-03", PARIS)
    assert any(row.credit not in (None, "0.00") for row in expected)
    with serve(log_db, fees_file) as server:
        answer = server.get("/api/reports/credits", {"month": "2027-03"})
        assert answer.status == 200, answer.body
        document = answer.json()
        assert (document["month"], document["time_zone"]) == ("2027-03", PARIS)
        assert document["rows"] == [row.as_dict() for row in expected]
        as_csv = server.get("/api/reports/credits", {"month": "2027-03", "format": "csv"})
        lines = list(csv.reader(io.StringIO(as_csv.body.decode(), newline="")))
        assert tuple(lines[0]) == CREDITS_COLUMNS
        assert [line[CREDITS_COLUMNS.index("credit")] for line in lines[1:]] == [
            row.credit or "" for row in expected
        ]
        bad = server.get("/api/reports/credits", {"month": "2027-13"})
        assert bad.status == 400 and bad.json()["parameter"] == "month"


def test_a_broken_fees_file_is_a_503_naming_its_line(log_db: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("customers:\n  acme: {monthly_fee: lots}\n")
    with serve(log_db, broken) as server:
        answer = server.get("/api/reports/credits", {"month": "2027-03"})
    assert answer.status == 503
    assert f"{broken}:2" in answer.json()["error"]


def test_the_cli_prints_the_credits_with_why(
    log_db: str, fees_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: c1\ndefault_level: normal\nlevels:\n  normal: {targets: {resolution: 1d}}\n"
        "  vip: {targets: {chat_reply: 30s}}\n"
        "credits:\n  - level: vip\n    per_missed: 50\n    cap: 30%\n    customer_key: tenant\n"
    )
    code = main(["report", "credits", "--month", "2027-03", "--tz", PARIS, "--db", log_db,
                 "--policy", str(policy), "--fees", str(fees_file),
                 "--format", "table"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "2400.06" in out and "capped at 30 %" in out  # globex: 60 missed, capped
    assert "150.00" in out  # acme: 3 missed at 50
    # a policy without credits terms says so, in one line
    policy.write_text("version: c2\ndefault_level: normal\nlevels:\n  normal: {targets: {}}\n")
    assert main(["report", "credits", "--db", log_db, "--policy", str(policy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no credits terms" in err[0]
