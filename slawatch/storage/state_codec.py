"""How a conversation's SLA state is stored in the table (and its changelog).

Tables hold bytes, not Python objects: a few hundred bytes per conversation instead of
several kilobytes of objects, and rebuilding the timer queue after a restart reads only the
8-byte prefix of each entry.

The stored bytes
----------------
::

    [8 bytes: next deadline][1 byte: format version][body: a compact JSON array]

* The **deadline** is signed big-endian epoch milliseconds, -1 for none. It is the first 8
  bytes in every format version, so :func:`deadline_of` never looks further.
* The **format version** byte says how to read the body: :data:`CURRENT_FORMAT` is what
  :func:`encode_state` writes, :data:`LAYOUTS` what :func:`decode_state` reads. A
  version byte is 2 to 255 except 91 (see format 1); anything else raises
  :class:`UnknownStateFormat`, a :class:`ValueError`.
* The **body** is the state as JSON arrays, fields by position, not by name (names would
  double the size and slow decoding): the :class:`~slawatch.core.state.ConversationState`
  is an array of its stored fields, its context a nested array, its cycles arrays of
  arrays. Which field sits at which position, and how each is read back, is the layout of
  the format version in :data:`LAYOUTS`.

Format 1 is what slawatch wrote before format versions existed: the deadline, then the
body with no format byte. A body is a JSON array, whose first byte is ``[`` (0x5B = 91,
hence no format 91), so :func:`decode_state` still tells format 1 apart and reads it.
Format 2 has the layout of format 1, with the format byte.

One description per format
--------------------------
A layout lists, for each stored record, its stored fields in order, each as ``(field name,
how it is read back)``. The encoder of the current format and the decoder of every format
are generated from it when this module is imported (Python source, compiled once), so no
second list can drift from it, and a decode costs what a hand-written one would. Decoders
fill each record through its slots' own descriptors, as
:func:`slawatch.core.state.evolve` does, skipping ``__init__`` (the stored records have
no ``__post_init__``; a test checks it). Only the current format is ever written: a state
read in an older one is written back in the current one the next time it changes.

When a core record changes (``slawatch/core/state.py``)
-------------------------------------------------------
``tests/unit/test_codecs.py`` fails until the current layout lists exactly the fields of
every stored record. A released layout describes bytes already in changelogs, so never add,
remove or reorder its fields. Instead:

1. Add a format version with a new layout, e.g. ``_LAYOUT_3 = {**_LAYOUT_1, Context:
   (*_LAYOUT_1[Context], ("new_field", OPT_TEXT))}``, then ``LAYOUTS[3] = _LAYOUT_3`` and
   ``CURRENT_FORMAT = 3``.
2. Older formats keep being read with their own layouts: a field they do not store gets
   the record's default (so a new field needs a default; without one this module refuses
   to import); a stored field the record no longer has is read and dropped. A renamed
   field is renamed in every layout, the one edit a released layout allows (the bytes
   hold positions, not names). A field whose type or meaning changed needs a new
   :class:`Read` for the layouts that stored the old one.
3. In the tests, add the field to the round-trip strategies, and keep a few states written
   by the previous format's encoder (made before the change) that must still decode, as
   ``tests/unit/fixtures/legacy_states.py`` does for format 1.
"""

from __future__ import annotations

import enum
import struct
import sys
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any

import orjson

from slawatch.core.keys import ConversationKind
from slawatch.core.machine import next_deadline
from slawatch.core.sla import Metric, SlaEventKind
from slawatch.core.state import NEVER, Context, ConversationState, Cycle, StoppedCycle, evolve

_DEADLINE = struct.Struct(">q")
_DEADLINE_AND_FORMAT = struct.Struct(">qB")
NO_DEADLINE = -1
#: The first byte of a format 1 body (a JSON array), where later formats have their number.
_FORMAT_1_BODY_START = ord("[")


class UnknownStateFormat(ValueError):
    """Stored state bytes of a format version this slawatch cannot read."""


class Read(enum.Enum):
    """How a stored JSON value is read back into a field (besides enums and records)."""

    AS_IS = "as is"  # int, bool, None, float, or a str not worth sharing
    TEXT = "an interned str"  # low-cardinality strings: a million states share them
    OPT_TEXT = "an interned str or None"
    TEXTS = "a tuple of interned str"
    INTS = "a tuple of int"
    PAIRS = "a tuple of (name, value) pairs"


AS_IS = Read.AS_IS
TEXT = Read.TEXT
OPT_TEXT = Read.OPT_TEXT
TEXTS = Read.TEXTS
INTS = Read.INTS
PAIRS = Read.PAIRS


@dataclass(frozen=True)
class Nested:
    """A field holding a stored record (``many``: a tuple of them), as a nested array."""

    record: type
    many: bool = False


#: How one stored field is read back: a :class:`Read`, an enum class (stored by value),
#: or a :class:`Nested` record.
FieldReader = Read | type[enum.Enum] | Nested
#: A format's stored fields per record, in stored order.
Layout = dict[type, tuple[tuple[str, FieldReader], ...]]

#: Formats 1 and 2. Format 1 is exactly what the encoder before format versions wrote
#: (fields in the records' declaration order of that time).
_LAYOUT_1: Layout = {
    ConversationState: (
        ("key", AS_IS),
        ("context", Nested(Context)),
        ("open_cycles", Nested(Cycle, many=True)),
        ("stopped", Nested(StoppedCycle, many=True)),
        ("started_counts", INTS),
        ("created", AS_IS),
        ("awaiting_customer", AS_IS),
        ("early_customer_ms", AS_IS),
        ("reply_times", INTS),
        ("closed", AS_IS),
        ("recent_event_hashes", INTS),
    ),
    Context: (
        ("kind", ConversationKind),
        ("conversation_id", AS_IS),
        ("tenant", OPT_TEXT),
        ("channel", OPT_TEXT),
        ("priority", TEXT),
        ("department", OPT_TEXT),
        ("assignee", OPT_TEXT),
        ("queue", OPT_TEXT),
        ("customer_group", OPT_TEXT),
        ("status", OPT_TEXT),
        ("level", TEXT),
        ("assignee_status", OPT_TEXT),
        ("referrer_url", AS_IS),
        ("tags", TEXTS),
        ("custom_fields", PAIRS),
        ("created_via_invitation", AS_IS),
        ("created_ms", AS_IS),
        ("changed_ms", AS_IS),
        ("deleted", AS_IS),
        ("last_message_author", OPT_TEXT),
        ("last_message_ms", AS_IS),
    ),
    Cycle: (
        ("metric", Metric),
        ("number", AS_IS),
        ("started_ms", AS_IS),
        ("target_ms", AS_IS),
        ("run_started_ms", AS_IS),
        ("due_ms", AS_IS),
        ("at_risk_ms", AS_IS),
        ("used_ms", AS_IS),
        ("paused", AS_IS),
        ("at_risk_sent", AS_IS),
        ("breach_sent", AS_IS),
        ("policy_version", TEXT),
    ),
    StoppedCycle: (
        ("metric", Metric),
        ("number", AS_IS),
        ("started_ms", AS_IS),
        ("target_ms", AS_IS),
        ("due_ms", AS_IS),
        ("stopped_ms", AS_IS),
        ("elapsed_ms", AS_IS),
        ("outcome", SlaEventKind),
        ("breach_sent", AS_IS),
        ("retracted", AS_IS),
        ("at_risk_ms", AS_IS),
        ("policy_version", TEXT),
    ),
}

#: Format 3: the context's requester, the number of events said of each cycle; and a
#: paused cycle's due and at-risk instants it has not reached are NEVER (formats 1 and 2
#: kept stale ones: see :func:`_paused_instants_known`).
_LAYOUT_3: Layout = {
    **_LAYOUT_1,
    Context: (*_LAYOUT_1[Context], ("requester", OPT_TEXT)),
    Cycle: (*_LAYOUT_1[Cycle], ("said", AS_IS)),
    StoppedCycle: (*_LAYOUT_1[StoppedCycle], ("said", AS_IS)),
}

#: Every format this slawatch reads, by version. Released layouts never change.
LAYOUTS: dict[int, Layout] = {1: _LAYOUT_1, 2: _LAYOUT_1, 3: _LAYOUT_3}
#: The format :func:`encode_state` writes.
CURRENT_FORMAT = 3


def _paused_instants_known(state: ConversationState) -> ConversationState:
    """A state of format 1 or 2 as format 3 means it.

    Those formats kept a paused cycle's due and at-risk instants as scheduled before the
    pause, reached or not; format 3 says NEVER for the ones not reached, which is what
    lets :func:`~slawatch.core.machine.advance` look at paused cycles. The due was reached
    when the working time used covers the target; the at-risk instant when it was
    declared, or when the due was reached (the threshold lies before the target)."""
    if not any(cycle.paused for cycle in state.open_cycles):
        return state
    cycles = []
    for cycle in state.open_cycles:
        if cycle.paused:
            due_reached = cycle.used_ms >= cycle.target_ms
            cycle = evolve(
                cycle,
                due_ms=cycle.due_ms if due_reached else NEVER,
                at_risk_ms=cycle.at_risk_ms if due_reached or cycle.at_risk_sent else NEVER,
            )
        cycles.append(cycle)
    return evolve(state, open_cycles=tuple(cycles))


# --- code generation ----------------------------------------------------------------------
# A stored record becomes a function of generated source: one per record for the current
# format's encoder, one per record and format for the decoders. Nested records call their
# own record's function of the same format.


def _fn_name(action: str, record: type, version: int) -> str:
    return f"_{action}_{record.__name__}_{version}"


def _decode_expr(value: str, reader: FieldReader, version: int, ns: dict[str, Any]) -> str:
    if isinstance(reader, Nested):
        fn = _fn_name("decode", reader.record, version)
        return f"tuple([{fn}(r) for r in {value}])" if reader.many else f"{fn}({value})"
    if isinstance(reader, type):  # an enum stored by value: a dict look-up, not Enum()
        table = f"_{reader.__name__}_by_value"
        ns[table] = {member.value: member for member in reader}
        return f"{table}[{value}]"
    return {
        AS_IS: value,
        TEXT: f"_intern({value})",
        OPT_TEXT: f"(None if {value} is None else _intern({value}))",
        TEXTS: f"tuple([_intern(s) for s in {value}])",
        INTS: f"tuple({value})",
        PAIRS: f"tuple(map(tuple, {value}))",
    }[reader]


def _decoder_source(record: type, layout: Layout, version: int, ns: dict[str, Any]) -> str:
    stored = layout[record]
    current = {f.name: f for f in fields(record)}
    n = len(stored)
    lines = [f"def {_fn_name('decode', record, version)}(row):"]
    if n == 1:
        lines.append("    (v0,) = row")
    else:
        lines.append(f"    ({', '.join(f'v{i}' for i in range(n))}) = row")
    lines.append(f"    o = _new(_{record.__name__})")
    ns[f"_{record.__name__}"] = record
    for i, (name, reader) in enumerate(stored):
        if name in current:  # else a field the record no longer has: read and dropped
            setter = f"_set_{record.__name__}_{name}"
            ns[setter] = getattr(record, name).__set__
            lines.append(f"    {setter}(o, {_decode_expr(f'v{i}', reader, version, ns)})")
    stored_names = {name for name, _ in stored}
    for name, field in current.items():
        if name in stored_names:
            continue
        setter, default = f"_set_{record.__name__}_{name}", f"_default_{record.__name__}_{name}"
        ns[setter] = getattr(record, name).__set__
        if field.default is not MISSING:
            ns[default] = field.default
            lines.append(f"    {setter}(o, {default})")
        elif field.default_factory is not MISSING:
            ns[default] = field.default_factory
            lines.append(f"    {setter}(o, {default}())")
        else:
            raise TypeError(
                f"format {version} does not store {record.__name__}.{name}, which has no "
                f"default to fill it with (see slawatch/storage/state_codec.py)"
            )
    lines.append("    return o")
    return "\n".join(lines)


def _encoder_source(record: type, layout: Layout, version: int) -> str:
    names = {f.name for f in fields(record)}
    items = []
    for name, reader in layout[record]:
        if name not in names:
            raise TypeError(
                f"format {version} stores {record.__name__}.{name}, which the record no "
                f"longer has: add a format version (see slawatch/storage/state_codec.py)"
            )
        if isinstance(reader, Nested):
            fn = _fn_name("encode", reader.record, version)
            items.append(f"[{fn}(r) for r in o.{name}]" if reader.many else f"{fn}(o.{name})")
        else:
            items.append(f"o.{name}")  # orjson writes enums by value and tuples as arrays
    return f"def {_fn_name('encode', record, version)}(o):\n    return [{', '.join(items)}]"


def _compile(sources: list[str], ns: dict[str, Any]) -> None:
    # Source built from the layouts above, nothing else; compiled first, as in
    # slawatch.core.state._make_evolver (a caught Ctrl-C must not end `python -m` by SIGINT).
    exec(compile("\n\n".join(sources), "<state codec>", "exec"), ns)


def _build() -> tuple[Callable[[ConversationState], list[Any]], dict[int, Callable[..., Any]]]:
    ns: dict[str, Any] = {"_new": object.__new__, "_intern": sys.intern}
    sources = [
        _decoder_source(record, layout, version, ns)
        for version, layout in LAYOUTS.items()
        for record in layout
    ]
    current = LAYOUTS[CURRENT_FORMAT]
    sources += [_encoder_source(record, current, CURRENT_FORMAT) for record in current]
    _compile(sources, ns)
    decoders = {v: ns[_fn_name("decode", ConversationState, v)] for v in LAYOUTS}
    return ns[_fn_name("encode", ConversationState, CURRENT_FORMAT)], decoders


_encode_body, _DECODERS = _build()
_decode_current_body = _DECODERS[CURRENT_FORMAT]
_decode_format_1_body = _DECODERS[1]


# --- the public functions -----------------------------------------------------------------


def encode_state(state: ConversationState, deadline_ms: int | None) -> bytes:
    """Serialise ``state`` in the current format, with its next deadline in front."""
    prefix = _DEADLINE_AND_FORMAT.pack(
        NO_DEADLINE if deadline_ms is None else deadline_ms, CURRENT_FORMAT
    )
    return prefix + orjson.dumps(_encode_body(state))


def deadline_of(data: bytes) -> int | None:
    """The next deadline stored in front of an encoded state, without decoding it.

    Except for a state written before format 3: its prefix left paused cycles out, which
    may now have one (a due they passed before their pause), so it is decoded and its
    deadline computed, once, until the state is written again in the current format."""
    (deadline,) = _DEADLINE.unpack_from(data)
    if len(data) > _DEADLINE.size and data[_DEADLINE.size] != CURRENT_FORMAT:  # 1, 2
        return next_deadline(decode_state(data))
    return None if deadline == NO_DEADLINE else int(deadline)


def decode_state(data: bytes) -> ConversationState:
    """Rebuild a state written by :func:`encode_state` of this or an earlier version.

    Raises :class:`UnknownStateFormat` for a format this slawatch does not know (one
    written by a newer slawatch, or bytes that are no stored state).
    """
    start = _DEADLINE.size
    if len(data) <= start:
        raise UnknownStateFormat(
            f"stored state of {len(data)} bytes ends before its format byte "
            f"(at least {start + 1} expected)"
        )
    version = data[start]
    state: ConversationState
    if version == CURRENT_FORMAT:
        state = _decode_current_body(orjson.loads(data[start + 1 :]))
    elif version == _FORMAT_1_BODY_START:
        state = _paused_instants_known(_decode_format_1_body(orjson.loads(data[start:])))
    else:
        decoder = _DECODERS.get(version)
        if decoder is None or version == 1:  # format 1 has no format byte
            raise UnknownStateFormat(
                f"stored state has format version {version} (byte 0x{version:02x} after "
                f"the deadline); this slawatch reads versions 1 (which has no format byte) "
                f"to {CURRENT_FORMAT}: was it written by a newer slawatch?"
            )
        state = decoder(orjson.loads(data[start + 1 :]))
        if version < 3:
            state = _paused_instants_known(state)
    return state
