"""One partition of the ``sla-state`` table seen as the scheduler's state store.

The table maps conversation keys (bytes) to encoded states (:mod:`state_codec`): the next
deadline in a fixed prefix, then the state. The store reads and writes the table's local
data (``Table.data``: the memory or RocksDB store) directly, and keeps the records it
wrote since the last :meth:`TableStore.take_changes`: the agent sends them to the table's
changelog as one batch per tick (``agents/timers.py``), instead of Faust's one buffered
coroutine per ``table[key] = value`` (docs/ARCHITECTURE.md, "Stored state").

Reads and writes must happen while the agent processes a message of this partition: the
RocksDB store picks its database by the current event's partition.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Protocol

from slawatch.core.partitioning import partition_for
from slawatch.core.state import ConversationState
from slawatch.storage.state_codec import deadline_of, decode_state, encode_state


class Table(Protocol):
    """What the store needs of a Faust table: its local data."""

    @property
    def data(self) -> MutableMapping[bytes, bytes]: ...


class TableStore:
    """The states of normalised partition ``partition`` (of ``partitions``) in ``table``."""

    __slots__ = ("changes", "partition", "partitions", "table")

    def __init__(self, table: Table, partition: int, partitions: int) -> None:
        self.table = table
        self.partition = partition
        self.partitions = partitions
        #: The records written since the last :meth:`take_changes`, for the changelog.
        self.changes: list[tuple[bytes, bytes]] = []

    def get(self, key: str) -> tuple[ConversationState, int | None] | None:
        data = self.table.data.get(key.encode())
        if data is None:
            return None
        return decode_state(data), deadline_of(data)

    def deadline(self, key: str) -> int | None:
        data = self.table.data.get(key.encode())
        return None if data is None else deadline_of(data)

    def put(self, key: str, state: ConversationState, deadline_ms: int | None) -> None:
        raw_key, value = key.encode(), encode_state(state, deadline_ms)
        self.table.data[raw_key] = value
        self.changes.append((raw_key, value))

    def take_changes(self) -> list[tuple[bytes, bytes]]:
        """The records written since the last call, in order: what the changelog lacks."""
        changes, self.changes = self.changes, []
        return changes

    def states(self) -> Iterator[ConversationState]:
        """One pass over the local store: every state of this partition, decoded."""
        partition, partitions = self.partition, self.partitions
        for raw_key, data in self.table.data.items():
            if partition_for(raw_key.decode(), partitions) == partition:
                yield decode_state(data)

    def deadlines(self) -> Iterator[tuple[str, int]]:
        """One pass over the local store: the deadlines of this partition's states."""
        partition, partitions = self.partition, self.partitions
        for raw_key, data in self.table.data.items():
            deadline = deadline_of(data)
            if deadline is not None:
                key = raw_key.decode()
                if partition_for(key, partitions) == partition:
                    yield key, deadline
