"""A real Prometheus server for the tests: Debian's ``prometheus`` package
(``scripts/require-system-packages`` installs it) on a free loopback port.

It scrapes the given targets every second (job ``slawatch``, as in
deploy/prometheus/prometheus.yml), evaluates the given rule files every second, keeps its
TSDB in a temporary folder and sends no alerts anywhere. The process dies with the test
session (:func:`slawatch.dev.processes.die_with_parent`): start it from the main thread.

A missing binary raises :class:`PrometheusMissing`: a failure, never a skip.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.integration.debian_server import DebianServer, ServerFailed, find_binary

#: The scrape job's name: the one of deploy/prometheus/prometheus.yml (alerts and
#: dashboards read ``up{job="slawatch"}``).
JOB = "slawatch"


class PrometheusMissing(RuntimeError):
    """No Prometheus binary: install prometheus (make system-packages)."""


class PrometheusFailed(ServerFailed):
    """Prometheus exited or did not become ready; the message holds its log's tail."""


class QueryFailed(RuntimeError):
    """The HTTP API answered a query with an error (bad PromQL, timeout)."""


def prometheus_binary() -> Path:
    """``$SLAWATCH_PROMETHEUS``, or ``prometheus`` on ``PATH``; :class:`PrometheusMissing`
    if none."""
    return find_binary("SLAWATCH_PROMETHEUS", ("prometheus",), "prometheus", PrometheusMissing)


class Prometheus(DebianServer):
    """One Prometheus process: :meth:`start` returns once ``GET /-/ready`` answers 200;
    :meth:`stop` sends SIGTERM, then SIGKILL after ``timeout_s``. A context manager."""

    name = "prometheus"
    failed = PrometheusFailed
    start_timeout_s = 30.0

    def __init__(
        self,
        run_dir: Path,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        *,
        interval: str = "1s",
        binary: Path | None = None,
    ) -> None:
        super().__init__(run_dir, binary or prometheus_binary())
        self.targets = list(targets)
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.interval = interval
        self.config_path = self.run_dir / "prometheus.yml"
        self.storage_path = self.run_dir / "prometheus-data"

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.interval,
                "scrape_timeout": self.interval,  # the default 10s is over the interval
                "evaluation_interval": self.interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": self.targets}]},
            ],
        }

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=info",
        ]

    def write_config(self) -> None:
        self.storage_path.mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def query(self, expr: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The result of an instant query now (``GET /api/v1/query``): a list of
        ``{"metric": {...}, "value": [t, "v"]}`` for a vector, one item for a scalar.
        :class:`QueryFailed` with Prometheus's error message if it refuses the query."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:  # 400 bad query, 422 execution error
            with error:
                try:
                    body = json.load(error)
                except ValueError:
                    raise QueryFailed(f"HTTP {error.code}") from None
        if body.get("status") != "success":
            raise QueryFailed(f"{body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets_health(self) -> dict[str, str]:
        """Each active target's scrape URL and health (up, down, unknown), with the last
        scrape's error if any."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
            body = json.load(response)
        return {
            t["scrapeUrl"]: t["health"] + (f" ({t['lastError']})" if t.get("lastError") else "")
            for t in body["data"]["activeTargets"]
        }
