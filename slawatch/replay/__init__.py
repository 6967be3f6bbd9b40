"""``slawatch replay``: the SLA engine run offline over a file of events."""
