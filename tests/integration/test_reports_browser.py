"""The managers' reports page in a real browser: the reports API in-process over a SQLite
SLA log, Debian's Chromium driven by Playwright, and what a manager sees against what the
API answers for the same question.

The log holds a week of a made-up centre (tickets, chats and calls across four
departments, every status) in Europe/Paris, the server's report time zone. Every check
compares the page with the API's own JSON or CSV fetched directly (with the token as a
bearer), so the test says "the page shows what the API says", not what the API should
compute (tests/integration/test_log_store.py and the API's own tests do that).

No step sleeps: each action marks the sections it reloads ``data-state="loading"`` at
once, and the test waits, bounded, for them to be ``ready`` again.

Chromium is Debian's (package ``chromium``; ``SLAWATCH_CHROMIUM`` names another binary);
Playwright never downloads a browser here. A missing browser fails the test: the suite
never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from slawatch.config.settings import Settings, load_settings
from slawatch.dev.embedded import free_port
from slawatch.reports import COLUMNS, LogStore
from slawatch.web.access import access_middleware
from tests.integration.test_wallboard_browser import chromium_or_fail

pytestmark = pytest.mark.integration

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "reports.png"
TOKEN = "reports-browser-test-token"
ZONE = "Europe/Paris"
PARIS = ZoneInfo(ZONE)
#: A Monday; the week holds no DST change (Paris changes on 29 March 2026).
FIRST_DAY = date(2026, 3, 2)
DAYS = 7
RANGE = {"from": FIRST_DAY.isoformat(), "to": (FIRST_DAY + timedelta(days=DAYS)).isoformat()}
WAIT_MS = 15_000
#: A compliance row's times (working seconds), shown as durations.
TIMES = ("met_avg_s", "met_max_s", "met_min_s", "missed_avg_s", "missed_max_s", "missed_min_s")

# --- the SLA log of a made-up week -----------------------------------------------------------

DEPARTMENTS = {
    "billing": ["ana.berger", "bruno.costa", "chloe.dumas"],
    "support": ["david.eng", "emma.faure", "farid.gill", "giulia.hahn"],
    "sales": ["hugo.ito", "ines.jung"],
    "tech": ["jonas.klein", "kim.lopez"],
}
#: Targets (seconds) per level and metric.
TARGETS = {
    "standard": {"first_reply": 8 * 3600, "next_reply": 8 * 3600, "resolution": 3 * 86400,
                 "chat_reply": 60, "call_answer": 20},
    "high": {"first_reply": 3600, "next_reply": 2 * 3600, "resolution": 86400,
             "chat_reply": 45, "call_answer": 15},
    "vip": {"first_reply": 600, "next_reply": 1800, "resolution": 8 * 3600,
            "chat_reply": 30, "call_answer": 10},
}  # fmt: skip
STOPS = {
    "first_reply": "replied", "next_reply": "replied", "resolution": "solved",
    "chat_reply": "replied", "call_answer": "answered",
}  # fmt: skip
CANCELS = {
    "first_reply": [("closed", "closed"), ("deleted", "deleted")],
    "next_reply": [("closed", "closed"), ("solved", "solved")],
    "resolution": [("closed", "closed"), ("deleted", "deleted")],
    "chat_reply": [("chat_ended", "chat_ended")],
    "call_answer": [("abandoned", "short_abandon"), ("transferred", "transferred")],
}
LEVEL_OF = {"normal": "standard", "high": "high", "urgent": "vip"}


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def cycle_row(rng: random.Random, kind: str, number: int, metric: str, n: int) -> dict[str, Any]:
    """One cycle with every column of the store's table, as a sink would have folded it."""
    department = rng.choices(list(DEPARTMENTS), weights=[3, 4, 2, 1])[0]
    priority = rng.choices(list(LEVEL_OF), weights=[7, 2, 1])[0]
    level = LEVEL_OF[priority]
    target_s = float(TARGETS[level][metric])
    opening = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, 8, tzinfo=PARIS)
    local = opening + timedelta(days=rng.randrange(DAYS), seconds=rng.randrange(10 * 3600))
    started_ms = epoch_ms(local)
    status = rng.choices(
        ["met", "missed", "cancelled", "open", "at_risk", "breached"], weights=[58, 18, 8, 7, 5, 4]
    )[0]
    prefix = {"ticket": "T", "chat": "C", "call": "Q"}[kind]
    conversation_id = f"{prefix}-{number}"
    business_s = stopped_ms = at_risk_ms = breached_ms = stop = reason = None
    if status in ("met", "missed"):
        share = rng.uniform(0.05, 0.95) if status == "met" else rng.uniform(1.05, 3.0)
        business_s = round(target_s * share, 3)
        stop = STOPS[metric]
        if status == "missed":
            breached_ms = started_ms + int(target_s * 1000)
    elif status == "cancelled":
        business_s = round(target_s * rng.uniform(0.01, 0.6), 3)
        stop, reason = rng.choice(CANCELS[metric])
    else:
        business_s = round(target_s * {"open": 0.3, "at_risk": 0.8, "breached": 1.4}[status], 3)
    if status in ("met", "missed", "cancelled"):
        # Working time is not wall time: nights and weekends stretch it a little.
        stopped_ms = started_ms + int(business_s * 1000 * rng.uniform(1.0, 1.6))
    if status in ("at_risk", "breached") or (status == "missed" and rng.random() < 0.7):
        at_risk_ms = started_ms + int(target_s * 750)
    if status == "breached":
        breached_ms = started_ms + int(target_s * 1000)
    agent = None
    if status not in ("open",) or rng.random() < 0.5:
        agent = rng.choice(DEPARTMENTS[department])
    channel = {"ticket": rng.choice(["email", "web"]), "chat": "chat", "call": "voice"}[kind]
    requester = None
    if rng.random() > 0.05:
        requester = (
            f"+33 1 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}"
            if kind == "call"
            else f"customer{rng.randrange(1, 400):03d}@example.{rng.choice(['com', 'fr'])}"
        )
    row = {
        "conversation_key": f"{kind}::{conversation_id}",
        "metric": metric,
        "cycle": n,
        "conversation_kind": kind,
        "conversation_id": conversation_id,
        "tenant": "acme",
        "requester": requester,
        "customer_group": rng.choice(["enterprise", "smb", None]),
        "channel": channel,
        "priority": priority,
        "department": department,
        "queue": department if kind == "call" else None,
        "agent": agent,
        "level": level,
        "policy_version": "2026-03-01",
        "target_s": target_s,
        "started_ms": started_ms,
        "due_ms": started_ms + int(target_s * 1000),
        "stopped_ms": stopped_ms,
        "at_risk_ms": at_risk_ms,
        "breached_ms": breached_ms,
        "status": status,
        "stop": stop,
        "reason": reason,
        "business_s": business_s,
        "remaining_s": round(target_s - business_s, 3),
        "late": rng.random() < 0.03,
        "fold": '{"seen": []}',
        "updated_ms": stopped_ms or started_ms,
    }
    assert row.keys() == set(COLUMNS)
    return row


def week_of_cycles(seed: int = 7) -> list[dict[str, Any]]:
    """About 400 cycles: tickets with a first reply, some next replies and a resolution;
    chats; calls."""
    rng = random.Random(seed)
    rows = []
    for number in range(10001, 10141):
        rows.append(cycle_row(rng, "ticket", number, "first_reply", 1))
        for n in range(1, rng.choice([1, 1, 2, 3])):
            rows.append(cycle_row(rng, "ticket", number, "next_reply", n))
        if rng.random() < 0.6:
            rows.append(cycle_row(rng, "ticket", number, "resolution", 1))
    rows += [cycle_row(rng, "chat", number, "chat_reply", 1) for number in range(501, 571)]
    rows += [cycle_row(rng, "call", number, "call_answer", 1) for number in range(9001, 9051)]
    return rows


# --- the API, in-process ----------------------------------------------------------------------


class ReportsServer:
    """``add_report_routes`` behind the access middleware, on a loopback port, served by an
    event loop of its own in a thread (Playwright's sync API runs in the test's)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="reports-api", daemon=True
        )
        self.runner: web.AppRunner | None = None

    def __enter__(self) -> ReportsServer:
        from slawatch.web.reports import ReportsApi, add_report_routes

        async def start() -> None:
            app = web.Application(middlewares=[access_middleware(TOKEN)])
            add_report_routes(app, ReportsApi(self.settings))
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def get(self, path: str, params: dict[str, Any] | list[tuple[str, str]]) -> tuple[int, bytes]:
        """``GET path?params`` straight from the API, with the token as a bearer."""
        request = urllib.request.Request(
            f"{self.base}{path}?{urlencode(params, doseq=True)}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        status, body = self.get(path, params)
        assert status == 200, (path, params, status, body[:300])
        return json.loads(body)

    def csv(self, path: str, params: dict[str, Any]) -> bytes:
        status, body = self.get(path, {**params, "format": "csv"})
        assert status == 200, (path, params, status, body[:300])
        return body


def reports_settings(url: str, tmp_path: Path) -> Settings:
    return load_settings(
        None,
        environ={},
        log_store_url=url,
        report_time_zone=ZONE,
        web_auth_token=TOKEN,
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReportsServer]:
    url = "sqlite:///" + str(tmp_path / "log.db")
    with LogStore.open(url) as store:
        store.upsert(week_of_cycles())
    with ReportsServer(reports_settings(url, tmp_path)) as running:
        yield running


# --- the page -----------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """The page's duration words (the issue's examples: 45 s, 12 min, 3 h 05 min, 2 d 4 h)."""
    s = round(abs(seconds))
    if s < 60:
        return f"{s} s"
    m = round(abs(seconds) / 60)
    if m < 60:
        return f"{m} min"
    if m < 1440:
        return f"{m // 60} h {m % 60:02d} min"
    h = round(abs(seconds) / 3600)
    return f"{h // 24} d {h % 24} h"


def test_duration_words() -> None:
    assert [duration(s) for s in (45, 720, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "45 s", "12 min", "3 h 05 min", "2 d 4 h"
    ]  # fmt: skip


class Page:
    """The reports page and the waits on it."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def testid(self, name: str) -> Any:
        return self.page.locator(f'[data-testid="{name}"]')

    def settle(self, *sections: str) -> None:
        """Wait until ``sections`` are no longer loading; fail unless they are ready."""
        names = list(sections or ("compliance", "log"))
        self.page.wait_for_function(
            """(names) => names.every((n) =>
                 document.querySelector(`[data-testid="${n}"]`).dataset.state !== "loading")""",
            arg=names,
            timeout=WAIT_MS,
        )
        states = {n: self.testid(n).get_attribute("data-state") for n in names}
        if set(states.values()) != {"ready"}:
            message = self.testid("error").inner_text() if self.testid("error").is_visible() else ""
            raise AssertionError(f"sections {states}; the page says {message!r}")

    def log_keys(self) -> list[str]:
        return self.page.eval_on_selector_all(
            '[data-testid="log-rows"] tr[data-key]', "(rows) => rows.map((r) => r.dataset.key)"
        )

    def log_values(self, field: str) -> list[str]:
        return self.page.eval_on_selector_all(
            f'[data-testid="log-rows"] td[data-field="{field}"]',
            "(cells) => cells.map((c) => c.dataset.value)",
        )

    def number(self, name: str) -> float | None:
        value = self.testid(name).get_attribute("data-value")
        return None if value in ("", None) else float(value)


def keys_of(document: dict[str, Any]) -> list[str]:
    return [f"{r['conversation_key']}|{r['metric']}|{r['cycle']}" for r in document["rows"]]


def this_month_in(zone: ZoneInfo) -> tuple[str, str]:
    today = datetime.now(zone).date()
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first.isoformat(), (following - timedelta(days=1)).isoformat()


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page in Debian's Chromium; uncaught errors of the page's script fail the test."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[dev]'")
    chromium = chromium_or_fail()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": 1600, "height": 1000}, accept_downloads=True, color_scheme="dark"
            )
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            crashes: list[str] = []
            page.on("pageerror", lambda exc: crashes.append(str(exc)))
            yield Page(page)
            assert crashes == [], crashes
        finally:
            browser.close()


def test_the_reports_page_shows_what_the_api_says_in_chromium(
    server: ReportsServer, tmp_path: Path
) -> None:
    with browser_page() as reports:
        run_scenario(reports, server, tmp_path)


def test_a_store_that_cannot_be_read_is_said_on_the_page(tmp_path: Path) -> None:
    missing = tmp_path / "no-sink-yet.db"
    with ReportsServer(reports_settings(f"sqlite:///{missing}", tmp_path)) as server:
        status, body = server.get("/api/reports/log", {})
        answer = json.loads(body)
        assert status == 503 and "no such file" in answer["error"], answer
        with browser_page() as reports:
            reports.page.goto(f"{server.base}/reports?token={TOKEN}")
            reports.page.wait_for_function(
                """() => ["compliance", "log"].every((n) =>
                     document.querySelector(`[data-testid="${n}"]`).dataset.state === "error")""",
                timeout=WAIT_MS,
            )
            assert reports.testid("error-message").inner_text() == answer["error"]
            assert not reports.testid("error-parameter").is_visible()
            assert reports.testid("status").get_attribute("data-state") == "error"
            assert reports.testid("log-csv").get_attribute("aria-disabled") == "true"
            assert reports.testid("log-csv").get_attribute("href") is None


def run_scenario(reports: Page, server: ReportsServer, tmp_path: Path) -> None:
    page = reports.page
    # 1. The token once in the URL: a cookie from then on, the token gone from the address.
    page.goto(f"{server.base}/reports?token={TOKEN}")
    reports.settle()
    assert "token" not in page.url
    assert page.locator("h1").inner_text() == "slawatch — reports"
    # Without dates: this month in the server's zone, which the page shows.
    assert reports.testid("filter-tz").input_value() == ZONE
    assert ZONE in page.locator("#tz-hint").inner_text()
    first, last = this_month_in(PARIS)
    assert reports.testid("filter-from").input_value() == first
    assert reports.testid("filter-to").input_value() == last

    # 2. The week of the log: its days, per day by department (the defaults).
    reports.testid("filter-from").fill(RANGE["from"])
    reports.testid("filter-to").fill((FIRST_DAY + timedelta(days=DAYS - 1)).isoformat())
    reports.settle()
    assert f"from={RANGE['from']}" in page.url and f"to={RANGE['to']}" in page.url
    check_compliance(reports, server, {}, period="day", by=["department"])
    check_chart(reports, server, {})

    # 3. One department: every log row is of it, the count is the API's.
    reports.testid("filter-department").fill("billing")
    reports.testid("filter-department").press("Enter")
    reports.settle()
    only_billing = {"department": "billing"}
    check_compliance(reports, server, only_billing, period="day", by=["department"])
    check_chart(reports, server, only_billing)
    log_params = {**RANGE, "tz": ZONE, "on": "start", "department": "billing"}
    first_page = server.json("/api/reports/log", {**log_params, "sort": "started", "order": "desc"})
    assert reports.number("log-total") == first_page["total"] > 100
    assert set(reports.log_values("department")) == {"billing"}
    assert reports.log_keys() == keys_of(first_page)  # the default order: newest first

    # 4. Page size 25; sort by agent, ascending then (by keyboard) descending.
    reports.testid("log-page-size").select_option("25")
    reports.settle("log")
    reports.testid("sort-agent").click()
    reports.settle("log")
    agent_asc = server.json(
        "/api/reports/log", {**log_params, "sort": "agent", "order": "asc", "limit": 25}
    )
    assert reports.log_keys() == keys_of(agent_asc)
    assert page.locator('th[data-sort="agent"]').get_attribute("aria-sort") == "ascending"
    agents = [agent for agent in reports.log_values("agent") if agent]
    assert agents == sorted(agents) and len(agents) > 20
    reports.testid("sort-agent").focus()
    page.keyboard.press("Enter")
    reports.settle("log")
    sort = {"sort": "agent", "order": "desc"}
    pages = [server.json("/api/reports/log", {**log_params, **sort, "limit": 25})]
    assert reports.log_keys() == keys_of(pages[0])
    assert page.locator('th[data-sort="agent"]').get_attribute("aria-sort") == "descending"
    # NULL sorts after every value, so it comes first in descending order.
    assert reports.log_values("agent")[0] == "", "the unassigned first in descending order"
    assert reports.testid("log-prev").is_disabled()

    # 5. Every page forward, as the API pages it, then back to the first.
    while pages[-1]["next"] is not None:
        after = pages[-1]["next"]
        pages.append(
            server.json("/api/reports/log", {**log_params, **sort, "limit": 25, "after": after})
        )
    assert len(pages) >= 4
    for number, expected in enumerate(pages[1:], start=2):
        reports.testid("log-next").click()
        reports.settle("log")
        assert reports.testid("log-page").get_attribute("data-page") == str(number)
        assert reports.log_keys() == keys_of(expected), f"page {number}"
    assert reports.testid("log-next").is_disabled()
    seen = [key for p in pages for key in keys_of(p)]
    assert len(seen) == len(set(seen)) == first_page["total"]
    for number in range(len(pages) - 1, 0, -1):
        reports.testid("log-prev").click()
        reports.settle("log")
        assert reports.log_keys() == keys_of(pages[number - 1]), f"back to page {number}"
    assert reports.testid("log-prev").is_disabled()

    # 6. The CSV buttons download what the API gives for the same filters and sort.
    with page.expect_download(timeout=WAIT_MS) as download:
        reports.testid("log-csv").click()
    got = Path(download.value.path()).read_bytes()
    expected_csv = server.csv("/api/reports/log", {**log_params, **sort})
    assert got == expected_csv
    assert got.count(b"\r\n") == first_page["total"] + 1  # the header, then every row
    href = reports.testid("log-csv").get_attribute("href")
    assert "limit=" not in href and "after=" not in href, href
    compliance_params = {"period": "day", "by": "department", **RANGE, "tz": ZONE, **only_billing}
    with page.expect_download(timeout=WAIT_MS) as download:
        reports.testid("compliance-csv").click()
    got = Path(download.value.path()).read_bytes()
    assert got == server.csv("/api/reports/compliance", compliance_params)
    assert got.startswith(b"period,start,end,department,met,")

    # 7. Weeks by level and metric: another table, the same totals.
    reports.testid("filter-period").select_option("week")
    reports.settle("compliance")
    page.locator('[data-testid="filter-by"] input[value="department"]').uncheck()
    reports.settle("compliance")
    page.locator('[data-testid="filter-by"] input[value="level"]').check()
    reports.settle("compliance")
    page.locator('[data-testid="filter-by"] input[value="metric"]').check()
    reports.settle("compliance")
    check_compliance(reports, server, only_billing, period="week", by=["level", "metric"])
    # The filters are the page's address: a reload (or a bookmark) shows the same report.
    page.reload()
    reports.settle()
    assert reports.testid("filter-department").input_value() == "billing"
    assert reports.testid("filter-period").input_value() == "week"
    assert page.locator('th[data-sort="agent"]').get_attribute("aria-sort") == "descending"
    check_compliance(reports, server, only_billing, period="week", by=["level", "metric"])

    # 8. An error of the API is shown with its parameter, and goes once fixed.
    reports.testid("filter-tz").fill("Mars/Olympus_Mons")
    reports.testid("filter-tz").press("Enter")
    page.wait_for_function(
        """() => ["compliance", "log"].every((n) =>
             document.querySelector(`[data-testid="${n}"]`).dataset.state === "error")""",
        timeout=WAIT_MS,
    )
    status, body = server.get("/api/reports/log", {**log_params, "tz": "Mars/Olympus_Mons"})
    answer = json.loads(body)
    assert status == 400 and answer["parameter"] == "tz", answer
    assert reports.testid("error").is_visible()
    assert reports.testid("error-message").inner_text() == answer["error"]
    assert reports.testid("error-parameter").inner_text() == "tz"
    assert reports.testid("filter-tz").get_attribute("aria-invalid") == "true"
    reports.testid("filter-tz").fill(ZONE)
    reports.testid("filter-tz").press("Enter")
    reports.settle()
    assert not reports.testid("error").is_visible()

    # 9. Readable in both schemes; the README's picture only on request.
    reports.testid("filter-department").fill("")
    reports.testid("filter-department").press("Enter")
    reports.settle()
    page.screenshot(path=str(tmp_path / "reports-dark.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    assert page.evaluate("matchMedia('(prefers-color-scheme: light)').matches")
    page.screenshot(path=str(tmp_path / "reports-light.png"), full_page=True)
    assert (tmp_path / "reports-light.png").stat().st_size > 20_000
    if os.environ.get("SLAWATCH_UPDATE_SCREENSHOT"):
        page.screenshot(path=str(DOCS_SCREENSHOT))

    # 10. A quick range is read in the report's zone.
    reports.testid("range-last-7").click()
    reports.settle()
    today = datetime.now(PARIS).date()
    assert reports.testid("filter-from").input_value() == (today - timedelta(days=6)).isoformat()
    assert reports.testid("filter-to").input_value() == today.isoformat()


def check_compliance(
    reports: Page, server: ReportsServer, filters: dict[str, str], *, period: str, by: list[str]
) -> None:
    """The table's rows and totals, and the summary, are the API's."""
    params = {"period": period, "by": ",".join(by), **RANGE, "tz": ZONE, **filters}
    expected = server.json("/api/reports/compliance", params)
    totals = expected["totals"]
    assert totals["met"] > 0 and totals["missed"] > 0, totals
    for name in ("met", "missed", "cancelled"):
        assert reports.number(f"total-{name}") == totals[name], name
        foot = reports.page.locator(f'[data-testid="compliance-totals"] [data-field="{name}"]')
        assert foot.inner_text() == str(totals[name])
    assert reports.number("total-pct") == pytest.approx(totals["compliance_pct"])
    shown_pct = reports.testid("total-pct").inner_text()
    assert shown_pct.endswith("%")
    assert float(shown_pct[:-1]) == pytest.approx(totals["compliance_pct"], abs=0.05)

    shown = reports.page.eval_on_selector_all(
        "#compliance-rows tr[data-period]",
        """(rows) => rows.map((r) => Object.fromEntries([...r.querySelectorAll("[data-field]")]
             .map((c) => [c.dataset.field, [c.dataset.value, c.textContent.trim()]])))""",
    )
    assert len(shown) == len(expected["rows"]) > 0
    for cells, row in zip(shown, expected["rows"], strict=True):
        assert cells["period"][0] == row["period"]
        for name in by:
            assert cells[name][0] == (row[name] or "")
        for name in ("met", "missed", "cancelled"):
            assert cells[name] == [str(row[name]), str(row[name])]
        for name in TIMES:
            value = row[name]
            assert cells[name][1] == ("—" if value is None else duration(value)), (name, value)


def check_chart(reports: Page, server: ReportsServer, filters: dict[str, str]) -> None:
    """One bar (met under missed) per day with final cycles, holding that day's counts, and
    one compliance point per day with met or missed ones."""
    per_day = server.json(
        "/api/reports/compliance", {"period": "day", **RANGE, "tz": ZONE, **filters}
    )
    rows = per_day["rows"]
    bars = reports.page.eval_on_selector_all(
        '[data-testid="chart-day"]',
        """(groups) => groups.map((g) => ({day: g.dataset.day, met: +g.dataset.met,
             missed: +g.dataset.missed, rects: g.querySelectorAll("rect").length}))""",
    )
    assert [b["day"] for b in bars] == [row["period"] for row in rows]
    assert len(bars) == DAYS  # cycles stopped on every day of the week
    for bar, row in zip(bars, rows, strict=True):
        assert (bar["met"], bar["missed"]) == (row["met"], row["missed"])
        assert bar["rects"] == 2
    points = reports.page.eval_on_selector_all(
        '[data-testid="chart-point"]',
        "(points) => points.map((p) => [p.dataset.day, +p.dataset.pct, +p.getAttribute('cy')])",
    )
    decided = [row for row in rows if row["compliance_pct"] is not None]
    assert [p[0] for p in points] == [row["period"] for row in decided]
    assert [p[1] for p in points] == pytest.approx([row["compliance_pct"] for row in decided])
    # Drawn upside down (SVG's y grows downwards): a higher compliance is higher up.
    by_pct = sorted(points, key=lambda p: p[1])
    assert [p[2] for p in by_pct] == sorted((p[2] for p in by_pct), reverse=True)
