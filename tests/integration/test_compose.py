"""docker-compose.yml cannot run here (no Docker engine); Debian's docker-compose still
validates it, and every file it mounts or builds from must exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid() -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: `make test` installs it (Debian package docker-compose)"
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


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
    assert {"redis", "prometheus", "grafana", "alertmanager"} <= set(services)
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(t.split(":")[0] for t in targets) == sorted(workers)


def test_dashboard_queries_only_metrics_slawatch_exports() -> None:
    from prometheus_client import CollectorRegistry

    from slawatch.streams.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    exported = set()
    for family in registry.collect():
        exported |= {family.name, *(s.name for s in family.samples)}
        if family.type == "counter":  # labelled counters have no samples until used
            exported.add(family.name + "_total")
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/slawatch-overview.json").read_text())
    rules = (ROOT / "deploy/prometheus/rules/slawatch.yml").read_text()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(re.findall(r"slawatch_[a-z_]+", " ".join(exprs) + rules))
    used = {name.removesuffix("_bucket") for name in used} - {"slawatch_ingest_batch_seconds"}
    assert used <= exported, used - exported


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
