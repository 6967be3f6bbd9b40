"""The Asterisk connector's pure half: queue_log lines in both layouts, the mapping of
every verb to the call contracts, event ids, and the reasons bad lines get."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from slawatch.config.settings import Settings
from slawatch.connectors.asterisk import EVENT_TYPES, IGNORED, Ignored, event_id, to_event
from slawatch.connectors.queue_log import (
    MAX_LINE_BYTES,
    Layout,
    QueueLogLine,
    UnreadableLine,
    parse_line,
)
from slawatch.connectors.runner import AsteriskConnector, ConnectorOptions
from slawatch.core.clock import ManualClock
from slawatch.core.keys import ConversationKind
from slawatch.schemas import EventValidator, Rejection
from slawatch.schemas.reasons import RejectReason
from tests.realdata import asterisk as sample

VALIDATOR = EventValidator(
    max_event_bytes=65536, max_future_skew_ms=300_000, clock=ManualClock(2_000_000_000_000)
)


def mapped(text: str) -> dict | Ignored:
    line = parse_line(text.encode())
    assert line is not None
    return to_event(line)


def valid(event: dict) -> dict:
    """The event, after checking the workers' validator accepts it as a call event."""
    checked = VALIDATOR.validate(orjson.dumps(event), ConversationKind.CALL)
    assert not isinstance(checked, Rejection), checked
    return {k: v for k, v in event.items() if k not in ("schema_version", "event_id")}


BASE = {"occurred_at": 1543602677000, "call_id": "1543602660.197"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1543602677|1543602660.197|IT|NONE|ENTERQUEUE||ext-3a74e72c3f|2",
         {"type": "call.queued", "queue": "IT", "caller": "ext-3a74e72c3f",
          "custom_fields": {"position": 2}}),
        ("1543602677|1543602660.197|IT|NONE|ENTERQUEUE||", {"type": "call.queued", "queue": "IT"}),
        ("1543602677|1543602660.197|IT|Agent/1127|CONNECT|76|1543602746.232|6",
         {"type": "call.answered", "agent": "Agent/1127", "queue": "IT"}),
        ("1543602677|1543602660.197|IT|NONE|ABANDON|3|4|191",
         {"type": "call.abandoned", "queue": "IT", "position": 3}),
        ("1543602677|1543602660.197|IT|NONE|EXITWITHTIMEOUT|1|2|300",
         {"type": "call.abandoned", "queue": "IT", "position": 1}),
        ("1543602677|1543602660.197|IT|NONE|EXITEMPTY|1|1|12",
         {"type": "call.abandoned", "queue": "IT", "position": 1}),
        ("1543602677|1543602660.197|IT|NONE|EXITWITHKEY|5|2|3|40",
         {"type": "call.abandoned", "queue": "IT", "position": 2}),
        ("1543602677|1543602660.197|IT|NONE|ABANDON|0|0|7",  # PBXware's 0: unknown
         {"type": "call.abandoned", "queue": "IT"}),
        ("1543602677|1543602660.197|IT|Agent/1141|COMPLETECALLER|76|847|1",
         {"type": "call.ended", "ended_by": "caller"}),
        ("1543602677|1543602660.197|IT|Agent/1141|COMPLETEAGENT|5|60|1",
         {"type": "call.ended", "ended_by": "agent"}),
        ("1543602677|1543602660.197|IT|Agent/1128|TRANSFER|1142|from-internal|6|38|1",
         {"type": "call.transferred", "to_agent": "1142"}),
        ("1543602677|1543602660.197|IT|Agent/1128|BLINDTRANSFER|1142|transfer|6|38|1",
         {"type": "call.transferred", "to_agent": "1142"}),
        ("1543602677|1543602660.197|IT|Agent/1128|ATTENDEDTRANSFER|BRIDGE|abc-1|6|30|1",
         {"type": "call.ended", "ended_by": "agent"}),
    ],
)  # fmt: skip
def test_every_call_verb_maps_to_a_valid_contract(text: str, expected: dict) -> None:
    event = mapped(text)
    assert isinstance(event, dict)
    assert valid(event) == {**BASE, **expected}


def test_the_mapping_names_every_verb_it_maps() -> None:
    assert set(EVENT_TYPES) == {
        "ENTERQUEUE", "CONNECT", "ABANDON", "EXITEMPTY", "EXITWITHTIMEOUT", "EXITWITHKEY",
        "COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER",
    }  # fmt: skip
    assert not set(EVENT_TYPES) & set(IGNORED)


@pytest.mark.parametrize(
    "text",
    [
        "1543602687|1543602660.197|IT|Agent/1141|RINGNOANSWER|10000",
        "1543527289|NONE|NONE|NONE|QUEUESTART|",
        "1543539428|NONE|NONE|NONE|CONFIGRELOAD|",
        "1543598990|1543598985.25|IT|Local/1127@callback-agent|ADDMEMBER|",
        "1543598990|NONE|IT|SIP/alice|PAUSE|lunch",
        "1543598990|NONE|IT|SIP/alice|UNPAUSE|",
        "1543598990|NONE|IT|SIP/alice|REMOVEMEMBER|",
        "1543598990|1543598985.25|NONE|Agent/1127|AGENTCALLBACKLOGIN|hint:1127@default",
        "1543598990|1543598985.25|IT|NONE|DID|5551234",
        "1543601975|1543601975.170|NONE|Agent/1127|OUTDIAL|881142",
    ],
)
def test_lines_that_are_not_call_events_are_ignored_with_a_reason(text: str) -> None:
    event = mapped(text)
    assert isinstance(event, Ignored)
    assert event.why == IGNORED[event.event]


def test_an_unknown_verb_is_ignored() -> None:
    event = mapped("1543601975|1543601975.170|IT|NONE|SOMETHINGNEW|1")
    assert isinstance(event, Ignored) and event.why.startswith("not a queue_log verb")


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"1543602677|x|IT", RejectReason.MISSING_FIELD, "3 fields, a queue_log line has"),
        (b"hello world", RejectReason.MISSING_FIELD, "neither epoch|callid"),
        (b"1543602677|c|IT|NONE|", RejectReason.MISSING_FIELD, "the event (5th field) is empty"),
        (b"15436x2677|c|IT|NONE|ENTERQUEUE", RejectReason.BAD_TIMESTAMP, "epoch '15436x2677'"),
        (b"1543602677|c|IT|NONE|ENTERQUEUE||\xff|1", RejectReason.INVALID_VALUE, "not UTF-8"),
        (b"1" * (MAX_LINE_BYTES + 1), RejectReason.OVERSIZED, "the limit is 65536"),
        (b"1543602677|NONE|IT|NONE|ENTERQUEUE||x|1", RejectReason.MISSING_FIELD,
         "ENTERQUEUE without a call id"),
        (b"1543602677|c|NONE|NONE|ENTERQUEUE||x|1", RejectReason.MISSING_FIELD,
         "ENTERQUEUE without a queue"),
        (b"1543602677|c|IT|NONE|CONNECT|5|u|5", RejectReason.MISSING_FIELD,
         "CONNECT without an agent"),
        (b"1543602677|c|IT|NONE|ENTERQUEUE||x|first", RejectReason.WRONG_TYPE,
         "position (data field 3) 'first' is not a number"),
        (b"1543602677|c|IT|Agent/1|BLINDTRANSFER||ctx", RejectReason.MISSING_FIELD,
         "BLINDTRANSFER without the extension"),
        (b"5,1543602677,c,IT", RejectReason.MISSING_FIELD, "4 columns, a PBXware export row"),
    ],
)  # fmt: skip
def test_bad_lines_get_a_reason_and_a_detail(raw: bytes, reason: RejectReason, detail: str):
    with pytest.raises(UnreadableLine) as caught:
        line = parse_line(raw)
        assert line is not None
        to_event(line)
    assert caught.value.reason is reason
    assert detail in caught.value.detail


def connector(tmp_path: Path) -> AsteriskConnector:
    options = ConnectorOptions(path=tmp_path / "queue_log", state_file=tmp_path / "state.json")
    return AsteriskConnector(Settings(), options, ManualClock(2_000_000_000_000))


def test_what_the_contract_refuses_is_a_dead_letter_with_the_validators_reason(
    tmp_path: Path,
) -> None:
    """A line the parser reads but whose event the contract refuses: the validator's
    reason and detail, the event's type and id."""
    outcome = connector(tmp_path).outcome(b"1543602677|" + b"c" * 129 + b"|IT|NONE|ENTERQUEUE||x|1")
    assert outcome.value is None and outcome.refused is not None
    assert outcome.refused.reason is RejectReason.INVALID_VALUE
    assert outcome.refused.detail.startswith("ENTERQUEUE as call.queued: field 'call_id'")
    assert outcome.refused.event_type == "call.queued"
    # 1,000 s after the clock
    too_far = connector(tmp_path).outcome(b"2000001000|c|IT|NONE|ENTERQUEUE||x|1")
    assert too_far.refused is not None
    assert too_far.refused.reason is RejectReason.FUTURE_TIMESTAMP


def test_a_line_becomes_its_event_keyed_by_call_id(tmp_path: Path) -> None:
    outcome = connector(tmp_path).outcome(b"1543602677|1543602660.197|IT|NONE|ENTERQUEUE||x|1")
    assert outcome.key == b"1543602660.197" and outcome.refused is None
    assert outcome.value is not None
    assert orjson.loads(outcome.value)["type"] == "call.queued"
    assert connector(tmp_path).outcome(b"") == connector(tmp_path).outcome(b"  \r")
    assert connector(tmp_path).outcome(b"").value is None


def test_event_ids_are_the_lines_content() -> None:
    one = parse_line(b"1543602677|1543602660.197|IT|NONE|ENTERQUEUE||x|1")
    same = parse_line(b"1543602677|1543602660.197|IT|NONE|ENTERQUEUE||x|1|\r")
    other = parse_line(b"1543602677|1543602660.197|IT|NONE|ENTERQUEUE||x|2")
    assert one is not None and same is not None and other is not None
    assert event_id(one) == event_id(same) != event_id(other)
    assert event_id(one).startswith("aql:1543602660.197:1543602677:ENTERQUEUE:")
    long = QueueLogLine("1543602677", "c" * 200, "IT", "NONE", "ENTERQUEUE", ())
    assert len(event_id(long)) == 4 + 64


def test_epoch_with_a_fraction_keeps_its_milliseconds() -> None:
    line = parse_line(b"1543602677.25|c|IT|NONE|ENTERQUEUE||x|1")
    assert line is not None and line.epoch_ms == 1543602677250


def test_a_layout_given_is_the_only_one_read() -> None:
    with pytest.raises(UnreadableLine):
        parse_line(b"1,1543527289,NONE,NONE,NONE,QUEUESTART,,,,0,0,0,0,x", Layout.STANDARD)
    line = parse_line(b"1,1543527289,NONE,NONE,NONE,QUEUESTART,,,,0,0,0,0,x", Layout.PBXWARE)
    assert line is not None and line.event == "QUEUESTART"


# --- the real sample ---------------------------------------------------------------------


def events_of(path: Path) -> tuple[list[dict], Counter[str]]:
    events, ignored = [], Counter[str]()
    for raw in path.read_bytes().splitlines():
        line = parse_line(raw)
        if line is None:
            continue
        event = to_event(line)
        if isinstance(event, Ignored):
            ignored[event.event] += 1
        else:
            events.append(event)
    return events, ignored


def test_both_layouts_of_the_sample_give_the_same_events() -> None:
    """The PBXware export and the standard lines derived from it: the same events, ids
    included, for every verb the derived file kept (it left transfers out)."""
    assert sample.DATA.is_dir(), f"the shared real data is missing: {sample.DATA}"
    standard, _ = events_of(sample.STANDARD)
    export, ignored = events_of(sample.PBXWARE)
    kept = {"call.queued", "call.answered", "call.abandoned"}
    derived_verbs = {"COMPLETECALLER", "COMPLETEAGENT", "ENTERQUEUE", "CONNECT", "ABANDON",
                     "EXITWITHTIMEOUT"}  # fmt: skip
    assert [e for e in export if e["event_id"].split(":")[3] in derived_verbs] == standard
    assert Counter(e["type"] for e in standard) == {
        "call.queued": 108, "call.answered": 93, "call.ended": 89, "call.abandoned": 13,
    }  # fmt: skip
    transfers = [e for e in export if e["event_id"].split(":")[3].endswith("TRANSFER")]
    assert [(e["type"], e.get("to_agent")) for e in transfers] == [
        ("call.ended", None),  # ATTENDEDTRANSFER: no agent or queue named
        ("call.transferred", "1142"),  # BLINDTRANSFER to extension 1142
    ]
    assert ignored["RINGNOANSWER"] == 360 and ignored["OUTDIAL"] == 128
    assert all(valid(e) for e in export)
    assert {e["type"] for e in standard} >= kept


def test_the_sample_holds_what_the_mapping_relies_on() -> None:
    """Asterisk writes CONNECT holdtime seconds after ENTERQUEUE, and ABANDON waittime
    seconds after it: so the events' times carry the hold and wait (read independently)."""
    entered: dict[str, int] = {}
    checked = 0
    for line in sample.read_lines():
        if line.event == "ENTERQUEUE":
            entered[line.callid] = line.epoch_s
        elif line.event == "CONNECT":
            assert line.epoch_s - entered[line.callid] == int(line.data[0])
            checked += 1
        elif line.event in ("ABANDON", "EXITWITHTIMEOUT"):
            assert line.epoch_s - entered[line.callid] == int(line.data[2])
            checked += 1
    assert checked == 93 + 13
