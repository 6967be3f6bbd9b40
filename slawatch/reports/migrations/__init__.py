"""Alembic's scripts for the SLA log schema; run them with :mod:`slawatch.reports.migrate`."""
