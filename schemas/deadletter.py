"""The dead-letter record: what slawatch writes for every input message it refuses.

A dead letter is bounded whatever the input, so that it always fits the producer's request
size and its own schema: the original value is cut after 256 KiB, the original key after
48 KiB (each record says when it was cut), ``detail`` after 4,096 characters, and an
``event_id`` or ``event_type`` the schema would refuse (empty, too long) is left out.
:func:`dead_letter` builds every record that way.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Annotated

import orjson
from msgspec import Meta

from slawatch.schemas.contract import choice, doc, integer, text
from slawatch.schemas.reasons import RejectReason

DEAD_LETTER_VERSION = 1

#: Most original value bytes a dead letter carries (base64 makes them a third larger).
MAX_ORIGINAL_BYTES = 256 * 1024
#: Most original key bytes a dead letter carries (their base64 fills the schema's 64 Ki
#: characters); the dead letter's own Kafka key is cut the same way.
MAX_KEY_BYTES = 48 * 1024
#: Longest ``detail``; a longer one is cut and ends with "…".
MAX_DETAIL_CHARS = 4096
#: The most a dead letter weighs, its Kafka key included, whatever the input
#: (tests/unit/test_ingest_route.py builds the worst case): half the producer's 1 MiB.
MAX_DEAD_LETTER_BYTES = 512 * 1024


def _b64_chars(size: int) -> int:
    """Length of the base64 text of ``size`` bytes."""
    return 4 * -(-size // 3)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One refused input message, with everything needed to find, fix and replay it.

    The original bytes travel base64-encoded, so a fixed copy can be produced again from
    this record alone (above 256 KiB of value or 48 KiB of key only the start is carried,
    and the record says so).
    """

    DESCRIPTION = "An input message slawatch refused, with the reason and the original bytes."

    schema_version: Annotated[int, integer(1, 1, "Version of this record.")]
    reason: Annotated[str, choice((r.value for r in RejectReason), "Reason code.")]
    detail: Annotated[
        str,
        text(
            MAX_DETAIL_CHARS,
            "What exactly was wrong, naming the field (a longer text is cut and ends with …).",
        ),
    ]
    source_topic: Annotated[str, text(249, "Topic the message was read from.")]
    source_partition: Annotated[int, integer(0, 1_000_000, "Its partition.")]
    source_offset: Annotated[int, integer(0, 2**63 - 1, "Its offset.")]
    source_timestamp_ms: Annotated[
        Annotated[int, integer(0, 2**63 - 1)] | None, doc("Kafka timestamp of the message.")
    ] = None
    event_type: Annotated[
        Annotated[str, text(64)] | None, doc("The event's type, when it could be read.")
    ] = None
    event_id: Annotated[
        Annotated[str, text(128)] | None, doc("The event's id, when it could be read.")
    ] = None
    original_b64: Annotated[
        str,
        Meta(
            max_length=_b64_chars(MAX_ORIGINAL_BYTES),
            description="The original message value, base64; above 256 KiB only its start.",
        ),
    ]
    original_bytes: Annotated[int, integer(0, 2**31, "Size of the original value in bytes.")]
    original_truncated: Annotated[
        bool,
        doc(
            "True when only the start of the original is carried (it was larger than 256 KiB, "
            "or the broker refused the whole record); the whole message stays at "
            "source_topic/source_partition/source_offset."
        ),
    ] = False
    original_key_b64: Annotated[
        Annotated[str, Meta(max_length=_b64_chars(MAX_KEY_BYTES))] | None,
        doc(
            "The original message key, base64 (empty for an empty key, null for none); above "
            "48 KiB only its start."
        ),
    ] = None
    original_key_bytes: Annotated[
        Annotated[int, integer(0, 2**31)] | None,
        doc("Size of the original key in bytes (null: no key)."),
    ] = None
    original_key_truncated: Annotated[
        bool,
        doc(
            "True when only the start of the original key is carried (it was larger than "
            "48 KiB, or the broker refused the whole record), here and as this record's Kafka "
            "key."
        ),
    ] = False
    dead_lettered_at_ms: Annotated[
        int, integer(0, 2**63 - 1, "When slawatch refused it (epoch ms).")
    ]
    worker: Annotated[str, text(256, "The worker that refused it.")]

    def encode(self) -> bytes:
        return orjson.dumps(self)

    def without_originals(self) -> DeadLetter:
        """This record without the original bytes and key (both marked as cut): what is
        sent when the broker refuses the whole record as too large."""
        return replace(
            self,
            original_b64="",
            original_truncated=self.original_bytes > 0,
            original_key_b64=None if self.original_key_bytes is None else "",
            original_key_truncated=bool(self.original_key_bytes),
        )

    def original(self) -> bytes:
        """Return the original message bytes."""
        return base64.b64decode(self.original_b64)

    @classmethod
    def decode(cls, raw: bytes) -> DeadLetter:
        return cls(**orjson.loads(raw))


def b64(data: bytes | None) -> str | None:
    """Base64 of ``data`` as text, None for None."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def cut(text: str, limit: int) -> str:
    """``text``, or its start and "…" in at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fits(value: str | None, limit: int) -> str | None:
    """``value`` when it is a string of 1..``limit`` characters, else None."""
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def dead_letter(
    *,
    reason: str,
    detail: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    source_timestamp_ms: int | None,
    value: bytes | None,
    key: bytes | None,
    dead_lettered_at_ms: int,
    worker: str,
    event_type: str | None = None,
    event_id: str | None = None,
) -> tuple[bytes | None, DeadLetter]:
    """Build the dead letter of one refused message, bounded to its schema; return the
    Kafka key to send it with (the original key, cut as the record says) and the record."""
    raw = value if value is not None else b""
    sent_key = None if key is None else key[:MAX_KEY_BYTES]
    letter = DeadLetter(
        schema_version=DEAD_LETTER_VERSION,
        reason=reason,
        detail=cut(detail, MAX_DETAIL_CHARS) or "(no detail)",
        source_topic=cut(source_topic, 249),
        source_partition=source_partition,
        source_offset=source_offset,
        source_timestamp_ms=(
            source_timestamp_ms
            if isinstance(source_timestamp_ms, int) and source_timestamp_ms >= 0
            else None
        ),
        event_type=_fits(event_type, 64),
        event_id=_fits(event_id, 128),
        original_b64=b64(raw[:MAX_ORIGINAL_BYTES]) or "",
        original_bytes=len(raw),
        original_truncated=len(raw) > MAX_ORIGINAL_BYTES,
        original_key_b64=b64(sent_key),
        original_key_bytes=None if key is None else len(key),
        original_key_truncated=key is not None and len(key) > MAX_KEY_BYTES,
        dead_lettered_at_ms=dead_lettered_at_ms,
        worker=cut(worker, 256) or "?",
    )
    return sent_key, letter
