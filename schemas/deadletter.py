"""The dead-letter record: what slawatch writes for every input message it refuses."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from slawatch.schemas.fields import Choice, Flag, Integer, Text, spec_field
from slawatch.schemas.reasons import RejectReason

DEAD_LETTER_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One refused input message, with everything needed to find, fix and replay it.

    The original bytes travel base64-encoded, so a fixed copy can be produced again from
    this record alone (above 256 KiB only the start is carried, and the record says so).
    """

    DESCRIPTION = "An input message slawatch refused, with the reason and the original bytes."

    schema_version: int = spec_field(Integer(1, 1), "Version of this record.")
    reason: str = spec_field(Choice(*(r.value for r in RejectReason)), "Reason code.")
    detail: str = spec_field(Text(4096), "What exactly was wrong, naming the field.")
    source_topic: str = spec_field(Text(249), "Topic the message was read from.")
    source_partition: int = spec_field(Integer(0, 1_000_000), "Its partition.")
    source_offset: int = spec_field(Integer(0, 2**63 - 1), "Its offset.")
    source_timestamp_ms: int | None = spec_field(
        Integer(0, 2**63 - 1), "Kafka timestamp of the message.", default=None
    )
    event_type: str | None = spec_field(
        Text(64), "The event's type, when it could be read.", default=None
    )
    event_id: str | None = spec_field(
        Text(128), "The event's id, when it could be read.", default=None
    )
    original_b64: str = spec_field(Text(2**24, min_length=0), "The original message value, base64.")
    original_bytes: int = spec_field(Integer(0, 2**31), "Size of the original value in bytes.")
    original_truncated: bool = spec_field(
        Flag(),
        "True when the original was larger than 256 KiB and only its start is carried; the "
        "whole message stays at source_topic/source_partition/source_offset.",
        default=False,
    )
    original_key_b64: str | None = spec_field(
        Text(2**16), "The original message key, base64.", default=None
    )
    dead_lettered_at_ms: int = spec_field(
        Integer(0, 2**63 - 1), "When slawatch refused it (epoch ms)."
    )
    worker: str = spec_field(Text(256), "The worker that refused it.")

    def encode(self) -> bytes:
        return orjson.dumps(self)

    def original(self) -> bytes:
        """Return the original message bytes."""
        return base64.b64decode(self.original_b64)

    @classmethod
    def decode(cls, raw: bytes) -> DeadLetter:
        return cls(**orjson.loads(raw))


def b64(data: bytes | None) -> str | None:
    """Base64 of ``data`` as text, None for None."""
    return None if data is None else base64.b64encode(data).decode("ascii")
