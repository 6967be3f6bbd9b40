"""Properties of the SLA state machine over generated timelines, arrival orders,
duplicates and watermarks."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slawatch.core.sla import Metric, SlaEventKind
from tests.unit.sla_harness import POLICY, Timeline, ev

K = SlaEventKind

# A ticket's life as (seconds, kind) steps after creation at 0.
ticket_steps = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=4 * 3600),
        st.sampled_from(["customer", "public", "internal", "pending", "open", "solved"]),
    ),
    max_size=14,
)
chat_steps = st.lists(
    st.tuples(st.integers(min_value=1, max_value=600), st.sampled_from(["customer", "agent"])),
    max_size=10,
)
call_outcomes = st.tuples(
    st.integers(min_value=0, max_value=90),
    st.sampled_from(["answered", "abandoned", "transferred"]),
)


def ticket_events(steps):
    events = [ev("ticket.created", 0)]
    for at, kind in sorted(steps):
        if kind == "customer":
            events.append(ev("message.received", at))
        elif kind in ("public", "internal"):
            events.append(ev("message.sent", at, visibility=kind))
        else:
            events.append(ev("ticket.updated", at, changes={"status": kind}))
    return events


def chat_events(steps):
    events = [ev("chat.started", 0)]
    for at, author in sorted(steps):
        extra = {"agent": "a1"} if author == "agent" else {}
        events.append(ev("chat.message", at, author=author, **extra))
    return events


def call_events(outcome):
    at, how = outcome
    events = [ev("call.queued", 0, queue="general")]
    if how == "answered":
        events.append(ev("call.answered", at, agent="a1"))
    elif how == "abandoned":
        events.append(ev("call.abandoned", at))
    else:
        events += [
            ev("call.transferred", at, to_queue="vip"),
            ev("call.answered", at + 5, agent="a"),
        ]
    return events


conversations = st.one_of(
    ticket_steps.map(ticket_events), chat_steps.map(chat_events), call_outcomes.map(call_events)
)


@st.composite
def deliveries(draw):
    """Events in any order, with duplicates, and watermark moves anywhere in between."""
    events = draw(conversations)
    order = draw(st.permutations(events))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=4))
    stream = list(order)
    for dup in duplicates:
        stream.insert(draw(st.integers(0, len(stream))), dup)
    plan = []
    for e in stream:
        if draw(st.booleans()):
            plan.append(("watermark", draw(st.integers(0, 6 * 3600))))
        plan.append(("event", e))
    plan.append(("watermark", 10 * 86400))
    return plan


def check_invariants(emitted) -> None:
    by_cycle = defaultdict(list)
    for e in emitted:
        by_cycle[(e.metric, e.cycle)].append(e)
    for (metric, cycle), events in by_cycle.items():
        kinds = [e.kind for e in events]
        assert len(kinds) == len(set(kinds)), (metric, cycle, kinds)
        finals = [k for k in kinds if k in (K.MET, K.MISSED, K.CANCELLED)]
        assert len(finals) <= 2, kinds
        if len(finals) == 2:  # only a missed verdict corrected to met, with a retraction
            assert finals == [K.MISSED, K.MET] and K.RETRACTED in kinds, kinds
        if K.MET in kinds and K.BREACHED in kinds:
            assert K.RETRACTED in kinds
            assert kinds.index(K.RETRACTED) < kinds.index(K.MET), kinds
        if K.CANCELLED in kinds:
            assert K.MET not in kinds and K.MISSED not in kinds, kinds
        for e in events:
            if e.kind in (K.MET, K.MISSED):
                # met if and only if the stop came within the target
                assert (e.kind is K.MET) == (e.elapsed_ms <= e.target_ms), e
                if metric is not Metric.RESOLUTION:  # never paused: working time = wall time
                    assert (e.kind is K.MET) == (e.at_ms <= e.due_ms), e
                    assert e.elapsed_ms == e.at_ms - e.started_ms
        if K.BREACHED in kinds and K.AT_RISK in kinds:
            assert kinds.index(K.AT_RISK) < kinds.index(K.BREACHED)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_no_order_breaks_the_invariants(plan) -> None:
    t = Timeline()
    for step, value in plan:
        if step == "event":
            t.send(value)
        else:
            t.to(value)
    check_invariants(t.emitted)
    assert t.deadline() is None or all(c.paused is False for c in t.state.open_cycles)


def first_reply_oracle(steps):
    """Independent: first public reply after creation, compared with the target."""
    public = sorted(at for at, kind in steps if kind == "public")
    closing = sorted(at for at, kind in steps if kind == "solved")
    if closing and (not public or closing[0] < public[0]):
        return "cancelled"
    if not public:
        return None
    target_s = POLICY.level("normal").targets_ms[Metric.FIRST_REPLY] / 1000
    return "met" if public[0] <= target_s else "missed"


@settings(max_examples=300, deadline=None)
@given(ticket_steps)
def test_in_order_with_an_honest_watermark_matches_the_oracle(steps) -> None:
    # Distinct times, so "in order" is one order.
    steps = list({at: (at, kind) for at, kind in steps}.values())
    t = Timeline()
    events = ticket_events(steps)
    for e in events:
        t.to_ms(e.occurred_at - 1)  # an honest watermark stays below every unread event
        t.send(e)
    t.to(10 * 86400)
    check_invariants(t.emitted)
    assert K.RETRACTED not in [e.kind for e in t.emitted]
    finals = [
        e.kind.value
        for e in t.emitted
        if e.metric is Metric.FIRST_REPLY and e.kind in (K.MET, K.MISSED, K.CANCELLED)
    ]
    expected = first_reply_oracle(steps)
    assert finals == ([] if expected is None else [expected]), (steps, t.kinds())
    breached = [e for e in t.emitted if e.kind is K.BREACHED and e.metric is Metric.FIRST_REPLY]
    if expected == "missed":
        assert len(breached) == 1
    if expected == "met":
        assert breached == []
