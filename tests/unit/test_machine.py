"""The SLA state machine, metric by metric, on an injected watermark (no sleeping)."""

from __future__ import annotations

import msgspec
import pytest

from slawatch.core.events import CONTEXT_CHANGE_KEYS, EVENT_CLASSES, TICKET_CHANGE_KEYS, TicketEvent
from slawatch.core.handlers import HANDLERS
from slawatch.core.machine import IllegalTransition, apply
from slawatch.core.sla import CancelReason, Metric, SlaEventKind
from slawatch.core.state import Context
from tests.unit.sla_harness import POLICY, T0, M, Timeline, ev

FR, NR, CR, CA, RES = (
    Metric.FIRST_REPLY,
    Metric.NEXT_REPLY,
    Metric.CHAT_REPLY,
    Metric.CALL_ANSWER,
    Metric.RESOLUTION,
)


def test_first_reply_met_before_at_risk() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.to(5 * 60)
    t.send(ev("message.sent", 6 * 60, visibility="public"))
    t.to(30 * 60)
    assert t.kinds(FR) == ["first_reply#1:met"]
    (met,) = [e for e in t.emitted if e.metric is FR]
    assert met.elapsed_ms == 6 * M and met.due_ms == T0 + 10 * M and met.target_ms == 10 * M


def test_first_reply_at_risk_then_met() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    assert t.deadline() == T0 + int(7.5 * M)  # 75 % of 10 min
    assert t.to(7.5 * 60)[0].kind is SlaEventKind.AT_RISK
    assert t.deadline() == T0 + 10 * M
    t.send(ev("message.sent", 9 * 60, visibility="public"))
    t.to(60 * 60)
    assert t.kinds(FR) == ["first_reply#1:at_risk", "first_reply#1:met"]


def test_first_reply_at_risk_then_breach_then_missed() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    assert t.to(7 * 60) == []
    t.to(8 * 60)
    breach = t.to(10 * 60)
    assert [e.kind for e in breach] == [SlaEventKind.BREACHED]
    assert breach[0].at_ms == T0 + 10 * M
    t.send(ev("message.sent", 15 * 60, visibility="public"))
    assert t.kinds(FR) == [
        "first_reply#1:at_risk",
        "first_reply#1:breached",
        "first_reply#1:missed",
    ]
    assert t.emitted[-1].elapsed_ms == 15 * M


def test_internal_notes_never_stop_a_reply_timer() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("message.sent", 60, visibility="internal"))
    t.to(10 * 60)
    assert t.kinds(FR) == ["first_reply#1:at_risk", "first_reply#1:breached"]


def test_breach_waits_for_the_watermark_not_the_event_count() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.to(9 * 60 + 59)
    assert "first_reply#1:breached" not in t.kinds()
    t.to(10 * 60)
    assert "first_reply#1:breached" in t.kinds()


def test_a_reply_that_occurred_before_due_is_met_however_late_it_arrives() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.to(9 * 60)  # at risk only: the watermark has not reached due
    t.send(ev("message.sent", 8 * 60, visibility="public"))
    t.to(60 * 60)
    assert t.kinds(FR) == ["first_reply#1:at_risk", "first_reply#1:met"]


def test_a_late_reply_retracts_a_breach_it_proves_wrong() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.to(11 * 60)  # a watermark past due (an event held longer than the grace)
    t.send(ev("message.sent", 9 * 60, visibility="public"))
    assert t.kinds(FR) == [
        "first_reply#1:at_risk",
        "first_reply#1:breached",
        "first_reply#1:retracted",
        "first_reply#1:met",
    ]


def test_a_late_earlier_reply_corrects_a_missed_verdict() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.to(12 * 60)
    t.send(ev("message.sent", 12 * 60, visibility="public"))  # recorded as missed
    t.send(ev("message.sent", 9 * 60, visibility="public"))  # but one came before due
    assert t.kinds(FR)[-3:] == [
        "first_reply#1:missed",
        "first_reply#1:retracted",
        "first_reply#1:met",
    ]


def test_next_reply_many_cycles_each_reported() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("message.sent", 60, visibility="public"))
    for n, start in enumerate((600, 5000, 9000), start=1):
        t.send(ev("message.received", start))
        t.send(ev("message.received", start + 30))  # a second message: same wait
        reply_after = 60 if n != 2 else 25 * 60  # the second cycle takes 25 min
        t.to(start + reply_after)
        t.send(ev("message.sent", start + reply_after, visibility="public"))
    finals = [k for k in t.kinds(NR) if k.endswith(("met", "missed"))]
    assert finals == ["next_reply#1:met", "next_reply#2:missed", "next_reply#3:met"]


def test_customer_message_before_the_first_reply_is_part_of_the_first_wait() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("message.received", 30))
    t.send(ev("message.sent", 120, visibility="public"))
    assert t.kinds(NR) == []
    assert t.kinds(FR) == ["first_reply#1:met"]


def test_agent_opened_ticket_waits_for_the_customer() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, opened_by="agent"))
    t.to(3600)
    assert t.kinds(FR) == []
    t.send(ev("message.received", 4000), ev("message.sent", 4100, visibility="public"))
    assert t.kinds(FR) == ["first_reply#1:met"]
    assert t.emitted[-1].started_ms == T0 + 4000 * 1000


def test_urgent_priority_uses_its_own_target() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, priority="urgent"))
    assert t.to(120)[-1].kind is SlaEventKind.BREACHED


def test_resolution_pauses_while_pending_and_resumes() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.send(ev("ticket.updated", 20 * 60, changes={"status": "pending"}))
    # first reply still counts (at risk at 7.5 min); resolution is paused
    assert t.deadline() == T0 + int(7.5 * M)
    t.send(ev("message.sent", 5 * 60, visibility="public"))
    assert t.deadline() is None
    t.to(10 * 3600)  # ten hours pending: no resolution breach
    assert t.kinds(RES) == []
    t.send(ev("ticket.updated", 10 * 3600, changes={"status": "open"}))
    # 20 minutes used, 40 remain (at risk after 45 min of working time: 25 more)
    assert t.deadline() == T0 + 10 * 3600 * 1000 + 25 * M
    t.send(ev("ticket.updated", 10 * 3600 + 30 * 60, changes={"status": "solved"}))
    (met,) = [e for e in t.emitted if e.metric is RES]
    assert met.kind is SlaEventKind.MET and met.elapsed_ms == 50 * M


def test_on_hold_also_pauses_and_a_created_pending_ticket_starts_paused() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, status="pending"))
    t.to(5 * 3600)
    assert t.kinds(RES) == []
    t.send(ev("ticket.updated", 5 * 3600, changes={"status": "open"}))
    t.send(ev("ticket.updated", 5 * 3600 + 60, changes={"status": "on_hold"}))
    t.to(50 * 3600)
    assert t.kinds(RES) == []


def test_reopen_resumes_resolution_with_the_time_used() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("ticket.updated", 30 * 60, changes={"status": "solved"}))
    t.send(ev("ticket.updated", 5 * 3600, changes={"status": "open"}))
    assert t.state.open_cycle(RES).used_ms == 30 * M
    t.to(5 * 3600 + 30 * 60)
    assert t.kinds(RES) == [
        "resolution#1:met",
        "resolution#2:at_risk",
        "resolution#2:breached",
    ]


def test_solving_cancels_open_reply_cycles_and_closing_cancels_everything() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("ticket.updated", 60, changes={"status": "solved"}))
    assert t.kinds() == ["first_reply#1:cancelled", "resolution#1:met"]
    assert t.emitted[0].reason is CancelReason.SOLVED
    t2 = Timeline()
    t2.send(ev("ticket.created", 0), ev("ticket.updated", 60, changes={"status": "closed"}))
    assert sorted(t2.kinds()) == ["first_reply#1:cancelled", "resolution#1:cancelled"]
    t2.send(ev("message.received", 120))
    t2.to(10**6)
    assert len(t2.emitted) == 2  # a closed ticket counts nothing more


def test_deleting_cancels_every_open_timer() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("ticket.updated", 60, changes={"deleted": True}))
    assert {e.reason for e in t.emitted} == {CancelReason.DELETED}
    assert t.deadline() is None


def test_duplicates_change_nothing() -> None:
    t = Timeline()
    created = ev("ticket.created", 0)
    reply = ev("message.sent", 60, visibility="public")
    t.send(created, reply, created, reply)
    assert t.kinds(FR) == ["first_reply#1:met"]
    customer = ev("message.received", 600)
    t.send(customer)
    t.send(ev("message.sent", 700, visibility="public"))
    t.send(customer)  # a duplicate of the message that opened next reply #1
    assert t.kinds(NR) == ["next_reply#1:met"]
    assert t.state.open_cycle(NR) is None


def test_out_of_order_reply_before_creation() -> None:
    t = Timeline()
    t.send(ev("message.sent", 120, visibility="public"), ev("ticket.created", 0))
    assert t.kinds(FR) == ["first_reply#1:met"]
    assert t.emitted[0].elapsed_ms == 2 * M


def test_out_of_order_customer_message_after_its_reply() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0), ev("message.sent", 60, visibility="public"))
    t.send(ev("message.sent", 900, visibility="public"), ev("message.received", 600))
    assert t.kinds(NR) == ["next_reply#1:met"]
    assert t.emitted[-1].elapsed_ms == 5 * M


def test_chat_reply_cycles_and_a_chat_that_ends_while_the_customer_waits() -> None:
    t = Timeline()
    t.send(ev("chat.started", 0), ev("chat.message", 2, author="customer"))
    t.send(ev("chat.message", 20, author="agent", agent="a1"))
    t.send(ev("chat.message", 30, author="customer"))
    t.to(30 + 60)
    t.send(ev("chat.message", 100, author="agent", agent="a1"))
    t.send(ev("chat.message", 110, author="customer"))
    t.send(ev("chat.ended", 130, ended_by="customer"))
    assert t.kinds(CR) == [
        "chat_reply#1:met",
        "chat_reply#2:at_risk",
        "chat_reply#2:breached",
        "chat_reply#2:missed",
        "chat_reply#3:cancelled",
    ]
    assert t.emitted[-1].reason is CancelReason.CHAT_ENDED
    assert t.state.context.assignee == "a1"


def test_chat_that_ends_after_due_while_waiting_is_missed() -> None:
    t = Timeline()
    t.send(ev("chat.started", 0), ev("chat.message", 1, author="customer"))
    t.send(ev("chat.ended", 100, ended_by="customer"))
    assert t.kinds(CR) == ["chat_reply#1:missed"]


@pytest.mark.parametrize(
    ("hang_up_s", "expected", "reason"),
    [
        (3, "cancelled", CancelReason.SHORT_ABANDON),
        (15, "cancelled", CancelReason.ABANDONED_BEFORE_DUE),
        (45, "missed", None),
    ],
)
def test_abandoned_calls(hang_up_s, expected, reason) -> None:
    t = Timeline()
    t.send(ev("call.queued", 0, queue="general"))
    t.send(ev("call.abandoned", hang_up_s))
    assert t.emitted[-1].kind.value == expected
    assert t.emitted[-1].reason is reason


def test_call_answered_within_target_and_transferred_to_another_queue() -> None:
    t = Timeline()
    t.send(ev("call.queued", 0, queue="general"), ev("call.answered", 12, agent="a2"))
    t.send(ev("call.transferred", 200, to_queue="vip"))
    assert t.state.context.queue == "vip"
    t.to(200 + 20)
    t.send(ev("call.answered", 230, agent="a3"), ev("call.ended", 400))
    assert t.kinds(CA) == [
        "call_answer#1:met",
        "call_answer#2:at_risk",
        "call_answer#2:breached",
        "call_answer#2:missed",
    ]


def test_transfer_while_queued_cancels_the_old_queue_cycle() -> None:
    t = Timeline()
    t.send(ev("call.queued", 0, queue="general"), ev("call.transferred", 8, to_queue="vip"))
    assert t.kinds(CA) == ["call_answer#1:cancelled"]
    assert t.emitted[0].reason is CancelReason.TRANSFERRED
    assert t.state.open_cycle(CA).started_ms == T0 + 8000


def test_ids_are_stable_per_conversation_metric_cycle_and_kind() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))
    t.to(3600)
    ids = [e.event_id for e in t.emitted]
    assert len(ids) == len(set(ids))
    assert ids[0] == "ticket::X-1|first_reply|1|at_risk"
    assert all(e.policy_version == POLICY.version for e in t.emitted)


def test_breach_carries_context_and_detection_delay() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, department="billing", assignee="a9"))
    t.watermark_ms = T0 + 10 * M + 400
    t.to(0)
    breach = next(e for e in t.emitted if e.kind is SlaEventKind.BREACHED)
    assert breach.context.department == "billing" and breach.context.assignee == "a9"
    assert breach.detection_delay_ms == 400


def test_events_of_another_kind_are_illegal() -> None:
    state, _ = apply(None, ev("ticket.created", 0), POLICY, T0)
    call = ev("call.queued", 1)
    msgspec.structs.force_setattr(call, "call_id", "X-1")
    with pytest.raises(IllegalTransition):
        apply(state, call, POLICY, T0)


def test_duplicates_older_than_the_window_are_absorbed_too() -> None:
    t = Timeline()
    created = ev("ticket.created", 0)
    first_customer = ev("message.received", 100)
    t.send(created, ev("message.sent", 60, visibility="public"), first_customer)
    t.send(ev("message.sent", 200, visibility="public"))
    for n in range(20):  # push the originals out of the dedup window
        t.send(ev("ticket.updated", 300 + n, changes={"priority": "normal"}))
    t.send(ev("ticket.updated", 400, changes={"status": "solved"}))
    before = list(t.kinds())
    t.send(created, first_customer)
    t.to(10**6)
    assert t.kinds() == before
    call = Timeline()
    queued = ev("call.queued", 0, queue="general")
    call.send(queued, ev("call.answered", 5, agent="a"))
    for n in range(20):
        call.send(ev("call.transferred", 10 + n, to_queue=None, to_agent=f"a{n}"))
    call.send(queued)
    call.to(10**6)
    assert call.kinds(CA) == ["call_answer#1:met"]


def test_every_event_class_has_its_handler() -> None:
    assert set(HANDLERS) == set(EVENT_CLASSES)


def test_an_event_class_without_a_handler_is_illegal() -> None:
    class TicketMerged(TicketEvent, frozen=True, kw_only=True):
        pass

    state, _ = apply(None, ev("ticket.created", 0), POLICY, T0)
    merged = TicketMerged(schema_version=1, event_id="m-1", occurred_at=T0, ticket_id="X-1")
    assert merged.type == "ticket.merged"
    with pytest.raises(IllegalTransition, match=r"ticket\.merged"):
        apply(state, merged, POLICY, T0)


def test_every_ticket_change_names_a_context_field() -> None:
    assert set(TICKET_CHANGE_KEYS) <= set(Context.__struct_fields__)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("priority", "urgent"), ("channel", "web"), ("department", "billing"),
        ("assignee", "a7"), ("assignee_status", "away"), ("customer_group", "vip"),
        ("referrer_url", "https://example.com/help"),
    ],
)  # fmt: skip
def test_a_ticket_update_sets_each_context_change_as_it_is(key: str, value: str) -> None:
    assert key in CONTEXT_CHANGE_KEYS
    t = Timeline()
    t.send(ev("ticket.created", 0, department="sales", assignee="a1", customer_group="smb"))
    t.send(ev("ticket.updated", 60, changes={key: value}))
    assert t.state is not None and getattr(t.state.context, key) == value
    if key not in ("priority", "channel"):  # these cannot be cleared
        t.send(ev("ticket.updated", 120, changes={key: None}))
        assert getattr(t.state.context, key) is None
