"""Connectors: programs that read another system's records and produce slawatch's input
events (``slawatch connect ...``). Parsing and mapping are pure modules; the runner does
the I/O."""
