"""A deterministic model of contact-centre traffic: tickets, chats and calls.

Conversations arrive as a Poisson process whose rate follows a daily profile (quiet at
night, peaks mid-morning and mid-afternoon, UTC). Each conversation is a script, a
generator of timed events drawn from the seeded random source: tickets get assigned,
answered (sometimes first with an internal note), go back and forth with the customer,
wait on the customer, are put on hold, solved, reopened, deleted; chats exchange messages
and are transferred or left by an impatient customer; calls wait in a queue and are
answered, abandoned or transferred. Reply and answer delays are drawn around nominal SLA
targets so that most commitments are met, some come close and some breach.

Same profile, seed, start and duration: the same bytes, event for event.

``time_scale`` divides every delay, so a demo sees an hour of help-desk life in a minute.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from slawatch.core.events import EVENT_CLASSES
from slawatch.core.keys import ConversationKind
from slawatch.core.policy import DEFAULT_TARGETS_S
from slawatch.core.timestamps import format_timestamp_ms, parse_timestamp_ms

#: Nominal targets (seconds) the delays are drawn around: slawatch's built-in targets.
NOMINAL_TARGETS_S = {metric.value: targets for metric, targets in DEFAULT_TARGETS_S.items()}

#: Relative arrival rate per UTC hour; the mean is normalised to 1.
DAILY_PROFILE = (
    0.35, 0.35, 0.35, 0.35, 0.4, 0.5, 0.7, 1.0, 1.3, 1.6, 1.8, 1.7,
    1.4, 1.5, 1.7, 1.6, 1.4, 1.2, 1.0, 0.8, 0.7, 0.6, 0.5, 0.4,
)  # fmt: skip
_PROFILE_MEAN = sum(DAILY_PROFILE) / len(DAILY_PROFILE)

#: Mean events per conversation of the mix below (measured; tests/unit/test_simulator.py
#: checks the produced rate against --rate with it).
MEAN_EVENTS_PER_CONVERSATION = 6.93

KIND_MIX = (
    (ConversationKind.TICKET, 0.4),
    (ConversationKind.CHAT, 0.3),
    (ConversationKind.CALL, 0.3),
)
PRIORITY_MIX = (("low", 0.2), ("normal", 0.5), ("high", 0.2), ("urgent", 0.1))
CHANNEL_MIX = (("email", 0.45), ("web", 0.3), ("social", 0.1), ("api", 0.1), ("phone", 0.05))
DEPARTMENTS = ("billing", "technical", "sales", "accounts")
QUEUES = ("general", "billing", "technical", "vip")
CUSTOMER_GROUPS = ("standard", "standard", "standard", "enterprise", "vip")
AGENTS = tuple(f"agent-{n:02d}" for n in range(1, 41))
TAGS = ("refund", "outage", "login", "invoice", "upgrade", "complaint", "feedback", "bug")
REFERRERS = ("https://shop.example.com/checkout", "https://help.example.com/faq", None)


class Malformation(StrEnum):
    """Ways the simulator breaks a message on purpose, one per dead-letter reason."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_TYPE = "unknown_type"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    OVERSIZED = "oversized"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    WRONG_TOPIC = "wrong_topic"


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    """What traffic to make. ``rate_eps`` is the day's mean of events per second."""

    rate_eps: float
    time_scale: float = 1.0
    malformed_share: float = 0.0
    tenant: str | None = None
    #: Leave out malformations that only make sense on a topic (file output).
    file_output: bool = False
    #: Follow the daily profile (by the UTC hour of each arrival); False: ``rate_eps`` at
    #: every hour (a run whose size must not depend on the time of day it starts).
    daily_profile: bool = True

    def __post_init__(self) -> None:
        if self.rate_eps <= 0:
            raise ValueError("rate must be greater than 0")
        if self.time_scale <= 0:
            raise ValueError("time scale must be greater than 0")
        if not 0 <= self.malformed_share <= 1:
            raise ValueError("malformed share must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class SimulatedMessage:
    """One message for an input topic: when to send it, where, its key and bytes."""

    at_ms: int
    kind: ConversationKind
    key: bytes
    value: bytes
    malformed: Malformation | None = None


_Step = tuple[float, str, dict[str, Any]]  # (seconds after arrival, type, fields)


class _Draw:
    """The seeded random source, with the distributions the scripts use."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, mix: tuple[tuple[Any, float], ...]) -> Any:
        return self.rng.choices([v for v, _ in mix], [w for _, w in mix])[0]

    def one(self, values: tuple[Any, ...]) -> Any:
        return values[self.rng.randrange(len(values))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def exp(self, mean_s: float) -> float:
        return self.rng.expovariate(1.0 / mean_s)

    def around(self, target_s: float, median_share: float = 0.55, sigma: float = 0.75) -> float:
        """A delay whose median is ``median_share`` of the target, log-normal: with the
        defaults about a fifth of the draws exceed the target."""
        return target_s * median_share * math.exp(self.rng.gauss(0.0, sigma))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _ticket_script(d: _Draw) -> Iterator[_Step]:
    priority = d.pick(PRIORITY_MIX)
    agent = d.one(AGENTS)
    channel = d.pick(CHANNEL_MIX)
    opened_by = "agent" if d.chance(0.05) else "customer"
    created: dict[str, Any] = {
        "channel": channel,
        "priority": priority,
        "opened_by": opened_by,
        "department": d.one(DEPARTMENTS),
        "requester": f"customer-{d.rng.randrange(100_000):05d}@example.com",
        "customer_group": d.one(CUSTOMER_GROUPS),
        "tags": sorted({d.one(TAGS) for _ in range(d.rng.randrange(3))}),
        "custom_fields": {
            "plan": d.one(("free", "pro", "enterprise")),
            "order_value": 10 * d.rng.randrange(1, 200),
        },
    }
    if channel == "web":
        created["referrer_url"] = d.one(REFERRERS)
        created["created_via_invitation"] = d.chance(0.1)
    yield 0.0, "ticket.created", created
    t = 0.0
    if opened_by == "agent":
        t += d.exp(600)
        yield t, "message.received", {"message_id": d.uuid()}
    yield (
        t + d.exp(120),
        "ticket.updated",
        {"changes": {"assignee": agent, "assignee_status": "online", "status": "open"}},
    )
    if d.chance(0.02):
        yield t + d.exp(900), "ticket.updated", {"changes": {"deleted": True}}
        return
    if d.chance(0.25):
        yield (
            t + d.exp(300),
            "message.sent",
            {"message_id": d.uuid(), "agent": agent, "visibility": "internal"},
        )
    if d.chance(0.1):
        yield t + d.exp(600), "ticket.updated", {"changes": {"priority": d.pick(PRIORITY_MIX)}}
    t += d.around(NOMINAL_TARGETS_S["first_reply"][priority])
    yield t, "message.sent", {"message_id": d.uuid(), "agent": agent, "visibility": "public"}
    for _ in range(d.rng.choice((0, 1, 1, 2, 3))):
        if d.chance(0.3):
            yield t + 1, "ticket.updated", {"changes": {"status": "pending"}}
            t += d.exp(3600)
            yield t, "message.received", {"message_id": d.uuid()}
            yield t + 1, "ticket.updated", {"changes": {"status": "open"}}
        else:
            t += d.exp(3600)
            yield t, "message.received", {"message_id": d.uuid()}
        if d.chance(0.1):
            yield t + 60, "ticket.updated", {"changes": {"status": "on_hold"}}
            t += 60 + d.exp(1800)
            yield t, "ticket.updated", {"changes": {"status": "open"}}
        t += d.around(NOMINAL_TARGETS_S["next_reply"][priority])
        yield t, "message.sent", {"message_id": d.uuid(), "agent": agent, "visibility": "public"}
    t += d.exp(1800)
    yield t, "ticket.updated", {"changes": {"status": "solved"}}
    if d.chance(0.1):
        t += d.exp(3600)
        yield t, "message.received", {"message_id": d.uuid()}
        yield t + 1, "ticket.updated", {"changes": {"status": "open"}}
        t += d.around(NOMINAL_TARGETS_S["next_reply"][priority])
        yield t, "message.sent", {"message_id": d.uuid(), "agent": agent, "visibility": "public"}
        t += d.exp(600)
        yield t, "ticket.updated", {"changes": {"status": "solved"}}
    yield t + d.exp(4 * 3600), "ticket.updated", {"changes": {"status": "closed"}}


def _chat_script(d: _Draw) -> Iterator[_Step]:
    priority = d.pick(PRIORITY_MIX)
    agent = d.one(AGENTS)
    target = NOMINAL_TARGETS_S["chat_reply"][priority]
    started: dict[str, Any] = {
        "priority": priority,
        "department": d.one(DEPARTMENTS),
        "customer": f"visitor-{d.rng.randrange(100_000):05d}",
        "customer_group": d.one(CUSTOMER_GROUPS),
        "referrer_url": d.one(REFERRERS),
        "created_via_invitation": d.chance(0.15),
    }
    yield 0.0, "chat.started", started
    t = 2.0
    for exchange in range(d.rng.randrange(1, 6)):
        yield t, "chat.message", {"message_id": d.uuid(), "author": "customer"}
        reply = d.around(target)
        if d.chance(0.08):  # the customer gives up waiting
            yield t + min(reply, d.exp(target)), "chat.ended", {"ended_by": "customer"}
            return
        if exchange == 1 and d.chance(0.15):
            agent = d.one(AGENTS)
            yield (
                t + reply / 2,
                "chat.transferred",
                {"to_department": d.one(DEPARTMENTS), "to_agent": agent},
            )
        t += reply
        yield t, "chat.message", {"message_id": d.uuid(), "author": "agent", "agent": agent}
        t += d.exp(40)
    yield t, "chat.ended", {"ended_by": d.one(("customer", "agent"))}


def _call_script(d: _Draw) -> Iterator[_Step]:
    priority = d.pick(PRIORITY_MIX)
    queue = d.one(QUEUES)
    yield (
        0.0,
        "call.queued",
        {
            "queue": queue,
            "priority": priority,
            "caller": f"+1555{d.rng.randrange(10_000_000):07d}",
            "department": d.one(DEPARTMENTS),
            "tags": [d.one(("ivr:balance", "ivr:cards", "ivr:loans", "ivr:other"))],
        },
    )
    wait = d.around(NOMINAL_TARGETS_S["call_answer"][priority], sigma=0.9)
    patience = d.exp(120)
    if patience < wait:
        yield patience, "call.abandoned", {"queue": queue, "position": 1 + d.rng.randrange(8)}
        return
    agent = d.one(AGENTS)
    yield wait, "call.answered", {"agent": agent, "queue": queue}
    t = wait + d.around(180, median_share=1.0, sigma=0.6)
    if d.chance(0.08):
        to_queue = d.one(QUEUES)
        yield t, "call.transferred", {"to_queue": to_queue}
        t += d.around(NOMINAL_TARGETS_S["call_answer"][priority], sigma=0.9)
        yield t, "call.answered", {"agent": d.one(AGENTS), "queue": to_queue}
        t += d.around(120, median_share=1.0, sigma=0.6)
    yield t, "call.ended", {"ended_by": d.one(("caller", "agent"))}


_SCRIPTS = {
    ConversationKind.TICKET: _ticket_script,
    ConversationKind.CHAT: _chat_script,
    ConversationKind.CALL: _call_script,
}
_ID_FIELD = {cls.KIND: cls.ID_FIELD for cls in EVENT_CLASSES}
_PREFIX = {ConversationKind.TICKET: "T", ConversationKind.CHAT: "C", ConversationKind.CALL: "Q"}


def _malform(
    d: _Draw, event: dict[str, Any], kind: ConversationKind, file_output: bool
) -> tuple[Malformation, ConversationKind, bytes]:
    choices = [m for m in Malformation if not (file_output and m is Malformation.WRONG_TOPIC)]
    how: Malformation = d.one(tuple(choices))
    bad = {**event, "event_id": d.uuid()}
    if how is Malformation.NOT_JSON:
        raw = orjson.dumps(bad)
        return how, kind, raw[: max(1, len(raw) // 2)]
    if how is Malformation.NOT_OBJECT:
        return how, kind, orjson.dumps([bad])
    if how is Malformation.MISSING_FIELD:
        del bad["event_id"]
    elif how is Malformation.WRONG_TYPE:
        bad[_ID_FIELD[kind]] = 12345
    elif how is Malformation.INVALID_VALUE:
        bad["tenant"] = "no spaces allowed"
    elif how is Malformation.UNKNOWN_TYPE:
        bad["type"] = kind.value + ".merged"
    elif how is Malformation.BAD_TIMESTAMP:
        bad["occurred_at"] = "yesterday at noon"
    elif how is Malformation.FUTURE_TIMESTAMP:
        bad["occurred_at"] = _as_millis(bad["occurred_at"]) + 365 * 86_400_000
    elif how is Malformation.OVERSIZED:
        bad["padding"] = "x" * 70_000
    elif how is Malformation.UNSUPPORTED_SCHEMA_VERSION:
        bad["schema_version"] = 99
    elif how is Malformation.WRONG_TOPIC:
        others = [k for k in ConversationKind if k is not kind]
        return how, d.one(tuple(others)), orjson.dumps(bad)
    return how, kind, orjson.dumps(bad)


def _as_millis(occurred_at: Any) -> int:
    return occurred_at if isinstance(occurred_at, int) else parse_timestamp_ms(occurred_at)


def generate_traffic(
    profile: TrafficProfile, *, seed: int, start_ms: int, duration_s: float
) -> Iterator[SimulatedMessage]:
    """Yield the messages of ``duration_s`` seconds of traffic from ``start_ms``, in time
    order. Conversations that run past the end are cut there."""
    d = _Draw(seed)
    end_ms = start_ms + int(duration_s * 1000)
    conversation_rate = profile.rate_eps / MEAN_EVENTS_PER_CONVERSATION
    peak_rate = conversation_rate * (
        max(DAILY_PROFILE) / _PROFILE_MEAN if profile.daily_profile else 1
    )
    pending: list[tuple[int, int, SimulatedMessage]] = []
    sequence = 0
    counter = {kind: 0 for kind in ConversationKind}
    next_arrival_ms = float(start_ms)

    while True:
        next_arrival_ms += d.exp(1.0 / peak_rate) * 1000
        arrival = int(next_arrival_ms)
        # Everything queued before this arrival can go out now, in time order.
        while pending and (pending[0][0] <= arrival or arrival >= end_ms):
            yield heapq.heappop(pending)[2]
        if arrival >= end_ms:
            return
        hour = (arrival // 3_600_000) % 24
        if profile.daily_profile and d.rng.random() > DAILY_PROFILE[hour] / max(DAILY_PROFILE):
            continue  # thinning: the profile's rate at this hour is below the peak
        kind = d.pick(KIND_MIX)
        counter[kind] += 1
        conversation_id = f"{_PREFIX[kind]}{seed}-{counter[kind]:06d}"
        for offset_s, event_type, fields in _SCRIPTS[kind](d):
            at_ms = arrival + int(offset_s * 1000 / profile.time_scale)
            if at_ms >= end_ms:
                break
            occurred_at: int | str = at_ms if d.chance(0.5) else format_timestamp_ms(at_ms)
            event: dict[str, Any] = {
                "schema_version": 1,
                "event_id": d.uuid(),
                "type": event_type,
                "occurred_at": occurred_at,
                _ID_FIELD[kind]: conversation_id,
                **fields,
            }
            if profile.tenant:
                event["tenant"] = profile.tenant
            key = conversation_id.encode()
            sequence += 1
            message = SimulatedMessage(at_ms, kind, key, orjson.dumps(event))
            heapq.heappush(pending, (at_ms, sequence, message))
            if profile.malformed_share and d.chance(profile.malformed_share):
                how, topic_kind, raw = _malform(d, event, kind, profile.file_output)
                sequence += 1
                heapq.heappush(
                    pending, (at_ms, sequence, SimulatedMessage(at_ms, topic_kind, key, raw, how))
                )
