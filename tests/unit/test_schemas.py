"""The published JSON Schemas and the Python models must agree, file for file and verdict
for verdict."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from slawatch.schemas import EVENT_TYPES
from slawatch.schemas.deadletter import DeadLetter
from slawatch.schemas.export import SCHEMA_DIR, all_schemas, drifted_schemas, write_schemas
from slawatch.schemas.model import parse_model
from slawatch.schemas.reasons import Invalid
from tests.samples import valid_examples


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
        [], ["a"], ["a", 1], [None], {}, {"status": "open"}, {"assignee": None},
        {"status": "bogus"}, {"k": "v"}, {"bad key": 1}, {"nested": {"x": 1}},
    ]
)  # fmt: skip


@st.composite
def mutated_events(draw):
    _, example = draw(st.sampled_from(valid_examples()))
    obj = dict(example)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        keys = sorted(set(obj) | set(EVENT_TYPES[obj["type"]].__dataclass_fields__))
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
    try:
        parse_model(EVENT_TYPES[type_name], obj)
        model_ok = True
    except Invalid:
        model_ok = False
    assert schema_ok == model_ok, (
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
