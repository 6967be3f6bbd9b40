from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slawatch.core.machine import advance, next_deadline
from slawatch.storage.state_codec import deadline_of, decode_state, encode_state
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
