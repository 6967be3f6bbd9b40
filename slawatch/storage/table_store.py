"""One partition of the ``sla-state`` table seen as the scheduler's state store.

The table maps conversation keys (bytes) to encoded states (:mod:`state_codec`): the next
deadline in a fixed prefix, then the state. Reads and writes go through the table, so a
write inside the agent lands in the changelog partition of the message being processed;
:meth:`TableStore.deadlines` reads the local store directly (no changelog) and is used
only to rebuild the timer queue after an assignment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from slawatch.core.partitioning import partition_for
from slawatch.core.state import ConversationState
from slawatch.storage.state_codec import deadline_of, decode_state, encode_state


class Table(Protocol):
    """What the store needs of a Faust table: reads, writes, and its local data."""

    def get(self, key: bytes) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes) -> None: ...

    @property
    def data(self) -> Mapping[bytes, bytes]: ...


class TableStore:
    """The states of normalised partition ``partition`` (of ``partitions``) in ``table``."""

    __slots__ = ("partition", "partitions", "table")

    def __init__(self, table: Table, partition: int, partitions: int) -> None:
        self.table = table
        self.partition = partition
        self.partitions = partitions

    def get(self, key: str) -> tuple[ConversationState, int | None] | None:
        data = self.table.get(key.encode())
        if data is None:
            return None
        return decode_state(data), deadline_of(data)

    def deadline(self, key: str) -> int | None:
        data = self.table.get(key.encode())
        return None if data is None else deadline_of(data)

    def put(self, key: str, state: ConversationState, deadline_ms: int | None) -> None:
        self.table[key.encode()] = encode_state(state, deadline_ms)

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
