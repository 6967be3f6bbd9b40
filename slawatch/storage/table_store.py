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

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Protocol, cast

from slawatch.core.partitioning import partition_for
from slawatch.core.state import ConversationState
from slawatch.storage.state_codec import deadline_of, decode_state, encode_state


class Table(Protocol):
    """What the store needs of a Faust table: its local data."""

    @property
    def data(self) -> MutableMapping[bytes, bytes]: ...


def partition_records(data: object, partition: int) -> Iterator[tuple[bytes, bytes]] | None:
    """The records of ``partition`` read from its own database, for a store that keeps one
    per partition (Faust's RocksDB store; its offset record left out); None for a store
    that holds every partition in one mapping (the memory store)."""
    database_of = getattr(data, "_db_for_partition", None)
    visible_items = getattr(data, "_visible_items", None)
    if database_of is None or visible_items is None:
        return None
    return cast(Iterator[tuple[bytes, bytes]], visible_items(database_of(partition)))


def keys_by_partition(data: Iterable[bytes], partitions: int) -> dict[int, list[bytes]]:
    """The keys of a table's local data by normalised partition, in one pass.

    The local data holds every partition the worker was given (one dict for the memory
    store; for RocksDB, one database per partition, iterated together): without this, each
    partition's rebuild went over every key of every partition, a CRC each.
    """
    index: dict[int, list[bytes]] = {}
    for raw_key in data:
        index.setdefault(partition_for(raw_key.decode(), partitions), []).append(raw_key)
    return index


class TableStore:
    """The states of normalised partition ``partition`` (of ``partitions``) in ``table``.

    ``keys``, when given, are the partition's keys as the table held them when the
    partition was assigned (:func:`keys_by_partition`): :meth:`states` and
    :meth:`deadlines` read those instead of scanning the table. Only this partition's
    messages add keys of this partition, so they are all of them until its first tick;
    :meth:`forget_keys` drops them once the partition's timers are built.
    """

    __slots__ = ("_absent", "changes", "held", "keys", "partition", "partitions", "table")

    def __init__(
        self, table: Table, partition: int, partitions: int, keys: list[bytes] | None = None
    ) -> None:
        self.table = table
        self.partition = partition
        self.partitions = partitions
        self.keys = keys
        #: The records written since the last :meth:`take_changes`, for the changelog (a
        #: value of None: a tombstone, the key removed).
        self.changes: list[tuple[bytes, bytes | None]] = []
        #: The states this partition holds: counted at its build (:meth:`count_held`),
        #: then kept up to date by :meth:`put` and :meth:`remove`. (``len`` of Faust's
        #: RocksDB store reads every key of every partition: it was called on every tick.)
        self.held = 0
        #: Keys :meth:`get` found no state for since the last :meth:`take_changes`: a put
        #: of one of them adds a state.
        self._absent: set[str] = set()

    def get(self, key: str) -> tuple[ConversationState, int | None] | None:
        data = self.table.data.get(key.encode())
        if data is None:
            self._absent.add(key)
            return None
        return decode_state(data), deadline_of(data)

    def deadline(self, key: str) -> int | None:
        data = self.table.data.get(key.encode())
        return None if data is None else deadline_of(data)

    def put(self, key: str, state: ConversationState, deadline_ms: int | None) -> None:
        raw_key, value = key.encode(), encode_state(state, deadline_ms)
        self.table.data[raw_key] = value
        self.changes.append((raw_key, value))
        if key in self._absent:
            self._absent.discard(key)
            self.held += 1

    def remove(self, key: str) -> None:
        """Forget ``key``'s state; the scheduler removes only states it holds."""
        raw_key = key.encode()
        self.table.data.pop(raw_key, None)
        self.changes.append((raw_key, None))
        self.held -= 1

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """The records written since the last call, in order: what the changelog lacks."""
        changes, self.changes = self.changes, []
        self._absent.clear()
        return changes

    def forget_keys(self) -> None:
        """Drop the keys given at assignment (a list as long as the partition's states)."""
        self.keys = None

    def count_held(self, states: int) -> None:
        """The partition holds ``states`` states (counted as its timers were built)."""
        self.held = states

    def states(self) -> Iterator[ConversationState]:
        """Every state of this partition, decoded."""
        for _, data in self._records():
            yield decode_state(data)

    def deadlines(self) -> Iterator[tuple[str, int]]:
        """The deadlines of this partition's states."""
        for raw_key, data in self._records():
            deadline = deadline_of(data)
            if deadline is not None:
                yield raw_key.decode(), deadline

    def _records(self) -> Iterator[tuple[bytes, bytes]]:
        """This partition's records: by its keys when known, else its own database for a
        store that keeps one per partition (RocksDB), else one pass over the local store."""
        data: Mapping[bytes, bytes] = self.table.data
        if self.keys is not None:
            for raw_key in self.keys:
                value = data.get(raw_key)
                if value is not None:
                    yield raw_key, value
            return
        own = partition_records(data, self.partition)
        if own is not None:
            yield from own
            return
        partition, partitions = self.partition, self.partitions
        for raw_key, value in data.items():
            if partition_for(raw_key.decode(), partitions) == partition:
                yield raw_key, value
