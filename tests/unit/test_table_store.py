"""The timers' view of one partition of the ``sla-state`` table: read by the keys found
in one pass at assignment, it holds what a scan of the whole table finds."""

from __future__ import annotations

from types import SimpleNamespace

from slawatch.core.machine import next_deadline
from slawatch.core.partitioning import partition_for
from slawatch.storage.state_codec import deadline_of, encode_state
from slawatch.storage.table_store import TableStore, keys_by_partition, partition_records
from tests.unit.sla_harness import Timeline, ev

PARTITIONS = 4


def _table() -> dict[bytes, bytes]:
    opened, closed = Timeline(), Timeline()
    opened.send(ev("ticket.created", 0))
    closed.send(ev("ticket.created", 0), ev("ticket.updated", 5, changes={"status": "closed"}))
    open_data = encode_state(opened.state, next_deadline(opened.state))
    closed_data = encode_state(closed.state, next_deadline(closed.state))
    assert deadline_of(open_data) is not None and deadline_of(closed_data) is None
    return {
        f"ticket:acme:T{i}".encode(): closed_data if i % 3 == 0 else open_data for i in range(400)
    }


def test_the_keys_of_each_partition_are_found_in_one_pass() -> None:
    data = _table()
    index = keys_by_partition(data, PARTITIONS)
    assert sorted(key for keys in index.values() for key in keys) == sorted(data)
    for partition, keys in index.items():
        assert all(partition_for(key.decode(), PARTITIONS) == partition for key in keys)
    assert len(index) == PARTITIONS


def test_a_partition_read_by_its_keys_holds_what_a_scan_finds() -> None:
    data = _table()
    table = SimpleNamespace(data=data)
    index = keys_by_partition(data, PARTITIONS)
    for partition in range(PARTITIONS):
        scanned = TableStore(table, partition, PARTITIONS)
        indexed = TableStore(table, partition, PARTITIONS, index[partition])
        deadlines = sorted(indexed.deadlines())
        assert deadlines and deadlines == sorted(scanned.deadlines())
        assert len(list(indexed.states())) == len(list(scanned.states())) == len(index[partition])
        indexed.forget_keys()
        assert sorted(indexed.deadlines()) == deadlines  # a scan again


def test_a_key_gone_from_the_table_is_skipped() -> None:
    data = _table()
    index = keys_by_partition(data, PARTITIONS)
    gone = index[0][0]
    del data[gone]
    store = TableStore(SimpleNamespace(data=data), 0, PARTITIONS, index[0])
    assert gone.decode() not in dict(store.deadlines())
    assert len(list(store.states())) == len(index[0]) - 1


def test_a_rocksdb_partition_is_read_from_its_own_database(tmp_path) -> None:
    """Faust's RocksDB store keeps one database per partition: a partition's records are
    read from it alone, without Faust's offset record; the memory store (one mapping for
    every partition) has no such thing."""
    import faust

    app = faust.App("table-store-test", store="rocksdb://", datadir=str(tmp_path),
                    autodiscover=False)  # fmt: skip
    data = app.Table("sla-state", partitions=4, key_type=bytes, value_type=bytes).data
    state = next(iter(_table().values()))
    for p in range(4):
        data._db_for_partition(p).put(f"key-{p}".encode(), state)
    data._db_for_partition(1).put(data.offset_key, b"41")
    assert list(partition_records(data, 1)) == [(b"key-1", state)]
    store = TableStore(SimpleNamespace(data=data), 2, 4)
    assert [raw for raw, _ in store._records()] == [b"key-2"]
    assert partition_records({}, 1) is None


def test_the_states_held_are_counted_without_reading_the_table() -> None:
    """The count a worker reports (``slawatch_conversations``): the partition's states at
    its build, then one more for each state stored where the scheduler found none, one
    less for each removed; a state stored again is not counted twice."""
    opened = Timeline()
    opened.send(ev("ticket.created", 0))
    data: dict[bytes, bytes] = {}
    store = TableStore(SimpleNamespace(data=data), 0, PARTITIONS)
    store.count_held(2)  # as the build found them
    data[b"ticket:acme:OLD"] = encode_state(opened.state, 10)
    assert store.get("ticket:acme:OLD") is not None
    store.put("ticket:acme:OLD", opened.state, 20)  # an update
    assert store.get("ticket:acme:NEW") is None
    store.put("ticket:acme:NEW", opened.state, 30)  # a new conversation
    store.put("ticket:acme:NEW", opened.state, 40)  # and again in the same tick
    store.take_changes()
    assert store.held == 3
    store.put("ticket:acme:NEW", opened.state, 50)  # the next tick: known already
    assert store.held == 3
    store.remove("ticket:acme:OLD")  # past its retention
    assert store.held == 2 and b"ticket:acme:OLD" not in data
