"""The SLA log sink: ``sla-events`` into the SLA log database (slawatch.reports)."""
