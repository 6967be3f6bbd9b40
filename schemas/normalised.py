"""The normalised stream: validated events, partitioned by conversation key, in batches.

The ingest step writes one Kafka message per destination partition and poll, holding
that partition's validated events in the order they were read, and the event-time
watermarks of the input partitions it reads: ``{"v": 1, "wm": {"tickets/0": ms, ...},
"events": [...]}``. Every tick it also sends a message with no events to every partition,
so the watermarks keep moving when the input is quiet (slawatch/core/watermark.py).

All events of one conversation land in one partition (chosen from the event's
:attr:`~slawatch.core.events.InputEvent.key`), in order. Batching is what lets the
downstream Faust agents pay Faust's per-message cost once per batch instead of once per
event.

Each event keeps its input contract, except ``occurred_at``, which is always epoch
milliseconds (UTC) here. msgspec encodes the core's event classes (slawatch/core/events.py)
and decodes a whole batch back into them in one pass, ``type`` telling the class; the
events were validated when they were read, so decoding them again checks only what the
types say (cheap) and normalises nothing.

A worker of either build reads the other's messages. An older build (before the Structs)
wrote ``"schema_version": 1.0`` when the input said ``1.0``; a batch the types refuse is
read a second time, leniently (:func:`_decode_leniently`): as plain JSON, each event's
whole-number fractions as integers (the validator reads the input the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import msgspec
import orjson

from slawatch.core.events import EVENT_TYPES, AnyInputEvent, InputEvent

NORMALISED_VERSION = 1

_TAIL = b"]}"
_ENCODER: Final = msgspec.json.Encoder()


class _Batch(msgspec.Struct, gc=False):
    """A normalised message as it is read."""

    v: int
    events: list[AnyInputEvent]
    wm: dict[str, int] | None = None


_BATCH_DECODER: Final = msgspec.json.Decoder(_Batch)
_EVENT_DECODER: Final = msgspec.json.Decoder(AnyInputEvent)


@dataclass(frozen=True, slots=True)
class NormalisedBatch:
    """One message of the normalised stream."""

    events: list[InputEvent]
    #: Input partition ("topic/partition") -> watermark (epoch ms), as its reader reported.
    watermarks: dict[str, int]


def _head(watermarks: Mapping[str, int]) -> bytes:
    return b'{"v":%d,"wm":%s,"events":[' % (NORMALISED_VERSION, _ENCODER.encode(watermarks))


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
    encode = _ENCODER.encode
    for event in events:
        part = encode(event)
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
    return _ENCODER.encode(event)


def decode_event(raw: bytes) -> InputEvent:
    """Decode one event in its normalised form."""
    event: InputEvent = _EVENT_DECODER.decode(raw)
    return event


def event_from_normalised(obj: dict[str, object]) -> InputEvent:
    """Rebuild an event from its normalised form, decoded as plain JSON (trusted: written
    by slawatch)."""
    cls = EVENT_TYPES[str(obj["type"])]
    event: InputEvent = msgspec.convert(obj, cls)
    return event


def _decode_leniently(raw: bytes) -> _Batch:
    """A batch as an older build wrote it: plain JSON, where every top-level number of an
    event that is whole is the integer (no top-level event field is a fraction), then the
    types. Raises what msgspec or orjson raise."""
    obj: Any = orjson.loads(raw)
    events = obj.get("events") if isinstance(obj, dict) else None
    if isinstance(events, list):
        obj["events"] = [
            {
                key: int(value) if type(value) is float and value.is_integer() else value
                for key, value in event.items()
            }
            if isinstance(event, dict)
            else event
            for event in events
        ]
    batch: _Batch = msgspec.convert(obj, _Batch)
    return batch


def decode_batch(raw: bytes) -> NormalisedBatch:
    """Decode a normalised batch message."""
    try:
        batch = _BATCH_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        try:  # what an older build wrote: only ever on this path
            batch = _decode_leniently(raw)
        except (msgspec.ValidationError, orjson.JSONDecodeError, ValueError):
            raise ValueError(f"not a normalised batch: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a normalised batch: {exc}") from None
    if batch.v != NORMALISED_VERSION:
        raise ValueError(f"unsupported normalised batch version {batch.v!r}")
    # Every member of the union is an InputEvent; list is invariant, so mypy needs telling.
    return NormalisedBatch(events=cast("list[InputEvent]", batch.events), watermarks=batch.wm or {})
