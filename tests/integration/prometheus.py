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
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from slawatch.dev.embedded import free_port
from slawatch.dev.processes import die_with_parent

#: The scrape job's name: the one of deploy/prometheus/prometheus.yml (alerts and
#: dashboards read ``up{job="slawatch"}``).
JOB = "slawatch"


class PrometheusMissing(RuntimeError):
    """No Prometheus binary: install prometheus (make system-packages)."""


class PrometheusFailed(RuntimeError):
    """Prometheus exited or did not become ready; the message holds its log's tail."""


class QueryFailed(RuntimeError):
    """The HTTP API answered a query with an error (bad PromQL, timeout)."""


def prometheus_binary() -> Path:
    """``$SLAWATCH_PROMETHEUS``, or ``prometheus`` on ``PATH``; :class:`PrometheusMissing`
    if none."""
    override = os.environ.get("SLAWATCH_PROMETHEUS")
    candidates = [override] if override else []
    candidates += [found] if (found := shutil.which("prometheus")) else []
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise PrometheusMissing(
        "no Prometheus binary (prometheus on PATH, or $SLAWATCH_PROMETHEUS):"
        " run `make system-packages` or apt-get install prometheus"
    )


class Prometheus:
    """One Prometheus process: :meth:`start` returns once ``GET /-/ready`` answers 200;
    :meth:`stop` sends SIGTERM, then SIGKILL after ``timeout_s``. A context manager."""

    def __init__(
        self,
        run_dir: Path,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        *,
        interval: str = "1s",
        binary: Path | None = None,
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.targets = list(targets)
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.interval = interval
        self.binary = binary or prometheus_binary()
        self.config_path = self.run_dir / "prometheus.yml"
        self.storage_path = self.run_dir / "prometheus-data"
        self.log_path = self.run_dir / "prometheus.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def start(self, timeout_s: float = 30.0, attempts: int = 3) -> None:
        """Start on a free port (another one if the port was taken meanwhile)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.storage_path.mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.run_dir,
                    start_new_session=True,
                    preexec_fn=die_with_parent(),
                )
            try:
                self._wait_ready(timeout_s)
                return
            except PrometheusFailed as error:
                self.stop()
                if "address already in use" not in str(error) or attempt == attempts:
                    raise

    def _wait_ready(self, timeout_s: float) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PrometheusFailed(
                    f"prometheus exited with {process.returncode} at start: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:  # 503 while it replays its WAL
                error.close()
            except OSError:  # not listening yet
                pass
            time.sleep(0.05)
        raise PrometheusFailed(
            f"prometheus not ready on {self.url} within {timeout_s} s: {self.log_tail()}"
        )

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

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
