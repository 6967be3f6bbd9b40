from __future__ import annotations

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slawatch.core.keys import ConversationKind
from slawatch.core.machine import advance, next_deadline
from slawatch.core.sla import Metric, SlaEventKind
from slawatch.core.state import (
    DEDUP_WINDOW,
    NEVER,
    REPLY_WINDOW,
    Context,
    ConversationState,
    Cycle,
    StoppedCycle,
)
from slawatch.storage import state_codec
from slawatch.storage.state_codec import (
    CURRENT_FORMAT,
    LAYOUTS,
    Layout,
    UnknownStateFormat,
    deadline_of,
    decode_state,
    encode_state,
)
from tests.unit.fixtures.legacy_states import CASES, FORMAT_3_CASES, LegacyCase
from tests.unit.sla_harness import T0, Timeline, ev
from tests.unit.test_machine_properties import deliveries


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_every_reachable_state_survives_the_round_trip(plan) -> None:
    t = Timeline()
    for step, value in plan[:-1]:
        if step == "event":
            t.send(value)
        else:
            t.to(value)
    if t.state is None:
        return
    data = encode_state(t.state, next_deadline(t.state))
    restored = decode_state(data)
    assert restored == t.state
    assert deadline_of(data) == next_deadline(t.state)
    # and the restored state behaves the same from here on
    assert advance(restored, T0 + 10**9, t.policy, 0) == advance(t.state, T0 + 10**9, t.policy, 0)


@given(st.just(None))
def test_a_closed_state_has_no_deadline(_) -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("ticket.updated", 5, changes={"status": "closed"}))
    data = encode_state(t.state, next_deadline(t.state))
    assert deadline_of(data) is None


def test_an_open_ticket_state_is_compact() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, department="billing", assignee="agent-07", tags=["a"]))
    t.send(ev("message.sent", 60, visibility="public"), ev("message.received", 600))
    data = encode_state(t.state, next_deadline(t.state))
    assert len(data) < 700, len(data)


# --- format versions ------------------------------------------------------------------------

STORED_RECORDS = (ConversationState, Context, Cycle, StoppedCycle)


def layout_mismatch(record: type, layout: Layout) -> str | None:
    """What a layout gets wrong about ``record``'s fields, or None."""
    stored = [name for name, _ in layout.get(record, ())]
    declared = [f.name for f in msgspec.structs.fields(record)]
    problems = []
    if unstored := [name for name in declared if name not in stored]:
        problems.append(f"does not store {unstored}")
    if unknown := [name for name in stored if name not in declared]:
        problems.append(f"stores {unknown}, which the record does not have")
    if twice := sorted({name for name in stored if stored.count(name) > 1}):
        problems.append(f"stores {twice} twice")
    if not problems:
        return None
    return (
        f"the layout of {record.__name__} {' and '.join(problems)}: add a format version "
        f"(see the docstring of slawatch/storage/state_codec.py)"
    )


@pytest.mark.parametrize("record", STORED_RECORDS, ids=lambda r: r.__name__)
def test_the_current_format_stores_every_field_of_every_stored_record(record: type) -> None:
    assert layout_mismatch(record, LAYOUTS[CURRENT_FORMAT]) is None


def test_the_current_format_stores_no_other_record() -> None:
    assert set(LAYOUTS[CURRENT_FORMAT]) == set(STORED_RECORDS)


def test_a_field_added_to_a_record_is_noticed() -> None:
    grown = msgspec.defstruct("Cycle", [("new_field", int, 0)], bases=(Cycle,))
    layout = {**LAYOUTS[CURRENT_FORMAT], grown: LAYOUTS[CURRENT_FORMAT][Cycle]}
    problem = layout_mismatch(grown, layout)
    assert problem is not None and "['new_field']" in problem


def as_format_3_means_it(state: ConversationState) -> ConversationState:
    """Formats 1 and 2 kept a paused cycle's instants as scheduled before its pause; from
    format 3 the ones it has not reached are NEVER. The legacy paused cycles here reached
    neither (a test below checks it), and their at-risk was never declared."""
    cycles = tuple(
        msgspec.structs.replace(c, due_ms=NEVER, at_risk_ms=NEVER) if c.paused else c
        for c in state.open_cycles
    )
    return msgspec.structs.replace(state, open_cycles=cycles)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_state_written_in_format_1_is_still_read(case: LegacyCase) -> None:
    assert case.data[8:9] == b"["  # format 1: no format byte, the JSON body right away
    expected = as_format_3_means_it(case.state)
    assert decode_state(case.data) == expected
    assert deadline_of(case.data) == case.deadline_ms
    # written back, it is in the current format
    data = encode_state(decode_state(case.data), case.deadline_ms)
    assert data[8] == CURRENT_FORMAT
    assert decode_state(data) == expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_state_written_in_format_2_is_still_read(case: LegacyCase) -> None:
    data = case.data[:8] + bytes([2]) + case.data[8:]  # format 2: format 1's body, tagged
    assert decode_state(data) == as_format_3_means_it(case.state)


@pytest.mark.parametrize("case", FORMAT_3_CASES, ids=lambda c: c.name)
def test_a_state_written_in_format_3_is_still_read(case: LegacyCase) -> None:
    assert case.data[8] == 3
    assert decode_state(case.data) == case.state
    assert deadline_of(case.data) == case.deadline_ms
    data = encode_state(decode_state(case.data), case.deadline_ms)
    assert data[8] == CURRENT_FORMAT
    assert decode_state(data) == case.state
    assert len(data) < len(case.data)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_format_4_read_by_its_layout_is_what_msgspec_reads(case: LegacyCase) -> None:
    """The current format is read by msgspec straight into the records; once a newer
    format is current, it will be read by the decoder generated from its layout: both
    read the same state."""
    data = encode_state(as_format_3_means_it(case.state), case.deadline_ms)
    assert data[8] == 4
    by_layout = state_codec._DECODERS[4](msgspec.msgpack.decode(data[9:]))
    assert by_layout == decode_state(data) == as_format_3_means_it(case.state)


def test_the_current_layout_must_follow_the_declaration_order() -> None:
    """The current format is the records' own array form: a layout listing a record's
    fields in another order is refused (it would not say what is written)."""
    swapped = dict(LAYOUTS[CURRENT_FORMAT])
    first, second, *rest = swapped[Cycle]
    swapped[Cycle] = (second, first, *rest)
    with pytest.raises(TypeError, match="add a format version"):
        state_codec._check_current_layout(swapped)


def test_legacy_paused_cycles_had_reached_nothing() -> None:
    paused = [c for case in CASES for c in case.state.open_cycles if c.paused]
    assert paused and all(c.used_ms < c.target_ms and not c.at_risk_sent for c in paused)


def test_a_legacy_paused_cycle_past_due_keeps_its_due() -> None:
    case = next(c for c in CASES if any(cycle.paused for cycle in c.state.open_cycles))
    cycles = tuple(
        msgspec.structs.replace(c, used_ms=c.target_ms + 1) if c.paused else c
        for c in case.state.open_cycles
    )
    state = msgspec.structs.replace(case.state, open_cycles=cycles)
    decoded = decode_state(case.data[:8] + bytes([2]) + _format_2_body(state))
    paused = next(c for c in decoded.open_cycles if c.paused)
    original = next(c for c in state.open_cycles if c.paused)
    assert paused.due_ms == original.due_ms < NEVER
    assert paused.at_risk_ms == original.at_risk_ms < NEVER


def test_a_legacy_paused_cycle_past_due_gets_its_deadline_back() -> None:
    """Formats 1 and 2 left paused cycles out of the deadline in front; one past its due
    now has one (the breach it owes), so the timer queue rebuilt from prefixes holds it."""
    case = next(c for c in CASES if any(cycle.paused for cycle in c.state.open_cycles))
    cycles = tuple(
        msgspec.structs.replace(c, used_ms=c.target_ms + 1) if c.paused else c
        for c in case.state.open_cycles
    )
    state = msgspec.structs.replace(case.state, open_cycles=cycles)
    legacy = encode_state(state, None)[:8] + bytes([2]) + _format_2_body(state)
    paused = next(c for c in cycles if c.paused)
    assert deadline_of(legacy) == next_deadline(decode_state(legacy)) <= paused.due_ms
    current = encode_state(decode_state(legacy), None)  # once written again: the prefix
    assert deadline_of(current) is None


def _format_2_body(state: ConversationState) -> bytes:
    """``state`` as format 2 wrote it: without what format 3 appends to the context (the
    requester) and to open and stopped cycles (the events said of them)."""
    body = msgspec.msgpack.decode(encode_state(state, None)[9:])
    body[1] = body[1][:-1]
    body[2] = [cycle[:-1] for cycle in body[2]]
    body[3] = [stopped[:-1] for stopped in body[3]]
    return orjson.dumps(body)


def test_format_1_states_cover_what_a_state_holds() -> None:
    states = [case.state for case in CASES]
    cycles = [c for s in states for c in s.open_cycles]
    stopped = [c for s in states for c in s.stopped]
    assert any(c.paused for c in cycles) and any(c.breach_sent for c in cycles)
    assert {c.outcome for c in stopped} >= {SlaEventKind.MET, SlaEventKind.MISSED}
    assert any(c.retracted for c in stopped)
    assert any(s.context.tags for s in states) and any(s.context.custom_fields for s in states)
    assert any(s.context.tenant is None for s in states)
    assert any(s.early_customer_ms is not None for s in states)
    assert {s.context.kind for s in states} == set(ConversationKind)
    assert None in {case.deadline_ms for case in CASES}


texts = st.text(max_size=12)
opt_texts = st.none() | texts
ms = st.integers(min_value=0, max_value=2**53)
opt_ms = st.none() | ms
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
contexts = st.builds(
    Context,
    kind=st.sampled_from(ConversationKind),
    conversation_id=texts,
    tenant=opt_texts,
    channel=opt_texts,
    priority=texts,
    department=opt_texts,
    assignee=opt_texts,
    queue=opt_texts,
    customer_group=opt_texts,
    status=opt_texts,
    level=texts,
    assignee_status=opt_texts,
    referrer_url=opt_texts,
    tags=st.lists(texts, max_size=3).map(tuple),
    custom_fields=st.dictionaries(texts, scalars, max_size=4).map(
        lambda d: tuple(sorted(d.items()))
    ),
    created_via_invitation=st.booleans(),
    created_ms=opt_ms,
    changed_ms=opt_ms,
    deleted=st.booleans(),
    last_message_author=opt_texts,
    last_message_ms=opt_ms,
    requester=opt_texts,
)
cycles = st.builds(
    Cycle,
    metric=st.sampled_from(Metric),
    number=st.integers(min_value=1, max_value=1000),
    started_ms=ms,
    target_ms=ms,
    run_started_ms=ms,
    due_ms=ms | st.just(NEVER),  # a paused cycle's instants not reached
    at_risk_ms=ms | st.just(NEVER),
    used_ms=ms,
    paused=st.booleans(),
    at_risk_sent=st.booleans(),
    breach_sent=st.booleans(),
    policy_version=texts,
    said=st.integers(min_value=0, max_value=1000),
)
stopped_cycles = st.builds(
    StoppedCycle,
    metric=st.sampled_from(Metric),
    number=st.integers(min_value=1, max_value=1000),
    started_ms=ms,
    target_ms=ms,
    due_ms=ms,
    stopped_ms=ms,
    elapsed_ms=ms,
    outcome=st.sampled_from(SlaEventKind),
    breach_sent=st.booleans(),
    retracted=st.booleans(),
    at_risk_ms=ms,
    policy_version=texts,
    said=st.integers(min_value=0, max_value=1000),
)
states = st.builds(
    ConversationState,
    key=texts,
    context=contexts,
    open_cycles=st.lists(cycles, max_size=3).map(tuple),
    stopped=st.lists(stopped_cycles, max_size=3).map(tuple),
    started_counts=st.tuples(*[st.integers(min_value=0, max_value=1000)] * 5),
    created=st.booleans(),
    awaiting_customer=st.booleans(),
    early_customer_ms=opt_ms,
    reply_times=st.lists(ms, max_size=REPLY_WINDOW).map(tuple),
    closed=st.booleans(),
    recent_event_hashes=st.lists(st.integers(0, 2**32 - 1), max_size=DEDUP_WINDOW).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(states, opt_ms)
def test_any_state_survives_the_round_trip(state: ConversationState, deadline: int | None) -> None:
    data = encode_state(state, deadline)
    assert data[8] == CURRENT_FORMAT
    assert decode_state(data) == state
    assert deadline_of(data) == deadline
    assert deadline_of(data[:8]) == deadline  # the prefix alone: the body is never read


@pytest.mark.parametrize("version", [0, 1, CURRENT_FORMAT + 1, 0x7B, 0xFF])
def test_an_unknown_format_version_is_a_named_error(version: int) -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    data = bytearray(encode_state(t.state, t.deadline()))
    data[8] = version
    with pytest.raises(UnknownStateFormat, match=f"format version {version} ") as raised:
        decode_state(bytes(data))
    assert isinstance(raised.value, ValueError)
    assert "newer slawatch" in str(raised.value)


def test_bytes_too_short_for_a_format_byte_are_a_named_error() -> None:
    t = Timeline()
    t.send(ev("chat.started", 0))
    with pytest.raises(UnknownStateFormat, match="of 8 bytes ends before its format byte"):
        decode_state(encode_state(t.state, None)[:8])


@pytest.mark.parametrize("record", STORED_RECORDS, ids=lambda r: r.__name__)
def test_stored_records_have_no_checks_that_decoding_would_skip(record: type) -> None:
    # The decoders fill records through their slots, without __init__ (state_codec.py).
    assert not hasattr(record, "__post_init__")
