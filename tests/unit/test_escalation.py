"""The escalation planner (slawatch/alerting/escalation.py), on an injected clock.

The issue's example: at_risk -> the team; breached -> on-call; still open 15 minutes later
-> the manager; a repeat while open; met -> one resolve to each receiver alerted, and only
to them. Also: retractions, ``continue``, one-off notices, duplicates, and (Hypothesis)
the invariants over any sequence of records and ticks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slawatch.alerting.config import RoutingConfig, parse_routing
from slawatch.alerting.escalation import AlertState, Plan, cycle_id_of, plan, tick
from slawatch.core.sla import SlaEventKind
from slawatch.schemas.sla_events import SlaEventRecord

M = 60_000
T0 = 1_795_000_000_000
CYCLE = "ticket:acme:48213|first_reply|1"

ROUTING = """\
receivers:
  team: {type: slack, webhook_url: {env: SLACK}}
  oncall: {type: pagerduty, routing_key: {env: PD}}
  manager: {type: email, to: [m@example.com], from: s@example.com, smtp: "smtp.example.com:25"}
  audit: {type: webhook, url: "https://audit.example.com/"}
  ops: {type: webhook, url: "https://ops.example.com/"}
routes:
  - name: billing
    match: {department: billing, metric: [first_reply, resolution]}
    escalation:
      - {on: at_risk, to: [team]}
      - {on: breached, to: [oncall], repeat: 30m}
      - {on: breached, after: 15m, to: [manager]}
      - {on: missed, to: [ops]}
    continue: true
  - name: audit
    match: {kind: [breached, level_changed]}
    escalation:
      - {on: breached, to: [audit]}
      - {on: level_changed, to: [audit]}
  - name: never
    escalation:
      - {on: breached, to: [ops]}
"""


@pytest.fixture(scope="module")
def config() -> RoutingConfig:
    return parse_routing(ROUTING, "r.yaml", env={"SLACK": "https://hooks.example.com/x", "PD": "k"})


def record(kind: str, at_ms: int = T0, **fields: Any) -> SlaEventRecord:
    suffix = f"{kind}@{at_ms}" if kind == "level_changed" else kind
    values: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"{CYCLE}|{suffix}",
        "kind": kind,
        "metric": "first_reply",
        "cycle": 1,
        "conversation_key": "ticket:acme:48213",
        "conversation_kind": "ticket",
        "conversation_id": "48213",
        "tenant": "acme",
        "priority": "high",
        "department": "billing",
        "level": "high",
        "policy_version": "p1",
        "target_s": 3600.0,
        "started_at": "2026-11-22T09:00:00.000Z",
        "due_at": "2026-11-22T10:00:00.000Z",
        "at_risk_at": "2026-11-22T09:45:00.000Z",
        "at": "2026-11-22T10:00:00.000Z",
        "elapsed_s": 3600.0,
        "detected_at": "2026-11-22T10:00:00.500Z",
        "detection_delay_ms": 500,
        "late": False,
    }
    values.update(fields)
    return SlaEventRecord(**values)


def sent(p: Plan) -> list[tuple[str, str, str]]:
    return [(n.kind, n.receiver, n.step) for n in p.notifications]


def test_the_issue_example_on_an_injected_clock(config: RoutingConfig) -> None:
    p = plan(config, None, record("at_risk"), T0)
    assert sent(p) == [("trigger", "team", "billing.1")]
    assert p.notifications[0].id == f"{CYCLE}|team|billing.1|trigger"
    assert p.next_wake_ms is None

    breached = T0 + 15 * M
    p = plan(config, p.state, record("breached"), breached)
    assert sent(p) == [("trigger", "oncall", "billing.2"), ("trigger", "audit", "audit.1")]
    assert p.next_wake_ms == breached + 15 * M  # the manager's step

    p = tick(config, p.state, breached + 15 * M - 1)
    assert sent(p) == [] and p.next_wake_ms == breached + 15 * M
    p = tick(config, p.state, breached + 15 * M)
    assert sent(p) == [("trigger", "manager", "billing.3")]
    assert p.next_wake_ms == breached + 30 * M  # on-call's repeat
    p = tick(config, p.state, breached + 30 * M)
    assert sent(p) == [("repeat", "oncall", "billing.2")]
    assert p.notifications[0].id == f"{CYCLE}|oncall|billing.2|repeat-1"
    assert p.next_wake_ms == breached + 60 * M

    p = plan(config, p.state, record("met"), breached + 40 * M)
    assert sent(p) == [
        ("resolve", "team", "resolve"),
        ("resolve", "oncall", "resolve"),
        ("resolve", "audit", "resolve"),
        ("resolve", "manager", "resolve"),
    ]  # in the order they were alerted; not ops, which never was
    assert {n.id for n in p.notifications} == {
        f"{CYCLE}|{r}|resolve" for r in ("team", "oncall", "manager", "audit")
    }
    assert p.notifications[0].record.kind == "met"
    assert not p.state.open and p.next_wake_ms is None
    assert sent(tick(config, p.state, breached + 10_000 * M)) == []
    assert sent(plan(config, p.state, record("breached"), breached + 50 * M)) == []


def test_met_before_the_delay_never_reaches_the_manager(config: RoutingConfig) -> None:
    p = plan(config, None, record("breached"), T0)
    p = plan(config, p.state, record("met"), T0 + 14 * M)
    assert sent(p) == [("resolve", "oncall", "resolve"), ("resolve", "audit", "resolve")]
    assert sent(tick(config, p.state, T0 + 15 * M)) == []


def test_a_retraction_resolves_and_the_met_after_it_sends_nothing(config: RoutingConfig) -> None:
    p = plan(config, None, record("breached"), T0)
    p = tick(config, p.state, T0 + 15 * M)
    p = plan(config, p.state, record("retracted"), T0 + 20 * M)
    assert sent(p) == [
        ("resolve", "oncall", "resolve"),
        ("resolve", "audit", "resolve"),
        ("resolve", "manager", "resolve"),
    ]
    assert sent(plan(config, p.state, record("met"), T0 + 20 * M)) == []


def test_missed_is_a_notice_to_those_not_alerted_and_a_resolve_to_the_others(
    config: RoutingConfig,
) -> None:
    p = plan(config, None, record("at_risk"), T0)
    p = plan(config, p.state, record("missed"), T0 + M)
    assert sent(p) == [("notice", "ops", "billing.4"), ("resolve", "team", "resolve")]
    assert p.notifications[0].id == f"{CYCLE}|ops|billing.4|missed"


def test_cancelled_with_nobody_alerted_sends_nothing(config: RoutingConfig) -> None:
    p = plan(config, None, record("cancelled", reason="closed"), T0)
    assert sent(p) == [] and not p.state.open


def test_level_changes_are_notices_each_with_its_own_id(config: RoutingConfig) -> None:
    p = plan(config, None, record("level_changed", T0, previous_level="normal"), T0)
    p = plan(config, p.state, record("level_changed", T0 + M, previous_level="high"), T0 + M)
    p2 = plan(config, p.state, record("level_changed", T0 + M), T0 + 2 * M)  # a duplicate
    assert sent(p2) == []
    assert [n.id for n in p.notifications] == [f"{CYCLE}|audit|audit.2|level_changed@{T0 + M}"]
    assert p.state.alerted == ()  # a notice opens nothing to resolve


def test_continue_and_the_first_route_without_it(config: RoutingConfig) -> None:
    # billing continues to audit; audit stops the search, so "never" is never reached.
    p = plan(config, None, record("breached"), T0)
    assert {n.receiver for n in p.notifications} == {"oncall", "audit"}
    # not billing: audit applies and stops.
    p = plan(config, None, record("breached", department="sales"), T0)
    assert sent(p) == [("trigger", "audit", "audit.1")]
    # neither billing nor audit (at_risk): "never" has no step on at_risk.
    assert sent(plan(config, None, record("at_risk", department="sales"), T0)) == []
    # a missing value matches nothing
    p = plan(config, None, record("at_risk", department=None), T0)
    assert sent(p) == []


def test_a_record_seen_twice_sends_nothing_twice(config: RoutingConfig) -> None:
    p = plan(config, None, record("breached"), T0)
    again = plan(config, p.state, record("breached"), T0 + 5 * M)
    assert sent(again) == [] and again.state.timers == p.state.timers


def test_repeats_missed_while_down_are_not_sent_late(config: RoutingConfig) -> None:
    p = plan(config, None, record("breached"), T0)
    p = tick(config, p.state, T0 + 95 * M)  # the manager's trigger and one repeat, slot 3
    assert sent(p) == [("trigger", "manager", "billing.3"), ("repeat", "oncall", "billing.2")]
    assert p.notifications[1].id.endswith("|repeat-3")
    assert p.next_wake_ms == T0 + 120 * M


def test_a_delayed_step_with_a_repeat(config: RoutingConfig) -> None:
    routing = ROUTING.replace("{on: breached, after: 15m, to: [manager]}",
                              "{on: breached, after: 15m, to: [manager], repeat: 1h}")  # fmt: skip
    cfg = parse_routing(routing, "r.yaml", env={"SLACK": "https://h.example.com/", "PD": "k"})
    p = plan(cfg, None, record("breached"), T0)
    p = tick(config, p.state, T0 + 15 * M)
    assert ("trigger", "manager", "billing.3") in sent(p)
    p = tick(config, p.state, T0 + 75 * M)
    assert ("repeat", "manager", "billing.3") in sent(p)
    assert f"{CYCLE}|manager|billing.3|repeat-1" in {n.id for n in p.notifications}


def test_a_state_belongs_to_one_cycle(config: RoutingConfig) -> None:
    assert cycle_id_of(f"{CYCLE}|level_changed@5") == CYCLE
    p = plan(config, None, record("breached"), T0)
    other = record("met", event_id="ticket:acme:1|first_reply|1|met")
    with pytest.raises(ValueError, match="cycle"):
        plan(config, p.state, other, T0)


KINDS = [k.value for k in SlaEventKind]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.sampled_from(KINDS), st.sampled_from(["billing", "sales"])),
        st.tuples(st.just("tick"), st.integers(0, 120), st.just("")),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
def test_invariants(config: RoutingConfig, steps: list[tuple[str, Any, str]]) -> None:
    """Never a resolve without an earlier trigger to that receiver; each id at most once;
    nothing after the cycle ends; each receiver alerted gets exactly one resolve when it
    ends; the next wake is always in the future."""
    state: AlertState | None = None
    now = T0
    ids: set[str] = set()
    triggered: set[str] = set()
    resolved: list[str] = []
    ended = False
    for what, arg, department in steps:
        if what == "tick":
            now += arg * M
            if state is None:
                continue
            p = tick(config, state, now)
        else:
            fields: dict[str, Any] = {"department": department}
            if arg == "cancelled":
                fields["reason"] = "closed"
            p = plan(config, state, record(arg, now, **fields), now)
        if ended:
            assert p.notifications == ()
        for n in p.notifications:
            assert n.id not in ids
            ids.add(n.id)
            if n.kind == "trigger":
                triggered.add(n.receiver)
            elif n.kind == "resolve":
                assert n.receiver in triggered
                resolved.append(n.receiver)
            elif n.kind == "repeat":
                assert n.receiver in triggered
        state = p.state
        assert p.next_wake_ms is None or p.next_wake_ms > now
        if what == "record" and arg in ("met", "missed", "cancelled", "retracted"):
            ended = True
            assert sorted(resolved) == sorted(triggered) and len(set(resolved)) == len(resolved)
            assert not state.open and p.next_wake_ms is None
    if state is not None and not ended:
        assert resolved == [] and set(state.alerted) == triggered


def test_the_state_is_frozen(config: RoutingConfig) -> None:
    p = plan(config, None, record("breached"), T0)
    with pytest.raises(AttributeError):
        p.state.open = False  # type: ignore[misc]
    assert replace(p.state, open=False).open is False


def test_an_open_alert_is_sent_to_alertmanager_again_until_it_resolves() -> None:
    """Alertmanager ends an alert not sent again within its resolve_timeout: while the
    cycle is open, the trigger goes again every minute (to Alertmanager receivers only)."""
    am = parse_routing(
        """\
receivers:
  am: {type: alertmanager, url: "http://alertmanager:9093"}
  hook: {type: webhook, url: "https://hooks.example.com/"}
routes:
  - escalation:
      - {on: breached, to: [am, hook]}
      - {on: breached, after: 10m, to: [am]}
""",
        "r.yaml",
        env={},
    )
    p = plan(am, None, record("breached"), T0)
    assert sent(p) == [("trigger", "am", "route-1.1"), ("trigger", "hook", "route-1.1")]
    assert p.next_wake_ms == T0 + M
    p = tick(am, p.state, T0 + M)
    assert sent(p) == [("repeat", "am", "route-1.1~refresh")]
    p = tick(am, p.state, T0 + 10 * M)  # the delayed step's trigger, and a refresh
    assert sorted(sent(p)) == [("repeat", "am", "route-1.1~refresh"),
                               ("trigger", "am", "route-1.2")]  # fmt: skip
    p = tick(am, p.state, T0 + 11 * M)
    assert sorted(sent(p)) == [("repeat", "am", "route-1.1~refresh"),
                               ("repeat", "am", "route-1.2~refresh")]  # fmt: skip
    p = plan(am, p.state, record("met"), T0 + 12 * M)
    assert sent(p) == [("resolve", "am", "resolve"), ("resolve", "hook", "resolve")]
    assert p.next_wake_ms is None


HOURS_ROUTING = """\
calendars:
  office:
    time_zone: Europe/London
    hours: {mon-fri: ["09:00-17:00"]}
receivers:
  team: {type: slack, webhook_url: {env: SLACK}, hours: {calendar: office}}
  manager:
    type: email
    to: [m@example.com]
    from: s@example.com
    smtp: "smtp.example.com:25"
    hours: {calendar: office, outside: oncall}
  oncall: {type: pagerduty, routing_key: {env: PD}}
routes:
  - escalation:
      - {on: at_risk, to: [team], repeat: 1h}
      - {on: breached, to: [manager]}
"""
# Saturday 2026-11-21 10:00 in London (UTC in winter); Monday 09:00 is 2026-11-23T09:00Z.
SATURDAY = 1_795_255_200_000
MONDAY_9 = 1_795_424_400_000


def test_receivers_outside_their_hours_wait_or_fall_back() -> None:
    hours = parse_routing(
        HOURS_ROUTING, "r.yaml", env={"SLACK": "https://hooks.example.com/x", "PD": "k"}
    )
    p = plan(hours, None, record("at_risk"), SATURDAY)
    (team,) = p.notifications
    assert (team.receiver, team.not_before_ms) == ("team", MONDAY_9)  # waits for Monday
    p2 = tick(hours, p.state, SATURDAY + 60 * M)
    assert p2.notifications == ()  # no repeat piles up while it waits
    p3 = plan(hours, p2.state, record("breached"), SATURDAY + 61 * M)
    assert [(n.kind, n.receiver, n.not_before_ms) for n in p3.notifications] == [
        ("trigger", "oncall", None)  # the manager is out: on-call instead, now
    ]
    p4 = plan(hours, p3.state, record("met"), SATURDAY + 62 * M)
    assert sorted((n.receiver, n.not_before_ms) for n in p4.notifications) == [
        ("oncall", None),
        ("team", MONDAY_9),  # the resolve follows the trigger it waits behind
    ]
    # In the hours, the receiver itself, at once.
    monday = plan(hours, None, record("breached"), MONDAY_9 + 60 * M)
    assert [(n.receiver, n.not_before_ms) for n in monday.notifications] == [("manager", None)]


_HOURS_PROBLEMS = {
    "{calendar: nope}":
        "receivers.team.hours.calendar: no calendar 'nope' (hint: calendars: office)",
    "{calendar: office, outside: ghost}":
        "receivers.team.hours.outside: 'ghost' is not another receiver "
        "(hint: wait, or one of: night, oncall)",
    "{calendar: office, outside: team}":
        "receivers.team.hours.outside: 'team' is not another receiver "
        "(hint: wait, or one of: night, oncall)",
    "{outside: wait}":
        "receivers.team.hours.calendar: missing (hint: hours: {calendar: office, outside: wait})",
    "{calendar: office, outside: night}":
        "receivers.team.hours.outside: fallbacks go round in a circle: team -> night -> team "
        "(hint: end it with a receiver without hours, or outside: wait)",
}  # fmt: skip


@pytest.mark.parametrize(("hours", "expected"), _HOURS_PROBLEMS.items())
def test_hours_problems_name_the_line(hours: str, expected: str) -> None:
    from slawatch.alerting.config import RoutingFileError

    text = f"""\
calendars:
  office: {{time_zone: UTC, hours: {{daily: ["00:00-12:00"]}}}}
receivers:
  team: {{type: slack, webhook_url: {{env: SLACK}}, hours: {hours}}}
  oncall: {{type: pagerduty, routing_key: {{env: PD}}}}
  night: {{type: pagerduty, routing_key: {{env: PD}}, hours: {{calendar: office, outside: team}}}}
routes:
  - escalation: [{{on: breached, to: [team]}}]
"""
    with pytest.raises(RoutingFileError) as caught:
        parse_routing(text, "r.yaml", env={"SLACK": "https://hooks.example.com/x", "PD": "k"})
    assert caught.value.lines() == [f"r.yaml:4: {expected}"]


def test_repeats_keep_one_id_per_step_and_refreshes_ignore_hours() -> None:
    """A cycle open for days keeps a bounded state; an Alertmanager refresh goes to
    Alertmanager at any hour (it keeps an alert alive, it is not a page)."""
    routing = parse_routing(
        """\
calendars:
  office: {time_zone: Europe/London, hours: {mon-fri: ["09:00-17:00"]}}
receivers:
  am: {type: alertmanager, url: "http://am:9093", hours: {calendar: office, outside: team}}
  team: {type: slack, webhook_url: {env: SLACK}}
routes:
  - escalation: [{on: breached, to: [am], repeat: 1h}]
""",
        "r.yaml",
        env={"SLACK": "https://hooks.example.com/x"},
    )
    p = plan(routing, None, record("breached"), MONDAY_9 + 60 * M)  # in the hours
    assert [(n.kind, n.receiver) for n in p.notifications] == [("trigger", "am")]
    state = p.state
    receivers = []
    for minute in range(1, 24 * 60):  # a day and a night, a tick a minute
        step = tick(routing, state, MONDAY_9 + 60 * M + minute * M)
        state = step.state
        receivers += [(n.step, n.receiver) for n in step.notifications]
    refreshes = {r for step, r in receivers if step.endswith("~refresh")}
    assert refreshes == {"am"}
    assert ("route-1.1", "team") in receivers  # the hourly repeat went to the fallback at night
    assert len(state.sent) <= 5  # trigger + the latest repeat of each timer and receiver


def test_alertmanager_refreshes_and_resolves_keep_the_labels_it_was_raised_with() -> None:
    """Alertmanager knows an alert by its labels: after the level changed, a refresh or a
    resolve with the new level would be another alert, and the first would linger."""
    from slawatch.alerting.channels.alertmanager import alerts

    am = parse_routing(
        """\
receivers:
  am: {type: alertmanager, url: "http://alertmanager:9093"}
routes:
  - escalation: [{on: breached, to: [am]}]
""",
        "r.yaml",
        env={},
    )
    receiver = am.receivers["am"]
    later = T0 + 10_000 * M  # when Alertmanager is told (after the records' instants)
    p = plan(am, None, record("breached"), T0)
    (trigger,) = p.notifications
    raised = alerts(trigger, receiver, later)[0]["labels"]
    moved = record("level_changed", T0 + M, level="urgent", previous_level="high")
    p = plan(am, p.state, moved, T0 + M)
    (refresh,) = tick(am, p.state, T0 + 2 * M).notifications
    assert refresh.record.level == "urgent"  # what it says is the latest
    assert [a["labels"] for a in alerts(refresh, receiver, later)] == [raised]  # who it is
    (resolve,) = plan(am, p.state, record("met", level="urgent"), T0 + 3 * M).notifications
    assert [a["labels"] for a in alerts(resolve, receiver, later)] == [raised]
