"""SLA levels in the state machine: rules choose the level, a level change moves the open
cycles (level_changed), business calendars set due, a reloaded policy takes over at the
next rule evaluation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from slawatch.core.business_hours import BusinessCalendar
from slawatch.core.policy import SlaLevel, SlaPolicy
from slawatch.core.rules import AnyOf, Rule, RuleSet, Test
from slawatch.core.sla import CancelReason, Metric, SlaEventKind
from slawatch.storage.state_codec import decode_state, encode_state
from tests.unit.sla_harness import POLICY, T0, M, S, Timeline, ev

FR, NR, CR, CA, RES = (
    Metric.FIRST_REPLY,
    Metric.NEXT_REPLY,
    Metric.CHAT_REPLY,
    Metric.CALL_ANSWER,
    Metric.RESOLUTION,
)
H = 60 * M
NY = ZoneInfo("America/New_York")
#: Monday 2026-11-23 09:00 New York: the tests below count business hours from here.
MONDAY_9 = int(datetime(2026, 11, 23, 9, 0, tzinfo=NY).timestamp() * 1000)
OFFICE = BusinessCalendar("office", "America/New_York", {d: [(9 * 60, 17 * 60)] for d in range(5)})


def _policy(version: str = "levels-1", *, office_targets: dict[Metric, int] | None = None):
    """vip (24x7, short), office (business hours), calls-only (no ticket metrics)."""
    levels = {
        "vip": SlaLevel("vip", {FR: 2 * M, NR: 4 * M, RES: 30 * M, CR: 20 * S, CA: 10 * S}),
        "office": SlaLevel(
            "office",
            office_targets or {FR: 8 * H, NR: 8 * H, RES: 24 * H, CR: 60 * S, CA: 20 * S},
            calendar=OFFICE,
        ),
        "calls-only": SlaLevel("calls-only", {CA: 30 * S}),
    }
    rules = RuleSet(
        [
            Rule(
                "vip customers",
                AnyOf((Test("customer_group", "equals", "vip"), Test("queue", "equals", "gold"))),
                "vip",
                stop=True,
            ),
            Rule("no ticket sla", Test("tags", "contains", "no-sla"), "calls-only"),
        ],
        default_level="office",
    )
    return SlaPolicy(version=version, levels=levels, rules=rules)


def at(ms: int) -> float:
    """Seconds after T0 for the harness's ``ev``/``to``."""
    return (ms - T0) / 1000


def test_the_rules_pick_the_level_at_creation_and_every_event_carries_it() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, priority="urgent"))
    t.to(3 * 60)
    breach = next(e for e in t.emitted if e.kind is SlaEventKind.BREACHED)
    assert breach.metric is FR and breach.due_ms == T0 + 2 * M  # urgent: 2 min
    assert {e.context.level for e in t.emitted} == {"urgent"}
    assert not any(e.kind is SlaEventKind.LEVEL_CHANGED for e in t.emitted)


def test_an_upgrade_moves_due_and_says_level_changed() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0))  # normal: first reply 10 min
    changed = t.send(ev("ticket.updated", 60, changes={"priority": "urgent"}))
    by_metric = {e.metric: e for e in changed}
    assert set(by_metric) == {FR, RES}
    fr = by_metric[FR]
    assert fr.kind is SlaEventKind.LEVEL_CHANGED and fr.previous_level == "normal"
    assert fr.context.level == "urgent"
    # Same start, one minute used on the old level, the rest of 2 minutes on the new one.
    assert fr.started_ms == T0 and fr.due_ms == T0 + 2 * M and fr.elapsed_ms == 1 * M
    assert fr.event_id.endswith(f"|level_changed@{T0 + M}")
    t.to(2 * 60)
    t.send(ev("message.sent", 3 * 60, visibility="public"))
    assert t.kinds(FR) == [
        "first_reply#1:level_changed",
        "first_reply#1:at_risk",
        "first_reply#1:breached",
        "first_reply#1:missed",
    ]


def test_a_downgrade_after_a_breach_retracts_it_when_the_reply_is_in_time() -> None:
    t = Timeline()
    t.send(ev("ticket.created", 0, priority="urgent"))
    t.to(3 * 60)
    assert "first_reply#1:breached" in t.kinds(FR)
    t.send(ev("ticket.updated", 4 * 60, changes={"priority": "normal"}))
    t.send(ev("message.sent", 5 * 60, visibility="public"))
    assert t.kinds(FR)[-3:] == [
        "first_reply#1:level_changed",
        "first_reply#1:retracted",
        "first_reply#1:met",
    ]
    met = t.emitted[-1]
    assert met.due_ms == T0 + 10 * M and met.elapsed_ms == 5 * M


def test_a_level_that_does_not_track_a_metric_cancels_its_cycle() -> None:
    t = Timeline(_policy())
    t.send(ev("ticket.created", at(MONDAY_9)))
    out = t.send(ev("ticket.updated", at(MONDAY_9 + H), changes={"tags": ["no-sla"]}))
    assert {(e.metric, e.kind, e.reason) for e in out} == {
        (FR, SlaEventKind.CANCELLED, CancelReason.LEVEL_CHANGED),
        (RES, SlaEventKind.CANCELLED, CancelReason.LEVEL_CHANGED),
    }
    assert all(e.elapsed_ms == H for e in out)
    assert t.state is not None and t.state.open_cycles == ()


def test_business_hours_set_due_and_a_change_to_24x7_credits_the_time_used() -> None:
    t = Timeline(_policy())
    friday_4pm = MONDAY_9 + 4 * 24 * H + 7 * H
    t.send(ev("ticket.created", at(friday_4pm)))
    assert t.state is not None
    fr = t.state.open_cycle(FR)
    assert fr is not None
    # 1 h on Friday, 7 h on Monday: due Monday 16:00 (the weekend does not count).
    assert fr.due_ms == MONDAY_9 + 7 * 24 * H + 7 * H
    # Saturday 10:00: the customer turns out to be a VIP (24x7, 2 min first reply). One
    # business hour was used (Friday 16:00-17:00): more than 2 min, so due is now.
    saturday_10 = friday_4pm + 18 * H
    out = t.send(ev("ticket.updated", at(saturday_10), changes={"customer_group": "vip"}))
    moved = next(e for e in out if e.metric is FR)
    assert moved.kind is SlaEventKind.LEVEL_CHANGED and moved.elapsed_ms == H
    assert moved.due_ms == saturday_10 and moved.at_risk_ms == saturday_10
    t.to_ms(saturday_10)
    assert t.kinds(FR)[-2:] == ["first_reply#1:at_risk", "first_reply#1:breached"]


def test_elapsed_counts_business_time_only() -> None:
    t = Timeline(_policy())
    t.send(ev("ticket.created", at(MONDAY_9 + 7 * H)))  # Monday 16:00
    t.send(ev("message.sent", at(MONDAY_9 + 24 * H + H), visibility="public"))  # Tue 10:00
    (met,) = [e for e in t.emitted if e.metric is FR]
    assert met.kind is SlaEventKind.MET and met.elapsed_ms == 2 * H


def test_chats_and_calls_go_through_the_same_rules() -> None:
    t = Timeline(_policy())
    t.send(ev("call.queued", at(MONDAY_9), queue="gold"))
    assert t.state is not None and t.state.context.level == "vip"
    assert t.state.open_cycles[0].target_ms == 10 * S
    # Transferred to an ordinary queue: the new cycle runs on the default (office) level.
    t.send(ev("call.transferred", at(MONDAY_9) + 5, to_queue="general"))
    assert t.state.context.level == "office" and t.state.open_cycles[0].target_ms == 20 * S
    chat = Timeline(_policy())
    chat.send(ev("chat.started", at(MONDAY_9), customer_group="vip"))
    chat.send(ev("chat.message", at(MONDAY_9) + 1, author="customer"))
    assert chat.state is not None and chat.state.open_cycles[0].target_ms == 20 * S


def test_custom_fields_merge_and_last_message_age_is_event_time() -> None:
    levels = {
        "normal": SlaLevel("normal", {FR: 10 * M, NR: 20 * M, RES: 60 * M}),
        "gold": SlaLevel("gold", {FR: 5 * M, NR: 5 * M, RES: 30 * M}),
        "stale": SlaLevel("stale", {NR: 2 * M, RES: 60 * M}),
    }
    rules = RuleSet(
        [
            Rule("gold plan", Test("custom_fields.plan", "equals", "gold"), "gold"),
            Rule("waiting customer", Test("last_message.age", "greater", 30 * M), "stale"),
        ],
        default_level="normal",
    )
    t = Timeline(SlaPolicy("cf-1", levels, rules))
    t.send(ev("ticket.created", 0, custom_fields={"region": "eu"}))
    t.send(ev("ticket.updated", 60, changes={"custom_fields": {"plan": "gold"}}))
    assert t.state is not None and t.state.context.level == "gold"
    assert dict(t.state.context.custom_fields) == {"region": "eu", "plan": "gold"}
    t.send(ev("message.received", 120))
    t.send(ev("ticket.updated", 120 + 29 * 60, changes={"status": "open"}))
    assert t.state.context.level == "gold"  # the last message is 29 min old
    t.send(ev("ticket.updated", 120 + 31 * 60, changes={"status": "open"}))
    assert t.state.context.level == "stale"  # 31 min: the later rule wins (no stop)
    # the state with every rule attribute survives the table codec
    assert decode_state(encode_state(t.state, None)) == t.state


def test_a_reloaded_policy_takes_over_open_cycles_at_the_next_rule_evaluation() -> None:
    old = _policy("v1")
    new = _policy("v2", office_targets={FR: 4 * H, NR: 4 * H, RES: 12 * H, CR: 60 * S})
    t = Timeline(old)
    t.send(ev("ticket.created", at(MONDAY_9)))
    t.policy = new
    t.send(ev("message.received", at(MONDAY_9) + 60))  # not a rule evaluation
    assert t.state is not None
    fr = t.state.open_cycle(FR)
    assert fr is not None and fr.policy_version == "v1" and fr.target_ms == 8 * H
    out = t.send(ev("ticket.updated", at(MONDAY_9 + H), changes={"status": "open"}))
    assert out == []  # same level name: rescheduled without a level_changed
    fr = t.state.open_cycle(FR)
    assert fr is not None and fr.policy_version == "v2" and fr.due_ms == MONDAY_9 + 4 * H
    t.send(ev("message.sent", at(MONDAY_9 + 2 * H), visibility="public"))
    met = t.emitted[-1]
    assert met.kind is SlaEventKind.MET and met.policy_version == "v2"


def test_policy_events_keep_the_version_that_scheduled_the_cycle() -> None:
    t = Timeline(POLICY)
    t.send(ev("ticket.created", 0))
    t.to(60 * 60)
    versions = {e.policy_version for e in t.emitted}
    assert versions == {POLICY.version}


def test_the_last_message_is_remembered_on_every_path() -> None:
    # An agent opened the ticket: the customer's first message starts first reply and is
    # the last message (the rules' last_message.* fields) at the same time.
    t = Timeline()
    t.send(ev("ticket.created", 0, opened_by="agent"))
    t.send(ev("message.received", 60))
    assert t.state is not None
    context = t.state.context
    assert (context.last_message_author, context.last_message_ms) == ("customer", T0 + 60_000)
    t.send(ev("message.sent", 120, visibility="internal"))  # a note is not a message
    t.send(ev("message.sent", 90, visibility="public"))
    assert t.state.context.last_message_author == "agent"
    t.send(ev("message.received", 80))  # older than the last one: it stays the agent's
    assert t.state.context.last_message_ms == T0 + 90_000


def test_an_update_read_before_the_creation_keeps_its_changed_time() -> None:
    t = Timeline()
    t.send(ev("ticket.updated", 120, changes={"tags": ["vip"]}))
    t.send(ev("ticket.created", 0))
    assert t.state is not None
    assert (t.state.context.created_ms, t.state.context.changed_ms) == (T0, T0 + 120_000)
