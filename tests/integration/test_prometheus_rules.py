"""The compose stack's Prometheus side (deploy/prometheus/), checked with Debian's
``promtool``: ``check config`` on prometheus.yml (which checks the rule files it loads),
``check rules`` on every rules file and ``test rules`` on every unit-test file in
deploy/prometheus/tests/, each failing with promtool's output. Then what promtool does not
check: every metric a rule reads is one slawatch exports, every alert has a test in
which it fires and one in which it stays quiet, every recording rule is named
level:metric:operations and has a promql_expr_test, and the container loads the same rule
files as the check.

A missing promtool fails (never a skip): ``make test`` installs Debian's ``prometheus``
(scripts/require-system-packages); ``$SLAWATCH_PROMTOOL`` names another binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
#: level:metric:operations, the level empty when summed over everything.
RECORD_NAME = re.compile(r"^[a-z_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$")


def promtool_binary() -> Path:
    """``$SLAWATCH_PROMTOOL``, or ``promtool`` on ``PATH``; fails the test if none."""
    override = os.environ.get("SLAWATCH_PROMTOOL")
    candidates = [override] if override else []
    candidates += [found] if (found := shutil.which("promtool")) else []
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.fail(
        "promtool missing (promtool on PATH, or $SLAWATCH_PROMTOOL): run `make system-packages`"
        " or apt-get install prometheus",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_binary()


def run_promtool(promtool: Path, *args: str | Path) -> str:
    result = subprocess.run(
        [str(promtool), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]
    ]


def test_the_rule_and_test_files_exist() -> None:
    names = {path.name for path in RULE_FILES}
    assert {"recording.yml", "sla.yml", "slawatch.yml"} <= names, names
    assert TEST_FILES, "no promtool unit tests in deploy/prometheus/tests/"


def test_config_is_valid(promtool: Path) -> None:
    output = run_promtool(promtool, "check", "config", CONFIG)
    found = re.search(r"(\d+) rule files? found", output)
    assert found and int(found[1]) == len(RULE_FILES), output


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.name)
def test_rules_are_valid(promtool: Path, path: Path) -> None:
    run_promtool(promtool, "check", "rules", path)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: path.name)
def test_rule_unit_tests_pass(promtool: Path, path: Path) -> None:
    run_promtool(promtool, "test", "rules", path)


def test_the_container_loads_the_same_rule_files() -> None:
    """prometheus.yml's rule_files, read where docker-compose.yml mounts it, name the
    files of deploy/prometheus/rules/ (the ones checked here)."""
    service = load(ROOT / "docker-compose.yml")["services"]["prometheus"]
    (flag,) = [arg for arg in service["command"] if arg.startswith("--config.file=")]
    container_config = PurePosixPath(flag.partition("=")[2])
    mounts = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[PurePosixPath(target)] = (ROOT / source).resolve()
    assert mounts[container_config] == CONFIG
    loaded: set[Path] = set()
    for pattern in load(CONFIG)["rule_files"]:
        in_container = container_config.parent / pattern  # absolute patterns stay as they are
        target = next(t for t in mounts if in_container.is_relative_to(t))
        loaded |= set(mounts[target].glob(str(in_container.relative_to(target))))
    assert sorted(loaded) == RULE_FILES


def exported_names() -> set[str]:
    """Every series name a worker's /metrics can hold: the registered metrics (the log
    sink's and the notifier's included: they run in workers) and the gauges its live
    collector computes at scrape time (none of them holding a sample here: the families
    are yielded anyway)."""
    from prometheus_client import CollectorRegistry

    from slawatch.alerting.metrics import NotifierMetrics
    from slawatch.logsink.metrics import LogSinkMetrics
    from slawatch.streams.metrics import LiveCollector, Metrics

    class NoPartitions:
        def censuses(self) -> list[Any]:
            return []

        def kpi_snapshots(self) -> list[Any]:
            return []

        def queue_settings(self, queue: str | None) -> Any:
            raise AssertionError("no queue without a snapshot")

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    LogSinkMetrics(registry)
    NotifierMetrics(registry)
    live = LiveCollector(NoPartitions(), metrics.sla_labels, metrics.queue_label)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = set()
    for family in [*registry.collect(), *live.collect()]:
        names |= {family.name, *(family.name + s for s in suffixes.get(family.type, ()))}
    return names


def test_the_rules_read_only_metrics_slawatch_exports() -> None:
    exported = exported_names()
    for path in RULE_FILES:
        # slawatch_ names not after a colon: recording rules' names have one before.
        used = set(re.findall(r"(?<![\w:])slawatch_[a-z0-9_]+", path.read_text()))
        assert used <= exported, f"{path.name} reads what no worker exports: {used - exported}"


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_does_not() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert not alerts - fires, f"no test where these fire: {sorted(alerts - fires)}"
    assert not alerts - quiet, f"no test where these stay quiet: {sorted(alerts - quiet)}"
    assert not (fires | quiet) - alerts, f"tests of unknown alerts: {(fires | quiet) - alerts}"


def test_every_alert_has_a_severity_and_says_what_and_what_to_do() -> None:
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_every_recording_rule_is_well_named_and_tested() -> None:
    exprs = " ".join(
        case["expr"]
        for path in TEST_FILES
        for test in load(path)["tests"]
        for case in test.get("promql_expr_test", [])
    )
    for name in {rule["record"] for rule in rules() if "record" in rule}:
        assert RECORD_NAME.match(name), f"{name} is not level:metric:operations"
        assert re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", exprs), f"no test of {name}"
