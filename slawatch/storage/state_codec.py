"""How a conversation's SLA state is stored in the table (and its changelog).

Tables hold bytes, not Python objects: a few hundred bytes per conversation instead of
several kilobytes of objects, and rebuilding the timer queue after a restart reads only the
8-byte prefix of each entry.

The stored bytes
----------------
::

    [8 bytes: next deadline][1 byte: format version][body: positional arrays]

* The **deadline** is signed big-endian epoch milliseconds, -1 for none. It is the first 8
  bytes in every format version, so :func:`deadline_of` never looks further.
* The **format version** byte says how to read the body: :data:`CURRENT_FORMAT` is what
  :func:`encode_state` writes, :data:`LAYOUTS` what :func:`decode_state` reads. A
  version byte is 2 to 255 except 91 (see format 1); anything else raises
  :class:`UnknownStateFormat`, a :class:`ValueError`.
* The **body** is the state as arrays, fields by position, not by name (names would
  double the size and slow decoding): the :class:`~slawatch.core.state.ConversationState`
  is an array of its stored fields, its context a nested array, its cycles arrays of
  arrays. Which field sits at which position, and how each is read back, is the layout of
  the format version in :data:`LAYOUTS`; how the arrays are written is its body encoding
  (:data:`MSGPACK_FORMATS`): JSON up to format 3, MessagePack from format 4.

Format 1 is what slawatch wrote before format versions existed: the deadline, then the
body with no format byte. A body is a JSON array, whose first byte is ``[`` (0x5B = 91,
hence no format 91), so :func:`decode_state` still tells format 1 apart and reads it.
Format 2 has the layout of format 1, with the format byte. Format 4 has the layout of
format 3 in MessagePack (msgspec): about two thirds of the bytes, and decoded by msgspec
straight into the records (:data:`CURRENT_FORMAT` only, see below).

One description per format
--------------------------
A layout lists, for each stored record, its stored fields in order, each as ``(field name,
how it is read back)``. The decoder of every format is generated from it when this module
is imported (Python source, compiled once), so no second list can drift from it, and a
decode costs what a hand-written one would: the body is read into plain arrays (orjson or
msgspec), and each record is built from its array by its constructor.

The current format is written, and read, by msgspec from the records themselves: they are
``array_like`` structs (:mod:`slawatch.core.state`), whose arrays hold their fields in
declaration order. So this module refuses to import unless the current layout lists each
record's fields in exactly that order: the records' declaration is then the current
layout, and reading it straight into the records (:data:`_CURRENT_BODY`, in C, without the
generated decoder) reads what the layout says. Once a newer format is current, the
previous one is read by its generated decoder like any other. Only the current format is
ever written: a state read in an older one is written back in the current one the next
time it changes. Strings are interned (:func:`sys.intern`) by the generated decoders of
the older formats, not by the current one: a decoded state lives for one tick.

When a core record changes (``slawatch/core/state.py``)
-------------------------------------------------------
``tests/unit/test_codecs.py`` fails until the current layout lists exactly the fields of
every stored record. A released layout describes bytes already in changelogs, so never add,
remove or reorder its fields. Instead:

1. Add a format version with a new layout, e.g. ``_LAYOUT_5 = {**_LAYOUT_4, Context:
   (*_LAYOUT_4[Context], ("new_field", OPT_TEXT))}``, then ``LAYOUTS[5] = _LAYOUT_5``,
   ``MSGPACK_FORMATS`` gets 5 and ``CURRENT_FORMAT = 5``. (A new field goes at the end of
   its record, where its layout puts it.)
2. Older formats keep being read with their own layouts: a field they do not store gets
   the record's default (so a new field needs a default; without one this module refuses
   to import); a stored field the record no longer has is read and dropped. A renamed
   field is renamed in every layout, the one edit a released layout allows (the bytes
   hold positions, not names). A field whose type or meaning changed needs a new
   :class:`Read` for the layouts that stored the old one.
3. In the tests, add the field to the round-trip strategies, and keep a few states written
   by the previous format's encoder (made before the change) that must still decode, as
   ``tests/unit/fixtures/legacy_states.py`` does for formats 1 and 3.
"""

from __future__ import annotations

import enum
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from slawatch.core.keys import ConversationKind
from slawatch.core.machine import next_deadline
from slawatch.core.sla import Metric, SlaEventKind
from slawatch.core.state import NEVER, Context, ConversationState, Cycle, StoppedCycle

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

#: Format 4: format 3's layout, in MessagePack.
_LAYOUT_4: Layout = dict(_LAYOUT_3)

#: Every format this slawatch reads, by version. Released layouts never change.
LAYOUTS: dict[int, Layout] = {1: _LAYOUT_1, 2: _LAYOUT_1, 3: _LAYOUT_3, 4: _LAYOUT_4}
#: The formats whose body is MessagePack (the others: JSON).
MSGPACK_FORMATS = frozenset({4})
#: The format :func:`encode_state` writes.
CURRENT_FORMAT = 4
#: Formats whose deadline prefix counts paused cycles (formats 1 and 2 left them out).
_PREFIX_EXACT = frozenset({3, 4})


def _paused_instants_known(state: ConversationState) -> ConversationState:
    """A state of format 1 or 2 as format 3 means it.

    Those formats kept a paused cycle's due and at-risk instants as scheduled before the
    pause, reached or not; format 3 says NEVER for the ones not reached, which is what
    lets :func:`~slawatch.core.machine.advance` look at paused cycles. The due was reached
    when the working time used covers the target; the at-risk instant when it was
    declared, or when the due was reached (the threshold lies before the target)."""
    for cycle in state.open_cycles:  # a state just decoded: changed in place
        if cycle.paused:
            due_reached = cycle.used_ms >= cycle.target_ms
            if not due_reached:
                cycle.due_ms = NEVER
            if not (due_reached or cycle.at_risk_sent):
                cycle.at_risk_ms = NEVER
    return state


# --- code generation ----------------------------------------------------------------------
# A stored record becomes a function of generated source per record and format: it builds
# the record from its array. Nested records call their own record's function of the same
# format.


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


def _record_fields(record: type) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(record)


def _decoder_source(record: type, layout: Layout, version: int, ns: dict[str, Any]) -> str:
    stored = layout[record]
    current = {f.name: f for f in _record_fields(record)}
    n = len(stored)
    lines = [f"def {_fn_name('decode', record, version)}(row):"]
    if n == 1:
        lines.append("    (v0,) = row")
    else:
        lines.append(f"    ({', '.join(f'v{i}' for i in range(n))}) = row")
    ns[f"_{record.__name__}"] = record
    arguments = []
    for i, (name, reader) in enumerate(stored):
        if name in current:  # else a field the record no longer has: read and dropped
            arguments.append(f"{name}={_decode_expr(f'v{i}', reader, version, ns)}")
    stored_names = {name for name, _ in stored}
    for name, info in current.items():
        no_default = info.default is msgspec.NODEFAULT
        if name not in stored_names and no_default and info.default_factory is msgspec.NODEFAULT:
            raise TypeError(
                f"format {version} does not store {record.__name__}.{name}, which has no "
                f"default to fill it with (see slawatch/storage/state_codec.py)"
            )  # else the constructor gives it its default
    lines.append(f"    return _{record.__name__}({', '.join(arguments)})")
    return "\n".join(lines)


def _check_current_layout(layout: Layout) -> None:
    """The current format is the records' own array form: its layout must list each
    record's fields in declaration order (see the module docstring)."""
    for record, stored in layout.items():
        declared = [f.name for f in _record_fields(record)]
        listed = [name for name, _ in stored]
        if listed != declared:
            raise TypeError(
                f"format {CURRENT_FORMAT} stores {record.__name__} as {listed}, but the "
                f"record declares {declared}: add a format version "
                f"(see slawatch/storage/state_codec.py)"
            )


def _compile(sources: list[str], ns: dict[str, Any]) -> None:
    # Source built from the layouts above, nothing else. Compiled first: CPython 3.11 marks
    # a KeyboardInterrupt that leaves exec() *of a string* as unhandled even when it is
    # caught, and `python -m` then exits by SIGINT (docs/OPERATIONS.md, known workarounds).
    exec(compile("\n\n".join(sources), "<state codec>", "exec"), ns)


def _build() -> dict[int, Callable[..., Any]]:
    ns: dict[str, Any] = {"_intern": sys.intern}
    sources = [
        _decoder_source(record, layout, version, ns)
        for version, layout in LAYOUTS.items()
        for record in layout
    ]
    _compile(sources, ns)
    return {v: ns[_fn_name("decode", ConversationState, v)] for v in LAYOUTS}


_check_current_layout(LAYOUTS[CURRENT_FORMAT])
#: Per format, the generated function that builds a state from its body's arrays.
_DECODERS = _build()
_decode_format_1_body = _DECODERS[1]
_ENCODER = msgspec.msgpack.Encoder()
#: The current format's body, read by msgspec straight into the records.
_CURRENT_BODY = msgspec.msgpack.Decoder(ConversationState)
_read_msgpack = msgspec.msgpack.Decoder().decode


# --- the public functions -----------------------------------------------------------------


def encode_state(state: ConversationState, deadline_ms: int | None) -> bytes:
    """Serialise ``state`` in the current format, with its next deadline in front."""
    prefix = _DEADLINE_AND_FORMAT.pack(
        NO_DEADLINE if deadline_ms is None else deadline_ms, CURRENT_FORMAT
    )
    return prefix + _ENCODER.encode(state)


def deadline_of(data: bytes) -> int | None:
    """The next deadline stored in front of an encoded state, without decoding it.

    Except for a state written before format 3: its prefix left paused cycles out, which
    may now have one (a due they passed before their pause), so it is decoded and its
    deadline computed, once, until the state is written again in the current format."""
    (deadline,) = _DEADLINE.unpack_from(data)
    if len(data) > _DEADLINE.size and data[_DEADLINE.size] not in _PREFIX_EXACT:  # 1, 2
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
        state = _CURRENT_BODY.decode(memoryview(data)[start + 1 :])  # errors: ValueError
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
        body = data[start + 1 :]
        state = decoder(_read_msgpack(body) if version in MSGPACK_FORMATS else orjson.loads(body))
        if version < 3:
            state = _paused_instants_known(state)
    return state
