"""docker-compose.yml cannot run here (no Docker engine); Debian's docker-compose still
validates it, and every file it mounts or builds from must exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: `make test` installs it (Debian package docker-compose)"
    environment = {k: v for k, v in os.environ.items() if k != "SLAWATCH_WEB_AUTH_TOKEN"}
    return subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**environment, **env},
    )  # fmt: skip


def test_compose_file_is_valid() -> None:
    result = compose_config(SLAWATCH_WEB_AUTH_TOKEN="wall-token")
    assert result.returncode == 0, result.stderr


def test_the_stack_will_not_start_without_the_wallboard_credential() -> None:
    """Its workers bind beyond loopback: without a token they would refuse to start."""
    result = compose_config()
    assert result.returncode != 0
    assert "SLAWATCH_WEB_AUTH_TOKEN" in result.stderr


def test_every_mounted_and_built_file_exists() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        if service.get("build"):
            assert (ROOT / service["build"] / "Dockerfile").is_file()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY (.+) \S+$", line)
        if match:
            for source in match.group(1).split():
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_the_stack_has_what_the_product_needs() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    workers = [s for s in services if s.startswith("slawatch-worker")]
    assert len(workers) == 2
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["simulator"]["profiles"] == ["simulator"]
    assert {"redis", "prometheus", "grafana", "alertmanager", "postgres"} <= set(services)
    # the workers' log sinks share one SLA log database (a SQLite file each would split it)
    urls = {services[w]["environment"]["SLAWATCH_LOG_STORE_URL"] for w in workers}
    assert len(urls) == 1 and urls.pop().startswith("postgresql://")
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(t.split(":")[0] for t in targets) == sorted(workers)


def dashboard_panels(panels: list[dict]) -> list[dict]:
    """The panels of a dashboard, those nested in (collapsed) rows included."""
    found = []
    for panel in panels:
        found += dashboard_panels(panel.get("panels", [])) if panel["type"] == "row" else [panel]
    return found


def test_dashboard_queries_only_metrics_slawatch_exports() -> None:
    """Every slawatch name a dashboard's query or variable reads is a series a worker
    exports (its registered metrics and the gauges its live collector computes at scrape
    time) or a recording rule of deploy/prometheus/rules/ (a name with colons).
    test_prometheus_rules.py checks the rules themselves the same way."""
    from tests.integration.test_prometheus_rules import exported_names, rules

    exported = exported_names()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    dashboards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        exprs = [t["expr"] for p in dashboard_panels(dashboard["panels"]) for t in p["targets"]]
        exprs += [v.get("definition", "") for v in dashboard.get("templating", {}).get("list", [])]
        used = {
            name
            for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", " ".join(exprs))
            if "slawatch_" in name
        }
        rules_read = {name for name in used if ":" in name}
        assert rules_read <= recorded, f"{path.name}: no recording rule {rules_read - recorded}"
        unknown = used - rules_read - exported
        assert not unknown, f"{path.name} reads what no worker exports: {unknown}"


def test_the_workers_route_sla_alerts_to_the_stacks_alertmanager() -> None:
    from slawatch.alerting.config import load_routing

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    routing_path = "/etc/slawatch/routing.yaml"
    for name, service in compose["services"].items():
        if name.startswith("slawatch-worker"):
            assert service["environment"]["SLAWATCH_ALERT_ROUTING_FILE"] == routing_path
            assert f"./deploy/slawatch/routing.yaml:{routing_path}:ro" in service["volumes"]
    routing = load_routing(ROOT / "deploy/slawatch/routing.yaml", env={})
    (receiver,) = routing.receivers.values()
    assert (receiver.type, receiver.fields["url"]) == ("alertmanager", "http://alertmanager:9093")


def test_alertmanager_config_is_valid() -> None:
    tool = shutil.which("amtool")
    assert tool, "amtool missing: `make test` installs it (Debian package prometheus-alertmanager)"
    result = subprocess.run(
        [tool, "check-config", str(ROOT / "deploy/alertmanager/alertmanager.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
