"""The escalation planner: what to send for one SLA cycle, and when to look again.

Pure, in the style of the core's scheduler: no I/O, no clock of its own (``now_ms`` is
passed in), frozen values in and out. The notifier (a later session) keeps one
:class:`AlertState` per cycle, calls :func:`plan` for every SLA event record and
:func:`tick` when ``next_wake_ms`` comes, sends the :class:`Notification` s and stores the
new state.

For each record, the routes that match it (in order, stopping at the first without
``continue``) contribute their steps ``on`` the record's kind:

- ``at_risk`` / ``breached``: a *trigger* to each receiver of the step, now, or ``after``
  a while (counted from ``now_ms`` when the record is planned) if the cycle is still open
  then; then a *repeat* every ``repeat`` while it stays open (repeats missed while the
  notifier was down are not sent late: one is sent, for the latest slot);
- ``missed`` / ``level_changed``: a one-off *notice* (nothing to resolve).

An Alertmanager receiver that got a trigger is sent it again every ``REFRESH_MS`` while
the cycle stays open (a *repeat* of its own ``<step>~refresh`` timer): Alertmanager ends an
alert that is not sent again within its ``resolve_timeout`` (5 minutes by default).

When the cycle ends (``met``, ``missed``, ``cancelled``) or a breach is ``retracted``,
each receiver that got a trigger gets one *resolve*, and nothing more is sent for the
cycle. Every notification has a stable id (the cycle, the receiver, the step and what it
is), sent at most once per cycle: a record seen twice sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from slawatch.alerting.config import RoutingConfig
from slawatch.alerting.receivers import WAIT
from slawatch.alerting.routes import ALERT_KINDS, MATCH_FIELDS, Step
from slawatch.core.calendar import Calendar
from slawatch.schemas.sla_events import SlaEventRecord

NotificationKind = Literal["trigger", "repeat", "resolve", "notice"]
#: Kinds that end the cycle's alerting: every receiver alerted gets a resolve.
ENDING_KINDS = frozenset({"met", "missed", "cancelled", "retracted"})
#: The step of a resolve (it belongs to no step).
RESOLVE_STEP = "resolve"
#: How often an open alert is sent to Alertmanager again (well inside its default
#: ``resolve_timeout`` of 5 minutes).
REFRESH_MS = 60_000
REFRESH_SUFFIX = "~refresh"


def cycle_id_of(event_id: str) -> str:
    """The cycle of an SLA event id ``conversation key|metric|cycle|kind[@ms]``."""
    return event_id.rsplit("|", 1)[0]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one receiver. ``id`` is stable (for deduplication downstream)."""

    id: str
    cycle_id: str
    receiver: str
    step: str
    kind: NotificationKind
    record: SlaEventRecord
    after: tuple[str, ...] = ()
    """Notifications this one must not overtake (a resolve: the receiver's triggers of
    the cycle): the notifier holds it while one of them still waits in the outbox."""
    not_before_ms: int | None = None
    """Its receiver's hours start then: it waits in the outbox until that time."""
    raised: tuple[SlaEventRecord, ...] = ()
    """For a repeat or a resolve: the alerts the cycle raised, as they were raised
    (Alertmanager knows an alert by its name and labels; a repeat is about them)."""


@dataclass(frozen=True, slots=True)
class Timer:
    """A step waiting for time: its trigger (``after``, when ``triggered_ms`` is None) or
    its next repeat (slots at ``triggered_ms + k * repeat_ms``)."""

    step: str
    receivers: tuple[str, ...]
    due_ms: int
    repeat_ms: int | None = None
    triggered_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the notifier remembers of one cycle."""

    cycle_id: str
    record: SlaEventRecord
    """The latest record of the cycle (what a timed notification is about)."""
    open: bool = True
    notified: tuple[tuple[str, str], ...] = ()
    """(receiver, step id) of every trigger sent, in order."""
    sent: frozenset[str] = frozenset()
    """The id of every notification sent."""
    armed: frozenset[str] = frozenset()
    """Steps on at_risk/breached already started (so a repeated record starts none twice)."""
    timers: tuple[Timer, ...] = ()
    raised: tuple[SlaEventRecord, ...] = ()
    """The record of the cycle's first trigger of each kind (at_risk, breached), in
    order: what its alerts were raised with (a level or priority changed since gives the
    latest record other labels)."""

    @property
    def alerted(self) -> tuple[str, ...]:
        """The receivers that got a trigger, each once, in order."""
        return tuple(dict.fromkeys(receiver for receiver, _ in self.notified))

    @property
    def next_wake_ms(self) -> int | None:
        if not self.open or not self.timers:
            return None
        return min(timer.due_ms for timer in self.timers)


@dataclass(frozen=True, slots=True)
class Plan:
    state: AlertState
    notifications: tuple[Notification, ...]

    @property
    def next_wake_ms(self) -> int | None:
        """When to call :func:`tick` next; None when nothing waits for time."""
        return self.state.next_wake_ms


def matching_steps(config: RoutingConfig, record: SlaEventRecord) -> list[Step]:
    """The steps of every route that matches ``record``, on its kind, in route order."""
    values = {name: getattr(record, name) for name in MATCH_FIELDS}
    steps: list[Step] = []
    for route in config.routes:
        if route.matches(values):
            steps.extend(step for step in route.steps if step.on == record.kind)
            if not route.continue_:
                break
    return steps


def is_open(calendar: Calendar, at_ms: int) -> bool:
    """True when ``at_ms`` is working time of ``calendar``."""
    return calendar.elapsed(at_ms, at_ms + 1) == 1


def next_open_ms(calendar: Calendar, at_ms: int) -> int:
    """The first working instant of ``calendar`` at or after ``at_ms``."""
    return calendar.add(at_ms, 1) - 1


#: Most fallbacks followed from a receiver outside its hours (a loop waits instead).
MAX_FALLBACKS = 8


class _Builder:
    """A state being changed, and the notifications it produced."""

    def __init__(self, state: AlertState, config: RoutingConfig, now_ms: int) -> None:
        self.state = state
        self.config = config
        self.now_ms = now_ms
        self.out: list[Notification] = []

    def route(self, receiver: str, kind: NotificationKind) -> tuple[str | None, int | None]:
        """Who gets a notification for ``receiver`` now, and from when: the receiver
        itself in its hours; outside them its fallback (``outside: <receiver>``), or
        itself when its hours start (``outside: wait``). A resolve goes to the receiver
        alerted, when its hours allow; a repeat for a receiver that waits is not sent
        (None)."""
        name = receiver
        for hop in range(MAX_FALLBACKS + 1):
            rc = self.config.receivers.get(name)
            hours = rc.hours if rc is not None else None
            calendar = self.config.calendars.get(hours.calendar) if hours else None
            if hours is None or calendar is None or is_open(calendar, self.now_ms):
                return name, None
            last = hop == MAX_FALLBACKS or hours.outside == name
            if hours.outside != WAIT and kind != "resolve" and not last:
                name = hours.outside
                continue
            if kind == "repeat":
                return None, None
            return name, next_open_ms(calendar, self.now_ms)
        raise AssertionError("unreachable: the last hop waits")

    def send(
        self,
        receiver: str,
        step: str,
        kind: NotificationKind,
        suffix: str,
        *,
        hours: bool = True,
    ) -> str | None:
        """Queue one notification (once per cycle); the receiver it went to. Without
        ``hours`` it goes to ``receiver`` now, whatever its hours (an Alertmanager
        refresh keeps an alert alive; it is not a message to a person)."""
        target, not_before = self.route(receiver, kind) if hours else (receiver, None)
        if target is None:
            return None
        state = self.state
        note_id = f"{state.cycle_id}|{target}|{suffix}"
        if note_id in state.sent:
            return target
        sent = state.sent
        if kind == "repeat":  # the latest repeat of a step is enough to know (slots only grow)
            older = note_id.rsplit("-", 1)[0] + "-"
            sent = frozenset(i for i in sent if not i.startswith(older))
        notified, raised = state.notified, state.raised
        if kind == "trigger":
            notified = (*notified, (target, step))
            if all(r.kind != state.record.kind for r in raised):
                raised = (*raised, state.record)
        after: tuple[str, ...] = ()
        if kind == "resolve":
            after = tuple(
                f"{state.cycle_id}|{r}|{s}|trigger" for r, s in state.notified if r == target
            )
        self.state = replace(state, sent=sent | {note_id}, notified=notified, raised=raised)
        about = raised if kind in ("repeat", "resolve") else ()
        self.out.append(
            Notification(
                note_id, state.cycle_id, target, step, kind, state.record, after, not_before,
                about,
            )
        )  # fmt: skip
        return target

    def trigger(self, step: str, receivers: tuple[str, ...], now_ms: int) -> None:
        targets = [
            self.send(receiver, step, "trigger", f"{step}|trigger") for receiver in receivers
        ]
        refreshed = tuple(
            dict.fromkeys(
                t
                for t in targets
                if t is not None
                and (rc := self.config.receivers.get(t)) is not None
                and rc.type == "alertmanager"
            )
        )
        if refreshed:
            timer = Timer(step + REFRESH_SUFFIX, refreshed, now_ms + REFRESH_MS, REFRESH_MS, now_ms)
            self.state = replace(self.state, timers=(*self.state.timers, timer))

    def plan(self) -> Plan:
        return Plan(self.state, tuple(self.out))


def plan(
    config: RoutingConfig, state: AlertState | None, record: SlaEventRecord, now_ms: int
) -> Plan:
    """What to send now for ``record``, given the cycle's ``state`` (None for a cycle not
    seen before), and the new state."""
    cycle_id = cycle_id_of(record.event_id)
    if state is None:
        state = AlertState(cycle_id, record)
    elif state.cycle_id != cycle_id:
        raise ValueError(f"record of cycle {cycle_id!r} given the state of {state.cycle_id!r}")
    if not state.open:
        return Plan(state, ())
    b = _Builder(replace(state, record=record), config, now_ms)
    what = record.event_id.rsplit("|", 1)[1]  # the kind, with @ms for level_changed
    for step in matching_steps(config, record):
        if step.on not in ALERT_KINDS:
            for receiver in step.to:
                b.send(receiver, step.id, "notice", f"{step.id}|{what}")
            continue
        if step.id in b.state.armed:
            continue
        b.state = replace(b.state, armed=b.state.armed | {step.id})
        if step.after_ms is not None:
            timer = Timer(step.id, step.to, now_ms + step.after_ms, step.repeat_ms)
            b.state = replace(b.state, timers=(*b.state.timers, timer))
            continue
        b.trigger(step.id, step.to, now_ms)
        if step.repeat_ms is not None:
            timer = Timer(step.id, step.to, now_ms + step.repeat_ms, step.repeat_ms, now_ms)
            b.state = replace(b.state, timers=(*b.state.timers, timer))
    if record.kind in ENDING_KINDS:
        for receiver in b.state.alerted:
            b.send(receiver, RESOLVE_STEP, "resolve", RESOLVE_STEP)
        b.state = replace(b.state, open=False, timers=())
    return b.plan()


def tick(config: RoutingConfig, state: AlertState, now_ms: int) -> Plan:
    """What the passing of time sends by ``now_ms``: delayed triggers and repeats."""
    if not state.open:
        return Plan(state, ())
    b = _Builder(state, config, now_ms)
    timers: list[Timer] = []
    for timer in sorted(state.timers, key=lambda t: t.due_ms):  # what was due first, first
        if timer.due_ms > now_ms:
            timers.append(timer)
            continue
        if timer.triggered_ms is None:  # the step's delayed trigger
            before = len(b.state.timers)
            b.trigger(timer.step, timer.receivers, timer.due_ms)
            timers.extend(b.state.timers[before:])  # its Alertmanager refresh, if any
            if timer.repeat_ms is not None:  # repeats from its due; slots passed are skipped
                slot = (now_ms - timer.due_ms) // timer.repeat_ms
                due = timer.due_ms + (slot + 1) * timer.repeat_ms
                timers.append(replace(timer, triggered_ms=timer.due_ms, due_ms=due))
            continue
        repeat_ms = timer.repeat_ms or 1  # a timer with triggered_ms always has repeat_ms
        slot = (now_ms - timer.triggered_ms) // repeat_ms
        refresh = timer.step.endswith(REFRESH_SUFFIX)
        for receiver in timer.receivers:
            b.send(receiver, timer.step, "repeat", f"{timer.step}|repeat-{slot}", hours=not refresh)
        timers.append(replace(timer, due_ms=timer.triggered_ms + (slot + 1) * repeat_ms))
    b.state = replace(b.state, timers=tuple(timers))
    return b.plan()
