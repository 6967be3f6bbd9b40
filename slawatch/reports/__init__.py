"""The SLA log in a database: one row per SLA cycle, and the managers' reports on it.

:class:`LogStore` keeps the ``sla_cycles`` table in PostgreSQL or SQLite (schema
migrations included); :class:`LogFilter` picks the cycles a report reads; the compliance
report gives :class:`ComplianceRow` rows, the SLA log :class:`LogPage` pages.
"""

from slawatch.reports.compliance import GROUP_COLUMNS, ComplianceRow
from slawatch.reports.errors import BadCursor, InvalidQuery, LogStoreError
from slawatch.reports.filters import LogFilter
from slawatch.reports.log_page import LogPage
from slawatch.reports.store import LogStore
from slawatch.reports.table import (
    COLUMNS,
    FINAL_STATUSES,
    INDEXED_SORT_KEYS,
    KEY_COLUMNS,
    REPORT_COLUMNS,
    SORT_COLUMNS,
    STATUSES,
)

__all__ = [
    "COLUMNS",
    "FINAL_STATUSES",
    "GROUP_COLUMNS",
    "INDEXED_SORT_KEYS",
    "KEY_COLUMNS",
    "REPORT_COLUMNS",
    "SORT_COLUMNS",
    "STATUSES",
    "BadCursor",
    "ComplianceRow",
    "InvalidQuery",
    "LogFilter",
    "LogPage",
    "LogStore",
    "LogStoreError",
]
