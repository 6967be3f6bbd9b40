"""The wallboard in a real browser: a worker on the session's broker and Redis, Debian's
Chromium driven by Playwright, and what a supervisor would see change on the wall.

Calls, tickets and a chat are produced with event times in the past, so that service
levels, waits and at-risk cycles exist at once: no test sleeps for a timer, each step polls
the page for its visible outcome with a bounded timeout. The page records every view it
applies (a MutationObserver on ``body[data-updated-ms]``), so the update delay is taken from
the first view that shows a change, not from whenever the test looked.

Chromium is Debian's (package ``chromium``; ``SLAWATCH_CHROMIUM`` names another binary);
Playwright never downloads a browser here. A missing browser fails the test, under CI=true
or not: the suite never skips.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import read_until
from tests.integration.workers import WorkerProcess, sla_records
from tests.samples import keyed_event

pytestmark = pytest.mark.integration

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "wallboard.png"

#: The issue asks for a change on screen within 1 s of its SLA event. Measured from the
#: produce call (two broker hops, a tick and the half-second publish before the SLA path
#: even starts) every change must show within this, on a loaded 2-core machine too ...
MAX_DELAY_FROM_PRODUCE_S = 1.5
#: ... and from the SLA event's `detected_at` (the issue's own measure) within this.
MAX_DELAY_FROM_SLA_EVENT_S = 1.0

POLICY = """
version: test-wallboard
default_level: normal
queue_defaults: {target: 20s, goal: 80%}
queues:
  sales: {target: 15s, goal: 90%}
levels:
  normal:
    targets: {first_reply: 8h, next_reply: 8h, chat_reply: 60s, call_answer: 20s, resolution: 5d}
  high:
    targets: {first_reply: 10m, next_reply: 1h, chat_reply: 45s, call_answer: 15s, resolution: 1d}
rules:
  - {name: high, when: {priority: {equals: high}}, set_level: high, stop: true}
"""

#: Records, in the page, every view applied: what the test looks at, and when.
RECORD_VIEWS = """() => {
  const text = (sel) => {
    const node = document.querySelector(sel);
    return node ? node.textContent.trim() : null;
  };
  const cell = (field) => text(`tr[data-queue="billing"] [data-field="${field}"]`);
  window.__views = [];
  new MutationObserver(() => window.__views.push({
    ms: Number(document.body.dataset.updatedMs),
    at_ms: Number(document.body.dataset.atMs),
    waiting: cell("waiting"),
    sl_15m: text('tr[data-queue="billing"] [data-field="sl-15m"] .sl-main'),
    at_risk: [...document.querySelectorAll("#at-risk tr[data-id]")].map((r) => r.dataset.id),
    breaches: [...document.querySelectorAll("#breaches tr[data-id]")].map((r) => r.dataset.id),
  })).observe(document.body, {attributes: true, attributeFilter: ["data-updated-ms"]});
}"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


e = keyed_event


def off_loop(coro: Any) -> Any:
    """Run ``coro`` to its end in a thread of its own: Playwright's sync API keeps an event
    loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run, coro).result()


def produce_timed(settings, batches: dict[str, list[tuple[bytes, bytes]]]) -> int:
    """Send ``batches`` (topic -> messages) with a producer already connected; return the
    wall-clock ms just before the first send (what delays are measured from)."""

    async def go() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            for topic in batches:  # metadata first: not part of the delay
                await producer.partitions_for(topic)
            started = now_ms()
            for topic, messages in batches.items():
                for key, value in messages:
                    await producer.send(topic, value, key=key)
            await producer.flush()
            return started
        finally:
            await producer.stop()

    return off_loop(go())


def chromium_or_fail() -> str:
    """The Chromium binary: Debian's, never one Playwright would download."""
    named = os.environ.get("SLAWATCH_CHROMIUM")
    binary = named or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).is_file():
        pytest.fail(
            f"no Chromium at {binary}: the wallboard's browser test needs the Debian package "
            "`chromium` (apt-get install chromium; scripts/require-system-packages installs it "
            "as root), or SLAWATCH_CHROMIUM naming a Chromium binary. It is never skipped.",
            pytrace=False,
        )
    return binary


def clock_s(text: str) -> int:
    """'1:05' or '1:02:03' (optionally after 'overdue ') as seconds."""
    parts = [int(p) for p in text.removeprefix("overdue ").split(":")]
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


class Wall:
    """The page, and the views it applied since the test started recording."""

    def __init__(self, page, worker: WorkerProcess) -> None:
        self.page = page
        self.worker = worker

    def views(self) -> list[dict[str, Any]]:
        return self.page.evaluate("window.__views")

    def mark(self) -> int:
        return len(self.views())

    def first_view(self, since: int, predicate, what: str, timeout_s: float = 20) -> dict:
        """The first view applied after the ``since``-th that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            views = self.views()
            for view in views[since:]:
                if predicate(view):
                    return view
            if self.worker.process.poll() is not None:
                raise AssertionError(f"worker exited before {what}:\n{self.worker.log_tail()}")
            if time.monotonic() > deadline:
                status = self.page.locator("#status").inner_text()
                raise AssertionError(
                    f"the page never showed {what} within {timeout_s}s (status {status!r}; "
                    f"last view {views[-1:]}):\n{self.worker.log_tail()}"
                )
            time.sleep(0.05)

    def cell(self, queue: str, field: str):
        return self.page.locator(f'tr[data-queue="{queue}"] [data-field="{field}"]')


def test_wallboard_follows_calls_and_at_risk_tickets_in_chromium(settings_factory, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[dev]'")
    chromium = chromium_or_fail()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = settings_factory(policy_file=str(policy), watermark_grace_ms=200)
    run(ensure_topics(settings))
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    delays: dict[str, float] = {}
    try:
        worker.wait_ready()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{settings.web_port}/wallboard")
                page.evaluate(RECORD_VIEWS)
                wall = Wall(page, worker)
                page.wait_for_selector('#status[data-state="live"]', timeout=30_000)
                assert page.locator("h1").inner_text() == "slawatch — contact centre"
                run_scenario(wall, settings, delays, tmp_path)
                assert errors == [], errors
            finally:
                browser.close()
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def run_scenario(wall: Wall, settings, delays: dict[str, float], tmp_path: Path) -> None:
    page = wall.page
    t0 = now_ms() - 30_000  # the calls below queued half a minute ago
    calls = [
        # billing: three answered (5 s, 8 s: within 20 s; 26 s: not), one still waiting
        *[e("call.queued", f"Q-B{i}", t0, 1, queue="billing") for i in range(1, 5)],
        e("call.answered", "Q-B1", t0 + 5_000, 2, agent="a1"),
        e("call.answered", "Q-B2", t0 + 8_000, 2, agent="a2"),
        e("call.answered", "Q-B3", t0 + 26_000, 2, agent="a3"),
        # other queues, so that the wall looks like one
        *[e("call.queued", f"Q-G{i}", t0 + 1000 * i, 1, queue="general") for i in range(1, 4)],
        *[e("call.answered", f"Q-G{i}", t0 + 1000 * i + 4_000, 2, agent="a4") for i in range(1, 4)],
        e("call.queued", "Q-S1", t0, 1, queue="sales"),
        e("call.answered", "Q-S1", t0 + 12_000, 2, agent="a5"),
        e("call.queued", "Q-S2", t0 + 2_000, 1, queue="sales"),
        e("call.abandoned", "Q-S2", t0 + 9_000, 2, queue="sales"),
    ]
    created = now_ms() - 8 * 60_000  # a high ticket: at risk (7.5 min of 10), due in 2 min
    ticket_fields = dict(
        priority="high", department="billing", assignee="agent-07", customer_group="enterprise"
    )
    tickets = [
        e("ticket.created", "T-123", created, 1, **ticket_fields),
        e("ticket.created", "T-77", now_ms() - 7 * 3_600_000, 1, department="support"),
    ]
    chats = [
        e("chat.started", "C-9", now_ms() - 50_000, 1, department="sales"),
        e("chat.message", "C-9", now_ms() - 50_000, 2, author="customer"),
    ]

    # 1. The first calls and the tickets: the billing row, the ticket at risk.
    since = wall.mark()
    sent = produce_timed(settings, {
        settings.topic_calls: calls, settings.topic_tickets: tickets, settings.topic_chats: chats
    })  # fmt: skip
    view = wall.first_view(since, lambda v: v["waiting"] == "1" and v["sl_15m"] == "67%",
                           "the billing row of the first calls")  # fmt: skip
    delays["first calls"] = (view["ms"] - sent) / 1000
    view = wall.first_view(since, lambda v: "T-123" in v["at_risk"], "T-123 at risk")
    delays["ticket at risk"] = (view["ms"] - sent) / 1000
    at_risk_shown_ms = view["ms"]

    billing = lambda field: wall.cell("billing", field)  # noqa: E731
    assert billing("target").inner_text() == "80/20"
    assert billing("sl-15m").get_attribute("data-state") == "bad"  # 2/3 under 80 %
    assert billing("asa").inner_text() == "0:13"  # (5 + 8 + 26) / 3
    assert billing("abandon").inner_text() == "0%"
    if same_utc_day(t0, now_ms()):  # the day window starts at midnight UTC
        assert billing("sl-day").locator(".sl-main").inner_text() == "67%"
    variants = billing("sl-15m").locator(".sl-variants").inner_text()
    assert "SL2" in variants and "Genesys" in variants and "Connect" in variants, variants
    overall = wall.cell("*", "waiting")
    assert overall.inner_text() == "1"
    assert wall.cell("sales", "target").inner_text() == "90/15"

    # The longest wait counts up on its own between views.
    before = clock_s(billing("longest-wait").inner_text())
    row = page.locator('#at-risk tr[data-id="T-123"]')
    left_before = clock_s(row.locator('[data-field="remaining"]').inner_text())
    assert 25 <= before <= 60, before
    time.sleep(1.2)
    assert clock_s(billing("longest-wait").inner_text()) > before
    left_after = clock_s(row.locator('[data-field="remaining"]').inner_text())
    assert left_after < left_before, (left_before, left_after)
    due_in_s = (created + 10 * 60_000 - now_ms()) / 1000
    assert abs(left_after - due_in_s) <= 2, (left_after, due_in_s)
    assert row.get_attribute("data-state") == "at-risk"
    assert row.locator('[data-field="metric"]').inner_text() == "first reply"
    assert row.locator('[data-field="where"]').inner_text() == "billing"
    assert row.locator('[data-field="assignee"]').inner_text() == "agent-07"
    assert row.locator('[data-field="customer-group"]').inner_text() == "enterprise"
    # The waiting call is past its 20 s: breached, so listed among the breaches, in red.
    wall.first_view(since, lambda v: "Q-B4" in v["breaches"], "the waiting call's breach")
    call = page.locator('#at-risk tr[data-id="Q-B4"]')
    assert call.get_attribute("data-state") == "overdue"
    assert call.locator('[data-field="remaining"]').inner_text().startswith("overdue ")

    # 2. More billing calls: the figures move (5 of 6 within target: green), one more waits.
    t1 = now_ms() - 10_000
    more = [
        *[e("call.queued", f"Q-B{i}", t1, 1, queue="billing") for i in range(5, 8)],
        *[e("call.answered", f"Q-B{i}", t1 + 2_000, 2, agent="a1") for i in range(5, 8)],
        e("call.queued", "Q-B8", now_ms(), 1, queue="billing"),
    ]
    since = wall.mark()
    sent = produce_timed(settings, {settings.topic_calls: more})
    view = wall.first_view(since, lambda v: v["waiting"] == "2" and v["sl_15m"] == "83%",
                           "the billing row after more calls")  # fmt: skip
    delays["more calls"] = (view["ms"] - sent) / 1000
    assert billing("sl-15m").get_attribute("data-state") == "good"
    assert billing("waiting").inner_text() == "2"
    page.screenshot(path=str(tmp_path / "wallboard.png"))
    assert (tmp_path / "wallboard.png").stat().st_size > 10_000
    if os.environ.get("SLAWATCH_UPDATE_SCREENSHOT"):  # the README's picture, on request only
        page.screenshot(path=str(DOCS_SCREENSHOT))

    # 3. A public agent reply to T-123: its first reply is met, it leaves the list.
    since = wall.mark()
    sent = produce_timed(settings, {settings.topic_tickets: [
        e("message.sent", "T-123", now_ms(), 2, visibility="public", agent="agent-07")
    ]})  # fmt: skip
    view = wall.first_view(since, lambda v: "T-123" not in v["at_risk"], "T-123 leave the list")
    delays["reply"] = (view["ms"] - sent) / 1000
    left_shown_ms = view["ms"]
    assert page.locator('#at-risk tr[data-id="T-123"]').count() == 0
    assert page.locator('#at-risk tr[data-id="T-77"]').count() == 1  # still at risk

    # The issue's own measure: from each SLA event's detection to the page showing it.
    def sla(kind: str):
        def enough(records) -> bool:
            return any(r["conversation_id"] == "T-123" and r["kind"] == kind
                       for r in sla_records(records))  # fmt: skip

        records = sla_records(off_loop(read_until(settings, settings.topic_sla_events, enough, 10)))
        return next(r for r in records if r["conversation_id"] == "T-123" and r["kind"] == kind)

    detected = {kind: parse_timestamp_ms(sla(kind)["detected_at"]) for kind in ("at_risk", "met")}
    delays["at_risk event"] = (at_risk_shown_ms - detected["at_risk"]) / 1000
    delays["met event"] = (left_shown_ms - detected["met"]) / 1000

    from_produce = [delays[k] for k in ("first calls", "ticket at risk", "more calls", "reply")]
    from_sla = [delays["at_risk event"], delays["met event"]]
    print(
        "\nwallboard update delays: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in delays.items())
        + f" (median from produce {statistics.median(from_produce):.3f} s)"
    )
    assert max(from_produce) <= MAX_DELAY_FROM_PRODUCE_S, delays
    assert max(from_sla) <= MAX_DELAY_FROM_SLA_EVENT_S, delays
    assert min(from_sla) >= -0.05, delays  # never shown before it was decided


def same_utc_day(a_ms: int, b_ms: int) -> bool:
    return a_ms // 86_400_000 == b_ms // 86_400_000
