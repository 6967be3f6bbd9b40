"""The Faust application factory. Nothing here runs at import time."""

from __future__ import annotations

import faust

from slawatch.config.settings import Settings


def create_app(settings: Settings) -> faust.App:
    """Build the Faust app for ``settings``.

    The consumer-group timeouts matter on the embedded broker, which holds a join for half
    the session timeout: with Faust's defaults a join took 30 s there, with the 3 s session
    of slawatch's defaults it takes 2 s (docs/OPERATIONS.md, Known workarounds).
    """
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
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
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        producer_acks=-1,
    )
