"""One slawatch worker: the Faust app plus the ingest and registry services, and the
HTTP pages an orchestrator and Prometheus read."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import ConsumerRebalanceListener
from faust.tables.manager import TableManager
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from slawatch.agents.ingest import IngestService
from slawatch.agents.timers import SlaTimers
from slawatch.alerting.config import RoutingConfig
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock, SystemClock
from slawatch.core.policy import SlaPolicy
from slawatch.errors import SlawatchError
from slawatch.schemas.validation import EventValidator
from slawatch.streams.app import create_app
from slawatch.streams.compat import (
    end_offsets_from_fetch,
    faust_fetch_max_wait,
    faust_recovery_restarts_on_rebalance,
    faust_seek_before_resume,
    leave_group_at_generation_zero,
    record_heartbeats,
)
from slawatch.streams.metrics import LiveCollector, Metrics
from slawatch.streams.policy_topic import PolicyFollower, initial_policy
from slawatch.streams.registry import WorkerRegistry
from slawatch.streams.topics import ensure_topics
from slawatch.web.access import access_middleware, web_token
from slawatch.web.ingest import KafkaSink, add_ingest_routes, build_http_ingest
from slawatch.web.live import LivePublisher
from slawatch.web.reports import ReportsApi, add_report_routes
from slawatch.web.wallboard import LiveHub, add_wallboard_routes, root_to_wallboard
from slawatch.worker.log_sink import build_log_sink
from slawatch.worker.notifier import build_notifier, routing_of

log = logging.getLogger(__name__)


class _AssignmentTracker(ConsumerRebalanceListener):
    """Know whether the ingest group has settled (joined, not mid-rebalance)."""

    def __init__(self) -> None:
        self.settled = False

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.settled = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.settled = True


class WorkerRuntime:
    """Everything one worker process runs, wired together from settings."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        routing: tuple[Path, RoutingConfig] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.started_at_ms = self.clock.now_ms()
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, settings)
        self.validator = EventValidator(
            max_event_bytes=settings.max_event_bytes,
            max_future_skew_ms=int(settings.max_future_skew_s * 1000),
            clock=self.clock,
        )
        leave_group_at_generation_zero()
        faust_fetch_max_wait(settings.fetch_max_wait_ms)
        end_offsets_from_fetch()
        faust_seek_before_resume()
        faust_recovery_restarts_on_rebalance()
        record_heartbeats()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.web_token = web_token(settings)
        self.app = create_app(
            settings, middlewares=[access_middleware(self.web_token), root_to_wallboard]
        )
        self.assignment = _AssignmentTracker()
        self.ingest = IngestService(
            settings, self.metrics, self.validator, self.clock, listener=self.assignment
        )
        policy = initial_policy(settings)
        self.timers = SlaTimers(self.app, settings, policy, self.metrics, self.clock)
        self.registry.register(
            LiveCollector(self.timers, self.metrics.sla_labels, self.metrics.queue_label)
        )
        self.policy_follower = PolicyFollower(settings, policy, self._switch_policy, self.metrics)
        self.worker_registry = WorkerRegistry(settings, self.status, self.clock)
        self.notifier = build_notifier(settings, self.registry, self.clock, routing)
        self.log_sink = build_log_sink(settings, self.registry, self.clock)
        self.live_publisher = LivePublisher(settings, self.timers, self.clock)
        self.live_hub = LiveHub(settings, self.timers.queue_settings, self.clock)
        self._register_pages()
        # Faust's aiohttp driver holds the aiohttp application (its interface type does not).
        add_wallboard_routes(cast(Any, self.app.web).web_app, self.live_hub)
        self.reports = ReportsApi(settings, self.clock, lambda: self.timers.policy.credits)
        add_report_routes(cast(Any, self.app.web).web_app, self.reports)
        self.http_ingest_sink: KafkaSink | None = None
        if settings.http_ingest:
            ingest, self.http_ingest_sink = build_http_ingest(
                settings, self.registry, self.validator, self.clock
            )
            add_ingest_routes(cast(Any, self.app.web).web_app, ingest)

    # --- readiness and status -----------------------------------------------------------

    def tables_ready(self) -> bool:
        """True when Faust holds its partitions and every table is recovered."""
        tables = cast(TableManager, self.app.tables)  # the interface type omits .recovery
        if not tables:
            return True
        return bool(not self.app.rebalancing and tables.recovery.completed.is_set())

    def ready(self) -> bool:
        return (
            self.assignment.settled
            and self.tables_ready()
            and self.timers.timers_built()
            and self.policy_follower.caught_up
        )

    def _measure_recovery(self) -> None:
        """How many state changelog records the active and standby copies have to read."""
        recovery = cast(TableManager, self.app.tables).recovery
        behind = self.metrics.changelog_behind
        behind.labels("active").set(max(0, recovery.active_remaining_total()))
        behind.labels("standby").set(max(0, recovery.standby_remaining_total()))

    def _switch_policy(self, policy: SlaPolicy) -> None:
        # The timers read their policy once per batch: the next batch runs on this one.
        self.timers.policy = policy
        self.timers.reconfigure_kpis(policy)

    def status(self) -> dict[str, Any]:
        """This worker's status document (also written to Redis for ``slawatch status``)."""
        ready = self.ready()
        self.metrics.ready.set(1 if ready else 0)
        consumer = self.ingest.consumer
        assigned = sorted(
            f"{tp.topic}/{tp.partition}" for tp in (consumer.assignment() if consumer else ())
        )
        return {
            "worker_id": self.settings.worker_id,
            "app_id": self.settings.app_id,
            "ready": ready,
            "web": f"http://{self.settings.web_host}:{self.settings.web_port}",
            "started_at_ms": self.started_at_ms,
            "ingest_partitions": assigned,
            **self.policy_follower.status(),
            "counts": self.counts(),
        }

    def counts(self) -> dict[str, dict[str, float]]:
        """Running totals by input topic, event type and dead-letter reason."""
        totals: dict[str, dict[str, float]] = {
            "input_by_topic": {},
            "valid_by_type": {},
            "dead_letters_by_reason": {},
            "sla_events_by_kind": {},
        }
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name == "slawatch_input_messages_total":
                    totals["input_by_topic"][sample.labels["topic"]] = sample.value
                elif sample.name == "slawatch_valid_events_total":
                    totals["valid_by_type"][sample.labels["type"]] = sample.value
                elif sample.name == "slawatch_dead_letters_total":
                    reasons = totals["dead_letters_by_reason"]
                    reason = sample.labels["reason"]
                    reasons[reason] = reasons.get(reason, 0) + sample.value
                elif sample.name == "slawatch_sla_events_total":
                    kinds = totals["sla_events_by_kind"]
                    kind = sample.labels["kind"]
                    kinds[kind] = kinds.get(kind, 0) + sample.value
        return totals

    # --- HTTP ---------------------------------------------------------------------------

    def _register_pages(self) -> None:
        app = self.app

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "alive", "worker_id": self.settings.worker_id})

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            ready = self.ready()
            body = {
                "ready": ready,
                "ingest_group_settled": self.assignment.settled,
                "tables_recovered": self.tables_ready(),
                "timers_built": self.timers.timers_built(),
                "policy_topic_read": self.policy_follower.caught_up,
                "policy_version": self.policy_follower.current.version,
                "redis": "ok" if await self.worker_registry.reachable() else "unreachable",
            }
            if self.log_sink is not None:  # reports lag while it is down; SLAs do not
                body["log_store"] = "unreachable" if self.log_sink.store_failing else "ok"
            return web.json(body, status=200 if ready else 503)

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            self.metrics.ready.set(1 if self.ready() else 0)
            self.timers.measure_lag()
            self._measure_recovery()
            # aiohttp refuses parameters in content_type=, so the full Prometheus type
            # (with version and charset) goes in as a header.
            return web.bytes(
                generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

    # --- running ------------------------------------------------------------------------

    def build_worker(self, loop: asyncio.AbstractEventLoop) -> faust.Worker:
        services: list[Any] = [
            self.policy_follower,
            self.ingest,
            self.worker_registry,
            self.live_publisher,
            self.live_hub,
        ]
        if self.notifier is not None:
            services.append(self.notifier)
        if self.log_sink is not None:
            services.append(self.log_sink)
        if self.http_ingest_sink is not None:
            services.append(self.http_ingest_sink)
        worker = faust.Worker(
            self.app,
            *services,
            loop=loop,
            loglevel=self.settings.log_level.upper(),
            redirect_stdouts=False,
            quiet=True,
        )
        # Faust draws a terminal spinner at WARNING and above; in a log file or under a
        # supervisor it is only escape codes.
        worker.spinner = None
        return worker


def check_web_port(host: str, port: int) -> None:
    """Raise :class:`SlawatchError` naming the setting when the worker's web server could
    not listen on ``host:port`` (another worker on this host holds the port, say).

    Binds as the web server will (``SO_REUSEADDR``, every address ``host`` resolves to),
    then lets go, so the check joins nothing and costs nothing.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SlawatchError(
            f"web host {host!r}: {exc.strerror}; set SLAWATCH_WEB_HOST to a local address"
        ) from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise SlawatchError(
                        f"cannot serve HTTP on {host}:{port}: {exc.strerror}; "
                        "set SLAWATCH_WEB_HOST to an address of this host"
                    ) from None
                busy = "in use (another worker on this host?)"
                raise SlawatchError(
                    f"cannot serve HTTP on {host}:{port}: "
                    f"{busy if exc.errno == errno.EADDRINUSE else exc.strerror}; "
                    "set SLAWATCH_WEB_PORT to a free port"
                ) from None


def run_worker(settings: Settings) -> None:
    """Check the web port, create the topics if needed, then run a worker until SIGINT or
    SIGTERM. The checks come first, so a worker that cannot run never joins a group."""
    check_web_port(settings.web_host, settings.web_port)
    web_token(settings)  # no credential beyond loopback: refuse before joining anything
    routing = routing_of(settings) if settings.notifier_in_worker else None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    created = loop.run_until_complete(ensure_topics(settings))
    if created:
        log.info("created topics %s", ", ".join(created))
    runtime = WorkerRuntime(settings, routing=routing)
    if runtime.notifier is not None:
        log.info("notifier in this worker: %s", runtime.notifier.routing.summary())
    runtime.build_worker(loop).execute_from_commandline()
