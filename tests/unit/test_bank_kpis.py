"""The call-centre KPIs of a month of real calls (Anonymous Bank, February 1999) from the
accumulator (slawatch/core/kpi.py), fed the calls as tests/realdata/anonymous_bank.py
converts them, against an independent computation straight from the file's columns.

The independent side reads the file itself: it keeps the rows the conversion keeps (not
PHANTOM; queued, or answered straight away), takes ``q_time`` as the wait, ``outcome`` as
answered or abandoned, and the day the call left the queue from ``date`` plus the entry
clock plus ``q_time`` with plain arithmetic (the accumulator works out days in
``Asia/Jerusalem`` with zoneinfo). Target 20 s (80/20), short abandons under 5 s.
Counts must be equal; rates to 0.01 percentage point. ``pytest -s`` prints the month.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from slawatch.core.kpi import (
    DAY,
    KpiAccumulator,
    KpiSnapshot,
    QueueSettings,
    WindowKpis,
    day_start_ms,
    local_date,
)
from tests.realdata.anonymous_bank import DATA, read_calls

TARGET_S, SHORT_S = 20, 5
ISRAEL = ZoneInfo("Asia/Jerusalem")
WINDOWS_MS = {"15m": 15 * 60_000, "1h": 3_600_000, "month": 40 * 86_400_000}
RATE_TOLERANCE = 1e-4  # 0.01 percentage point


# --- the independent side: plain Python over the file's columns ---------------------------


@dataclass(frozen=True)
class Row:
    queue: str
    entered_s: int  # seconds since 1999-02-01 00:00 local
    wait_s: int
    answered: bool

    @property
    def left_s(self) -> int:
        return self.entered_s + self.wait_s


FEB_1 = date(1999, 2, 1)


def parse_rows() -> list[Row]:
    rows = []
    with (DATA / "february_1999.txt").open(encoding="ascii") as f:
        next(f)
        for line in f:
            c = line.rstrip("\r\n").split("\t")
            q_start, q_time, outcome = c[9], int(c[11]), c[12]
            if outcome == "PHANTOM" or (
                q_start == "0:00:00" and q_time <= 0 and outcome != "AGENT"
            ):
                continue
            h, m, s = map(int, (q_start if q_start != "0:00:00" else c[7]).split(":"))
            day = date(1999, int(c[5][2:4]), int(c[5][4:6]))
            entered = (day - FEB_1).days * 86_400 + h * 3600 + m * 60 + s
            rows.append(Row(c[4], entered, q_time, outcome == "AGENT"))
    return rows


def tally(rows: list[Row]) -> Counter[str]:
    t: Counter[str] = Counter()
    for r in rows:
        t["offered"] += 1
        if r.answered:
            t["answered"] += 1
            t["answered_within"] += r.wait_s <= TARGET_S
            t["answer_wait_s"] += r.wait_s
        else:
            t["abandoned"] += 1
            t["abandoned_within"] += r.wait_s <= TARGET_S
            t["short_abandoned"] += r.wait_s < SHORT_S
    return t


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def expected_rates(t: Counter[str]) -> dict[str, float | None]:
    within = t["answered_within"] + t["abandoned_within"]
    return {
        "asa_s": ratio(t["answer_wait_s"], t["answered"]),
        "abandonment": ratio(t["abandoned"], t["offered"]),
        "asterisk": ratio(t["answered_within"], t["answered"]),
        "asterisk_sl2": ratio(within, t["answered"] + t["abandoned"]),
        "genesys": ratio(t["answered_within"], t["offered"] - t["short_abandoned"]),
        "connect": ratio(within, t["offered"]),
    }


# --- slawatch's side ----------------------------------------------------------------------


def got_rates(w: WindowKpis) -> dict[str, float | None]:
    return {
        "asa_s": None if w.asa_ms is None else w.asa_ms / 1000,
        "abandonment": w.abandonment_rate,
        **w.service_levels(),
    }


def assert_same(w: WindowKpis, t: Counter[str], where: str) -> None:
    counts = ("offered", "answered", "answered_within", "abandoned", "short_abandoned")
    assert {k: getattr(w, k) for k in counts} == {k: t[k] for k in counts}, where
    assert w.abandoned_within == t["abandoned_within"], where
    assert w.answer_wait_ms == t["answer_wait_s"] * 1000, where
    got, want = got_rates(w), expected_rates(t)
    for name, value in want.items():
        if value is None:
            assert got[name] is None, (where, name)
        else:
            assert got[name] == pytest.approx(value, abs=RATE_TOLERANCE), (where, name)


@dataclass
class Run:
    rows: list[Row]
    day_ends: dict[date, KpiSnapshot]
    noons: dict[int, KpiSnapshot]  # at epoch ms
    end: KpiSnapshot
    accumulator: KpiAccumulator


def epoch_ms(local_s: int) -> int:
    return day_start_ms(FEB_1, ISRAEL) + local_s * 1000


@pytest.fixture(scope="module")
def run() -> Run:
    assert DATA.is_dir(), f"the shared real data is missing: {DATA}"
    rows = parse_rows()
    calls = list(read_calls())
    facts = []  # (at_ms, step, call): queued before left at the same instant
    for call in calls:
        entered = int(call.entered.timestamp()) * 1000
        facts.append((entered, 0, call))
        facts.append((entered + call.wait_s * 1000, 1, call))
    facts.sort(key=lambda f: (f[0], f[1]))
    last_day = local_date(facts[-1][0], ISRAEL)
    checkpoints: list[tuple[int, date | None]] = []  # day ends and noons
    day = local_date(facts[0][0], ISRAEL)
    while day <= last_day:
        checkpoints.append((day_start_ms(day, ISRAEL) + 12 * 3_600_000, None))
        checkpoints.append((day_start_ms(day + timedelta(days=1), ISRAEL) - 1, day))
        day += timedelta(days=1)
    acc = KpiAccumulator(
        default=QueueSettings(
            target_ms=TARGET_S * 1000, short_abandon_ms=SHORT_S * 1000, tz=ISRAEL
        ),
        windows_ms=WINDOWS_MS,
    )
    day_ends: dict[date, KpiSnapshot] = {}
    noons: dict[int, KpiSnapshot] = {}
    cp = 0
    for at, step, call in facts:
        while cp < len(checkpoints) and checkpoints[cp][0] < at:
            now, ending = checkpoints[cp]
            snap = acc.snapshot(now)
            if ending is None:
                noons[now] = snap
            else:
                day_ends[ending] = snap
            cp += 1
        if step == 0:
            assert acc.queued(call.queue, call.call_key, at)
        elif call.answered:
            assert acc.answered(call.call_key, at)
        else:
            assert acc.abandoned(call.call_key, at)
    end = acc.snapshot(facts[-1][0])
    day_ends[last_day] = end
    return Run(rows, day_ends, noons, end, acc)


def test_the_file_and_the_conversion_agree_on_the_calls(run: Run) -> None:
    assert len(run.rows) == 33_344 - 278 - 1_941
    assert run.accumulator.health.duplicates == run.accumulator.health.late == 0
    assert run.accumulator.health.unmatched == run.accumulator.health.stale == 0


def test_every_day_per_queue_and_overall(run: Run) -> None:
    by_day: dict[date, list[Row]] = defaultdict(list)
    for r in run.rows:
        by_day[FEB_1 + timedelta(days=r.left_s // 86_400)].append(r)
    assert set(by_day) <= set(run.day_ends)
    for day, snap in sorted(run.day_ends.items()):
        rows = by_day.get(day, [])
        assert_same(snap.overall.windows[DAY], tally(rows), f"{day} overall")
        for queue in {r.queue for r in rows} | set(snap.queues):
            mine = [r for r in rows if r.queue == queue]
            assert_same(snap.queues[queue].windows[DAY], tally(mine), f"{day} {queue}")
    assert sum(snap.overall.windows[DAY].offered for snap in run.day_ends.values()) == len(run.rows)


def test_the_month_per_queue_and_overall(run: Run) -> None:
    assert_same(run.end.overall.windows["month"], tally(run.rows), "month overall")
    queues = sorted({r.queue for r in run.rows})
    assert sorted(run.end.queues) == queues
    for queue in queues:
        mine = [r for r in run.rows if r.queue == queue]
        assert_same(run.end.queues[queue].windows["month"], tally(mine), f"month {queue}")
    print_month(run.end, queues)


def test_sliding_windows_and_waiting_calls_at_noon_every_day(run: Run) -> None:
    busy = 0
    for now_ms, snap in sorted(run.noons.items()):
        now_s = (now_ms - epoch_ms(0)) // 1000
        for name, length in (("15m", 900), ("1h", 3600)):
            rows = [r for r in run.rows if now_s - length < r.left_s <= now_s]
            assert_same(snap.overall.windows[name], tally(rows), f"{now_s} {name}")
        waiting = [r for r in run.rows if r.entered_s <= now_s < r.left_s]
        assert snap.overall.waiting == len(waiting)
        longest = max((now_s - r.entered_s for r in waiting), default=None)
        got = snap.overall.longest_wait_ms
        assert got == (None if longest is None else longest * 1000)
        busy += bool(waiting)
    assert busy > 10  # weekday noons have calls waiting


def print_month(snap: KpiSnapshot, queues: list[str]) -> None:
    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{100 * x:6.2f}"

    print()
    print("Anonymous Bank, February 1999, target 20 s, short abandon < 5 s (month, by exit)")
    print(
        "queue  offered answered  ans<=20s abandoned short  ASA s  aband%"
        "  SL(Ast)  SL2(Ast) Genesys  Connect  maxAbd s"
    )
    rows = [(q, snap.queues[q].windows["month"]) for q in queues]
    rows.append(("all", snap.overall.windows["month"]))
    for name, w in rows:
        asa = "   -  " if w.asa_ms is None else f"{w.asa_ms / 1000:6.1f}"
        max_abandon = (w.max_abandon_wait_ms or 0) / 1000
        print(
            f"{name:5} {w.offered:8} {w.answered:8} {w.answered_within:9} {w.abandoned:9}"
            f" {w.short_abandoned:5} {asa} {pct(w.abandonment_rate)}  {pct(w.sl_asterisk)}"
            f"   {pct(w.sl2_asterisk)}  {pct(w.sl_genesys)}  {pct(w.sl_connect)}"
            f"  {max_abandon:8.0f}"
        )
