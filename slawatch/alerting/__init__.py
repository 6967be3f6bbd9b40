"""On-call alerting: the routing file (``config``, ``receivers``, ``routes``), the pure
escalation planner (``escalation``), what each channel sends (``channels/``), one attempt
to send it (``senders/``), and the notifier that reads ``sla-events`` and delivers each
notification once (``notifier``, over the Redis keys of ``store``)."""
