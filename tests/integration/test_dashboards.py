"""Every query of every Grafana dashboard (deploy/grafana/dashboards/) returns data.

One module-wide stack: a real ``slawatch worker`` on the session's embedded broker and
Redis, a real Prometheus (Debian's ``prometheus``, :mod:`tests.integration.prometheus`)
scraping it every second and evaluating the repo's rule files (deploy/prometheus/rules/)
every second, and the traffic simulator feeding the worker calls, chats and tickets with
every delay and SLA target divided by :data:`TIME_SCALE`, so that at-risk, breached,
met and missed cycles of every metric happen within seconds. Once Prometheus holds the
kinds of data the panels show (:data:`KEY_SERIES`), every target of every panel (rows'
nested panels included) runs through ``GET /api/v1/query`` with Grafana's variables
substituted (:func:`expand`); any query that errors, returns no series or only NaN (what
a panel cannot draw) fails the test, all of them listed.

The dashboards' queries use windows of ``$__rate_interval`` (1m here) or recording rules,
never ``offset``: a fresh Prometheus has no past to look at.

A missing Prometheus binary fails (never a skip): ``make test`` installs Debian's
``prometheus`` (scripts/require-system-packages); ``$SLAWATCH_PROMETHEUS`` names another.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from slawatch.config.settings import Settings, load_settings
from slawatch.core.keys import ConversationKind
from slawatch.dev.demo import DEMO_POLICY
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.simulator.output import SimulationReport, publish
from slawatch.dev.simulator.traffic import DAILY_PROFILE, TrafficProfile, generate_traffic
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.prometheus import (
    Prometheus,
    PrometheusMissing,
    QueryFailed,
    prometheus_binary,
)
from tests.integration.workers import WorkerProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy/grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))

#: Delays and SLA targets divided by this: the demo policy's urgent resolution (1 h)
#: lasts 4.5 s, a normal first reply (4 h) 18 s, a call's 20 s target 25 ms.
TIME_SCALE = 800.0
#: Input events a second the simulator aims at, whatever the hour (its daily profile
#: is compensated, :func:`traffic_rate`).
EVENTS_PER_SECOND = 120.0
#: Longest wait for :data:`KEY_SERIES`, from the simulator's start.
DATA_TIMEOUT_S = 60.0

#: Grafana's built-in variables, as a dashboard of the last hour would have them.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "5s",
    "__interval_ms": "5000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

#: What the panels need before they can all show something, as PromQL that returns a
#: series once it is there: the worker ready and scraped, rule evaluation, SLA events of
#: every kind the panels count, finished cycles of every metric inside the rate window
#: (the time histograms), open cycles at risk and breached, dead letters, answered and
#: abandoned calls, short abandons.
KEY_SERIES: dict[str, str] = {
    "worker ready": "sum(slawatch_worker_ready) > 0",
    "recording rules evaluated": "group_topic:slawatch_consumer_lag_messages:sum",
    **{
        f"{kind} events": f'sum(increase(slawatch_sla_events_total{{kind="{kind}"}}[1m])) > 0'
        for kind in ("at_risk", "breached", "met", "missed")
    },
    **{
        f"finished {metric} cycles": f"sum(increase(slawatch_{metric}_seconds_count[1m])) > 0"
        for metric in ("first_reply", "next_reply", "chat_reply", "call_answer", "resolution")
    },
    "open cycles at risk": "sum(slawatch_at_risk_cycles) > 0",
    "open cycles breached": "sum(slawatch_breached_open_cycles) > 0",
    "dead letters": "sum(increase(slawatch_dead_letters_total[1m])) > 0",
    "answered calls": 'sum(increase(slawatch_queue_calls_total{outcome="answered"}[1m])) > 0',
    "abandoned calls": 'sum(increase(slawatch_queue_calls_total{outcome="abandoned"}[1m])) > 0',
    "short abandons": "sum(slawatch_queue_window_short_abandoned_calls) > 0",
    "compliance": ":slawatch_sla_compliance:ratio_rate1h",
}


# --- The dashboards ---------------------------------------------------------------------


def load_dashboard(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels (of collapsed rows) included; rows themselves
    are not panels."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panels(panel)
        else:
            yield panel


def variable_values(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Each template variable's values to try: a query variable its 'All' (its
    ``allValue``, else ``.*``: every query uses it with ``=~``), a custom one each of
    its options."""
    values: dict[str, list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "custom":
            values[variable["name"]] = [option["value"] for option in variable["options"]]
        else:
            values[variable["name"]] = [variable.get("allValue") or ".*"]
    return values


#: ``${name}``, ``${name:format}``, ``[[name]]`` or ``$name``.
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)")


def _name(match: re.Match[str]) -> str:
    return next(name for name in match.groups() if name)


def expand(expr: str, variables: dict[str, list[str]]) -> list[str]:
    """``expr`` with Grafana's variables replaced: the built-ins by :data:`BUILTINS`,
    the dashboard's by each combination of their values. An unknown variable fails."""
    names = sorted({_name(match) for match in _VARIABLE.finditer(expr)})
    own = [name for name in names if name not in BUILTINS]
    unknown = [name for name in own if name not in variables]
    assert not unknown, f"unknown variables {unknown} in {expr!r}"
    expanded = []
    for combination in itertools.product(*(variables[name] for name in own)):
        values = {**BUILTINS, **dict(zip(own, combination, strict=True))}
        expanded.append(_VARIABLE.sub(partial(_value, values), expr))
    return expanded


def _value(values: dict[str, str], match: re.Match[str]) -> str:
    return values[_name(match)]


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel!r}:\n    {self.expr}"


def dashboard_queries() -> list[Query]:
    queries = []
    for path in DASHBOARD_FILES:
        dashboard = load_dashboard(path)
        variables = variable_values(dashboard)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                for expr in expand(target["expr"], variables):
                    queries.append(Query(path.name, panel["title"], expr))
    return queries


def provisioned_datasource_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = [d for d in config["datasources"] if d["type"] == "prometheus"]
    uid: str = datasource["uid"]
    return uid


# --- Checks without servers -------------------------------------------------------------


def test_the_three_dashboards_are_where_grafana_is_provisioned_from() -> None:
    names = {path.name for path in DASHBOARD_FILES}
    assert names == {"slawatch-sla.json", "slawatch-service-level.json", "slawatch-pipeline.json"}
    uids = [load_dashboard(path)["uid"] for path in DASHBOARD_FILES]
    assert len(set(uids)) == len(uids), uids
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/slawatch.yml").read_text())
    (folder,) = [p["options"]["path"] for p in provider["providers"]]
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == folder
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_every_panel_says_what_it_shows_with_a_unit_from_the_provisioned_datasource(
    path: Path,
) -> None:
    dashboard = load_dashboard(path)
    uid = provisioned_datasource_uid()
    assert 36 <= dashboard["schemaVersion"] <= 41
    for panel in panels(dashboard):
        title = panel["title"]
        assert panel.get("description", "").strip(), f"{title}: no description"
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, title
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert panel["targets"], f"{title}: no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), f"{title}: refIds {ref_ids}"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{title}: a target without expr"
            assert target.get("datasource", panel["datasource"])["uid"] == uid, title
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid, variable["name"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(set(ids)) == len(ids), f"panel ids repeat: {ids}"


def test_the_service_level_dashboard_lets_one_pick_the_queue_and_the_window() -> None:
    dashboard = load_dashboard(GRAFANA / "dashboards/slawatch-service-level.json")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["queue"]["definition"] == "label_values(slawatch_queue_window_calls, queue)"
    assert [o["value"] for o in variables["window"]["options"]] == ["15m", "1h", "day"]
    exprs = " ".join(t["expr"] for p in panels(dashboard) for t in p["targets"])
    assert 'queue="$queue"' not in exprs  # multi-valued: always =~
    assert "slawatch_queue_service_level_goal_ratio" in exprs


def test_expand_substitutes_grafanas_variables() -> None:
    variables = {"queue": [".*"], "window": ["15m", "day"]}
    assert expand('rate(x{queue=~"$queue"}[$__rate_interval])', variables) == [
        'rate(x{queue=~".*"}[1m])'
    ]
    assert expand('x{window="${window}", q=~"[[queue]]"}', variables) == [
        'x{window="15m", q=~".*"}',
        'x{window="day", q=~".*"}',
    ]


# --- The stack: worker, simulator, Prometheus -------------------------------------------


def traffic_rate(events_per_second: float, now_s: float) -> float:
    """The simulator's ``rate_eps`` (a day's mean) that gives ``events_per_second`` at
    this UTC hour of its daily profile."""
    mean = sum(DAILY_PROFILE) / len(DAILY_PROFILE)
    return events_per_second * mean / DAILY_PROFILE[int(now_s // 3600) % 24]


class Simulator:
    """The traffic simulator publishing to the worker's input topics in real time, on a
    thread of its own, until :meth:`stop`."""

    def __init__(self, settings: Settings, seed: int = 11) -> None:
        self._settings = settings
        self._seed = seed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.report: SimulationReport | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        now_s = time.time()
        profile = TrafficProfile(
            rate_eps=traffic_rate(EVENTS_PER_SECOND, now_s),
            time_scale=TIME_SCALE,
            malformed_share=0.01,
        )
        messages = generate_traffic(
            profile, seed=self._seed, start_ms=int(now_s * 1000), duration_s=600
        )
        s = self._settings
        topics = {
            ConversationKind.TICKET: s.topic_tickets,
            ConversationKind.CHAT: s.topic_chats,
            ConversationKind.CALL: s.topic_calls,
        }
        try:
            self.report = await publish(
                messages,
                settings=s,
                topics=topics,
                should_stop=self._stop,
            )
        except Exception as error:  # noqa: BLE001 - the test reports it (Simulator.state)
            self.error = error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def state(self) -> str:
        if self.running:
            return "simulator running"
        if self.error is not None:
            return f"simulator failed: {self.error!r}"
        return f"simulator done: {self.report.summary() if self.report else '?'}"

    def stop(self) -> None:
        if not self._started.is_set():
            return
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@dataclass
class Stack:
    worker: WorkerProcess
    prometheus: Prometheus
    simulator: Simulator
    started: float


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The worker (demo policy, :data:`TIME_SCALE`), Prometheus scraping it from before
    the first event, then the simulator."""
    try:
        binary = prometheus_binary()
    except PrometheusMissing as error:
        pytest.fail(str(error), pytrace=False)
    run_dir = tmp_path_factory.mktemp("dashboards")
    prefix = "dashboards"
    settings = load_settings(
        None,
        environ={},
        app_id=prefix,
        broker_url=broker.url,
        redis_url=redis_server.url,
        **{f"topic_{t}": f"{prefix}.{t.replace('_', '-')}" for t in (
            "tickets", "chats", "calls", "normalised", "sla_events", "dead_letter", "policy")},
        web_port=free_port(),
        data_dir=run_dir / "data",
        store="memory://",
        worker_id=f"{prefix}-w1",
        log_level="warning",
        ingest_poll_timeout_ms=20,
        policy_file=str(DEMO_POLICY),
        sla_time_scale=TIME_SCALE,
        watermark_grace_ms=100,
        timer_tick_ms=100,
    )  # fmt: skip
    run(ensure_topics(settings))
    prometheus = Prometheus(
        run_dir / "prometheus", [f"127.0.0.1:{settings.web_port}"], RULE_FILES, binary=binary
    )
    worker = WorkerProcess(settings, run_dir / "worker.log")
    simulator = Simulator(settings)
    try:
        with prometheus:
            worker.wait_ready()
            simulator.start()
            yield Stack(worker, prometheus, simulator, time.monotonic())
    finally:
        simulator.stop()
        worker.stop()


def wait_for_key_series(stack: Stack) -> float:
    """Poll Prometheus until every query of :data:`KEY_SERIES` returns a series; return
    the seconds since the simulator started. Fails naming the ones still empty after
    :data:`DATA_TIMEOUT_S`, or at once when the worker or the simulator stopped."""
    missing = dict(KEY_SERIES)
    while True:
        for name, expr in list(missing.items()):
            if stack.prometheus.query(expr):
                del missing[name]
        elapsed = time.monotonic() - stack.started
        if not missing:
            return elapsed
        exited = stack.worker.process.poll()
        if elapsed > DATA_TIMEOUT_S or exited is not None or not stack.simulator.running:
            worker = "worker running" if exited is None else f"worker exited with {exited}"
            pytest.fail(
                f"after {elapsed:.0f} s of simulated traffic ({stack.simulator.state()}, "
                f"{worker}), Prometheus still has no {', '.join(missing)}:\n"
                + "\n".join(f"  {name}: {expr}" for name, expr in missing.items())
                + f"\nscrape targets: {stack.prometheus.targets_health()}"
                + f"\nworker log:\n{stack.worker.log_tail(1500)}",
                pytrace=False,
            )
        time.sleep(1)


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    waited = wait_for_key_series(stack)
    queries = dashboard_queries()
    failures = []
    for query in queries:
        try:
            result = stack.prometheus.query(query.expr)
        except QueryFailed as error:
            failures.append(f"{query}\n    error: {error}")
            continue
        if not result:
            failures.append(f"{query}\n    no series")
        elif all(math.isnan(float(series["value"][1])) for series in result):
            failures.append(f"{query}\n    only NaN (a quantile of no observation)")
    if failures:
        pytest.fail(
            f"{len(failures)} of {len(queries)} dashboard queries fail after {waited:.0f} s "
            "of traffic:\n" + "\n".join(failures),
            pytrace=False,
        )
