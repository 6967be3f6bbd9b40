"""Writing folded cycles into the SLA log store: what the sink does per batch and what
``slawatch replay --out-db`` does per chunk. Each cycle is folded with the row the store
already holds for it (:meth:`~slawatch.schemas.cycle_log.CycleRecord.merge`), so writing
the same events twice, or a backfill over rows the sink wrote, changes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from slawatch.reports.store import LogStore
from slawatch.schemas.cycle_log import CycleRecord

#: Cycles per transaction of a backfill.
CHUNK = 5000


def write_cycles(store: LogStore, cycles: Sequence[CycleRecord], now_ms: int) -> int:
    """Fold ``cycles`` (distinct keys) into what ``store`` holds and write them in one
    transaction; return the number of rows written."""
    stored = store.load([cycle.key for cycle in cycles])
    rows = []
    for cycle in cycles:
        held = stored.get(cycle.key)
        if held is not None:
            cycle.merge(CycleRecord.from_row(held))
        row = cycle.row()
        row["updated_ms"] = now_ms
        rows.append(row)
    store.upsert(rows)
    return len(rows)


def write_rows(store: LogStore, rows: Iterable[dict[str, Any]], now_ms: int) -> int:
    """Write log rows (``CycleLog.rows()``, what ``replay`` returns) in chunks of
    :data:`CHUNK`; return the number written."""
    written = 0
    for chunk in _chunks(rows):
        written += write_cycles(store, [CycleRecord.from_row(row) for row in chunk], now_ms)
    return written


def _chunks(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
