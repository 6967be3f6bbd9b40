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


SASL_SSL = ROOT / "deploy/compose.sasl-ssl.yml"


def compose_config(
    *overrides: Path, quiet: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: `make test` installs it (Debian package docker-compose)"
    environment = {k: v for k, v in os.environ.items() if k != "SLAWATCH_WEB_AUTH_TOKEN"}
    files = [arg for path in (ROOT / "docker-compose.yml", *overrides) for arg in ("-f", str(path))]
    return subprocess.run(
        [tool, *files, "config", *(["--quiet"] if quiet else [])],
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


def test_the_sasl_ssl_variant_is_valid_and_secures_every_kafka_client() -> None:
    """deploy/compose.sasl-ssl.yml over the stack: every service that talks to Kafka
    (workers, simulator) reaches the SASL_SSL listener with the same settings, its
    password from a file, and every SLAWATCH_ variable is a setting slawatch knows."""
    from slawatch.config.settings import ENV_PREFIX, Settings

    result = compose_config(SASL_SSL, quiet=False, SLAWATCH_WEB_AUTH_TOKEN="wall-token")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    known = {ENV_PREFIX + name.upper() for name in Settings.__dataclass_fields__}
    clients = {}
    for name, service in services.items():
        env = service.get("environment") or {}
        assert {k for k in env if k.startswith(ENV_PREFIX)} <= known, name
        if "SLAWATCH_BROKER_URL" in env:
            clients[name] = {k: v for k, v in env.items() if "KAFKA" in k or "BROKER_URL" in k}
            assert service["depends_on"]["kafka-users"] == {
                "condition": "service_completed_successfully"
            }
    assert set(clients) == {"slawatch-worker-1", "slawatch-worker-2", "simulator"}
    (security,) = {tuple(sorted(env.items())) for env in clients.values()}
    assert dict(security) == {
        "SLAWATCH_BROKER_URL": "kafka://kafka:9094",
        "SLAWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SLAWATCH_KAFKA_SSL_CA_FILE": "/etc/slawatch/kafka-tls/ca.pem",
        "SLAWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "SLAWATCH_KAFKA_SASL_USERNAME": "slawatch",
        "SLAWATCH_KAFKA_SASL_PASSWORD_FILE": "/run/secrets/kafka_sasl_password",
    }
    kafka = services["kafka"]["environment"]
    assert "SASL_SSL://kafka:9094" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"


def test_the_dev_certificates_script_makes_what_the_sasl_ssl_variant_mounts(
    tmp_path: Path,
) -> None:
    """deploy/kafka-tls/make-dev-certs.sh into a folder of its own: every file the
    variant mounts or names is there, the broker's keystore opens with its password file
    and holds a certificate for `kafka` signed by the CA the workers trust, which
    slawatch's settings accept."""
    from slawatch.config.settings import load_settings

    subprocess.run(
        ["bash", str(ROOT / "deploy/kafka-tls/make-dev-certs.sh"), str(tmp_path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    variant = yaml.safe_load(SASL_SSL.read_text())
    folder = "./deploy/kafka-tls/"
    mounted = {
        volume.split(":")[0]
        for service in variant["services"].values()
        for volume in service.get("volumes", [])
    } | {secret["file"] for secret in variant["secrets"].values()}
    assert mounted and all(source.startswith(folder) for source in mounted)
    for source in mounted:
        assert (tmp_path / source.removeprefix(folder)).exists(), source
    kafka = variant["services"]["kafka"]["environment"]
    broker = tmp_path / "broker"
    for name in ("KAFKA_SSL_KEYSTORE_FILENAME", "KAFKA_SSL_KEYSTORE_CREDENTIALS"):
        assert (broker / kafka[name]).is_file(), name
    assert (broker / kafka["KAFKA_OPTS"].rpartition("/")[2]).is_file()
    certificate = subprocess.run(
        ["openssl", "pkcs12", "-in", str(broker / "kafka.p12"), "-clcerts", "-nokeys",
         "-passin", f"file:{broker / 'keystore-password'}"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    (tmp_path / "kafka.pem").write_text(certificate)
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "client/ca.pem"),
         "-verify_hostname", "kafka", str(tmp_path / "kafka.pem")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    settings = load_settings(
        None,
        environ={},
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_ca_file=str(tmp_path / "client/ca.pem"),
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="slawatch",
        kafka_sasl_password_file=str(tmp_path / "sasl-password"),
    )
    assert settings.kafka_security_protocol == "SASL_SSL"
