"""Which partition a conversation belongs to: one function for the stream and replay."""

from __future__ import annotations

import zlib


def partition_for(key: str, partitions: int) -> int:
    """The partition of conversation ``key`` among ``partitions`` (CRC-32, modulo).

    Ingest routes each event to the normalised partition this gives, the timers rebuild a
    partition's queue from the states it gives, and ``replay --jobs`` shards conversations
    with it. The normalised stream is internal: only slawatch writes and reads it, so it
    need not match Kafka's murmur2 partitioner, which in pure Python cost 4 % of a
    worker's time; zlib's CRC-32 is C.
    """
    return zlib.crc32(key.encode()) % partitions
