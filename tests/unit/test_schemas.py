"""The published JSON Schemas and the Python models must agree, file for file and verdict
for verdict."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from slawatch.cli.schemas import all_schemas, drifted_schemas, write_schemas
from slawatch.core import vocabulary
from slawatch.core.clock import ManualClock
from slawatch.core.events import EVENT_CLASSES, TICKET_CHANGE_KEYS, Changes, InputEvent
from slawatch.core.policy import PRIORITIES
from slawatch.schemas import EVENT_TYPES, EventValidator, Rejection, events
from slawatch.schemas.deadletter import DeadLetter
from slawatch.schemas.export import SCHEMA_DIR, model_json_schema
from slawatch.schemas.reasons import RejectReason
from tests.samples import NOW_MS, valid_examples

#: The validator ingest runs, with a clock no mutated time is ahead of.
VALIDATOR = EventValidator(
    max_event_bytes=1 << 20, max_future_skew_ms=1 << 50, clock=ManualClock(NOW_MS)
)


def test_committed_files_match_the_models() -> None:
    assert drifted_schemas() == [], "run `make schemas` and commit schemas/json"


def test_drift_is_detected(tmp_path) -> None:
    write_schemas(tmp_path)
    assert drifted_schemas(tmp_path) == []
    victim = tmp_path / "call.queued.v1.json"
    doc = json.loads(victim.read_text())
    doc["required"].remove("queue")
    victim.write_text(json.dumps(doc))
    (tmp_path / "stale.v1.json").write_text("{}")
    assert drifted_schemas(tmp_path) == ["call.queued.v1.json", "stale.v1.json"]


def test_one_schema_per_event_type_and_each_is_valid_json_schema() -> None:
    names = {path.name for path in SCHEMA_DIR.glob("*.json")}
    assert {f"{t}.v1.json" for t in EVENT_TYPES} | {
        "dead-letter.v1.json",
        "sla-event.v1.json",
        "policy.v1.json",
    } == names
    for document in all_schemas().values():
        Draft202012Validator.check_schema(document)


def _schema_validator(type_name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMA_DIR / f"{type_name}.v1.json").read_text()))


INTERESTING = st.sampled_from(
    [
        None, 0, 1, -1, 1.0, 2.5, 2**40, True, False, "", "x", "x" * 129, "x" * 3000,
        "email", "public", "customer", "pending", "urgent", "billing", "no spaces allowed",
        "2026-11-22T10:00:00Z", "2026-11-22T10:00:00", 1_795_348_800_000, 1_795_348_800,
        "1999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-11-22 10:00:00Z", 946_684_799_999,
        946_684_800_000, 4_102_444_799_999, 4_102_444_800_000, 1.8446744073709552e19,
        {"status": 5, "colour": 1}, {"n": 18446744073709551615},
        [], ["a"], ["a", 1], [None], {}, {"status": "open"}, {"assignee": None},
        {"status": "bogus"}, {"k": "v"}, {"bad key": 1}, {"nested": {"x": 1}},
    ]
)  # fmt: skip


@st.composite
def mutated_events(draw):
    _, example = draw(st.sampled_from(valid_examples()))
    obj = dict(example)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        keys = sorted(set(obj) | set(EVENT_TYPES[obj["type"]].__struct_fields__))
        key = draw(st.sampled_from(keys))
        if key == "type":
            continue  # dispatch on type is the validator's job, not one schema's
        if draw(st.booleans()):
            obj.pop(key, None)
        else:
            obj[key] = draw(INTERESTING)
    return example["type"], obj


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated_events())
def test_schema_and_model_give_the_same_verdict(case) -> None:
    type_name, obj = case
    schema_ok = _schema_validator(type_name).is_valid(obj)
    verdict = VALIDATOR.validate(orjson.dumps(obj), None)
    model_ok = not isinstance(verdict, Rejection)
    assert schema_ok == model_ok, (
        verdict,
        obj,
        sorted(e.message for e in _schema_validator(type_name).iter_errors(obj)),
    )


@pytest.mark.parametrize(("kind", "example"), valid_examples(), ids=lambda v: str(v)[:30])
def test_valid_examples_pass_the_published_schema(kind, example) -> None:
    _schema_validator(example["type"]).validate(example)


def test_dead_letter_records_match_their_schema() -> None:
    letter = DeadLetter(
        schema_version=1,
        reason="not_json",
        detail="not valid UTF-8 JSON",
        source_topic="tickets",
        source_partition=0,
        source_offset=41,
        original_b64="",
        original_bytes=0,
        dead_lettered_at_ms=1,
        worker="w",
    )
    validator = Draft202012Validator(json.loads((SCHEMA_DIR / "dead-letter.v1.json").read_text()))
    validator.validate(json.loads(letter.encode()))
    assert DeadLetter.decode(letter.encode()) == letter
    # An empty key is not a missing one; a cut key says so; internal_error is a reason.
    for key in ("", "a2V5"):
        cut = replace(
            letter,
            reason="internal_error",
            original_key_b64=key,
            original_key_bytes=len(key),
            original_key_truncated=bool(key),
        )
        validator.validate(json.loads(cut.encode()))
        assert DeadLetter.decode(cut.encode()) == cut
    for wrong in (
        {"detail": "x" * 4097},
        {"event_id": ""},
        {"event_id": "x" * 129},
        {"original_b64": "A" * 349_529},
    ):
        assert not validator.is_valid({**json.loads(letter.encode()), **wrong}), wrong


def test_the_contracts_are_the_core_event_classes() -> None:
    assert list(EVENT_TYPES.values()) == list(EVENT_CLASSES)
    assert all(name == cls.TYPE == cls.__struct_config__.tag for name, cls in EVENT_TYPES.items())


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.TYPE)
def test_every_field_is_published_with_a_description(cls: type[InputEvent]) -> None:
    properties = model_json_schema(cls)["properties"]
    assert list(properties) == ["type", *cls.__struct_fields__]
    assert all(p["description"] for name, p in properties.items() if name != "type")
    assert properties["type"] == {"enum": [cls.TYPE]}
    assert all(name in cls.__struct_fields__ for name in cls.REQUIRE_ONE_OF)


def test_the_ticket_changes_are_the_core_change_keys() -> None:
    assert set(Changes.__struct_fields__) == set(TICKET_CHANGE_KEYS)
    published = model_json_schema(EVENT_TYPES["ticket.updated"])["$defs"]["Changes"]
    assert set(published["properties"]) == set(TICKET_CHANGE_KEYS)
    assert published["additionalProperties"] is False
    assert all(p["description"] for p in published["properties"].values())


def test_the_vocabularies_are_the_core_ones() -> None:
    assert events.PRIORITIES is vocabulary.PRIORITIES is PRIORITIES
    assert events.STATUSES is vocabulary.STATUSES
    assert events.CHANNELS is vocabulary.CHANNELS
    assert events.AGENT_STATUSES is vocabulary.AGENT_STATUSES
    created = model_json_schema(EVENT_TYPES["ticket.created"])["properties"]
    assert created["status"]["anyOf"][0]["enum"] == list(vocabulary.STATUSES)


@pytest.mark.parametrize(("kind", "example"), valid_examples(), ids=lambda v: str(v)[:30])
def test_a_parsed_event_is_its_core_class(kind, example) -> None:
    parsed = VALIDATOR.validate(orjson.dumps(example), kind)
    assert type(parsed) is EVENT_TYPES[example["type"]] and parsed.KIND is kind
    assert parsed.conversation_id == example[parsed.ID_FIELD]
    assert parsed.key == f"{kind.value}:{example.get('tenant') or ''}:{parsed.conversation_id}"


def test_every_dead_letter_reason_is_in_the_readme_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Dead letters", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    assert rows == {reason.value for reason in RejectReason}
