"""The normalised stream: validated events, partitioned by conversation key, in batches.

The ingest step writes one Kafka message per destination partition and poll, holding
that partition's validated events in the order they were read, and the event-time
watermarks of the input partitions it reads: ``{"v": 1, "wm": {"tickets/0": ms, ...},
"events": [...]}``. Every tick it also sends a message with no events to every partition,
so the watermarks keep moving when the input is quiet (slacore/watermark.py).

All events of one conversation land in one partition (chosen from the event's
:attr:`~slawatch.core.events.InputEvent.key`), in order. Batching is what lets the
downstream Faust agents pay Faust's per-message cost once per batch instead of once per
event.

Each event keeps its input contract, except ``occurred_at``, which is always epoch
milliseconds (UTC) here; decoding gives back the core's event classes
(slawatch/core/events.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from slawatch.core.events import InputEvent
from slawatch.schemas.events import EVENT_TYPES

NORMALISED_VERSION = 1


_TAIL = b"]}"


@dataclass(frozen=True, slots=True)
class NormalisedBatch:
    """One message of the normalised stream."""

    events: list[InputEvent]
    #: Input partition ("topic/partition") -> watermark (epoch ms), as its reader reported.
    watermarks: dict[str, int]


def _head(watermarks: Mapping[str, int]) -> bytes:
    return b'{"v":%d,"wm":%s,"events":[' % (NORMALISED_VERSION, orjson.dumps(watermarks))


def encode_batches(
    events: Sequence[InputEvent], max_bytes: int, watermarks: Mapping[str, int] | None = None
) -> list[bytes]:
    """Encode events (already validated) as batch messages of at most ``max_bytes`` each,
    every one carrying ``watermarks``; no events gives one message with the watermarks.

    Events keep their order across the messages. An event is never split; one larger than
    ``max_bytes`` on its own travels alone (input size is capped well below that).
    """
    head = _head(watermarks or {})
    messages: list[bytes] = []
    parts: list[bytes] = []
    size = len(head) + len(_TAIL)
    for event in events:
        part = orjson.dumps(event)
        if parts and size + len(part) + 1 > max_bytes:
            messages.append(head + b",".join(parts) + _TAIL)
            parts, size = [], len(head) + len(_TAIL)
        parts.append(part)
        size += len(part) + 1
    if parts or not messages:
        messages.append(head + b",".join(parts) + _TAIL)
    return messages


def encode_event(event: InputEvent) -> bytes:
    """Encode one event in its normalised form (also the form of JSONL files)."""
    return orjson.dumps(event)


def event_from_normalised(obj: dict[str, object]) -> InputEvent:
    """Rebuild an event from its normalised form (trusted: written by slawatch)."""
    cls = EVENT_TYPES[str(obj["type"])]
    # JSON has no tuples: tag lists come back as lists and are frozen again here.
    if isinstance(obj.get("tags"), list):
        obj = {**obj, "tags": tuple(obj["tags"])}  # type: ignore[arg-type]
    changes = obj.get("changes")
    if isinstance(changes, dict) and isinstance(changes.get("tags"), list):
        obj = {**obj, "changes": {**changes, "tags": tuple(changes["tags"])}}
    return cls(**obj)  # type: ignore[arg-type]


def decode_batch(raw: bytes) -> NormalisedBatch:
    """Decode a normalised batch message."""
    batch = orjson.loads(raw)
    if batch.get("v") != NORMALISED_VERSION:
        raise ValueError(f"unsupported normalised batch version {batch.get('v')!r}")
    return NormalisedBatch(
        events=[event_from_normalised(obj) for obj in batch["events"]],
        watermarks=batch.get("wm") or {},
    )
