"""The Faust application factory. Nothing here runs at import time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from slawatch.config.kafka_security import faust_credentials
from slawatch.config.settings import Settings


def create_app(settings: Settings, middlewares: Sequence[Any] = ()) -> faust.App:
    """Build the Faust app for ``settings``; ``middlewares`` wrap every request of its web
    server (the worker's access rule).

    Faust's ``/router`` and ``/table`` pages are off: they would serve any conversation's
    stored state to whoever reaches the port.

    Faust's recovery consistency check (a table's stored changelog offset beyond the
    changelog's end means the topic was recreated under an on-disk store) stays on for
    ``rocksdb://`` and is off for ``memory://``, whose state cannot outlive its topics: on
    the embedded broker, whose end offsets stop at the last record batch's first record,
    the check failed a worker that took back a partition it had written in batches
    (docs/OPERATIONS.md, Known workarounds).

    The consumer-group timeouts matter on the embedded broker, which holds a join for half
    the session timeout: with Faust's defaults a join took 30 s there, with the 3 s session
    of slawatch's defaults it takes 2 s (docs/OPERATIONS.md, Known workarounds).
    """
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir / settings.app_id),
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        recovery_consistency_check=settings.store != "memory://",
        web_router_enabled=False,
        web_tables_enabled=False,
        web_application_options={"middlewares": list(middlewares)},
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        table_standby_replicas=settings.table_standby_replicas,
        producer_acks=-1,
    )
