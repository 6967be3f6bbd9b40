"""The worker process: the Faust app, ingest, the SLA timers, the policy follower and the
HTTP pages, started and stopped together (``slawatch worker``)."""
