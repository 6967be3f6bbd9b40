"""Turning a dataclass model into a parser and a JSON Schema.

A model is a frozen dataclass whose fields are declared with
:func:`~slawatch.schemas.fields.spec_field`. :func:`parse_model` checks a decoded JSON object
against it; :func:`model_json_schema` describes the same rules as JSON Schema. Both read
the same field list, which is why the schema files cannot drift from the models.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

from slawatch.schemas.fields import JsonSchema, Spec, _wrong_type, field_spec
from slawatch.schemas.reasons import Invalid, RejectReason

M = TypeVar("M")

#: Per-class compiled field lists: (name, spec, required).
_PLANS: dict[type, tuple[tuple[str, Spec, bool], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, Spec, bool], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        overrides: dict[str, Spec] = getattr(cls, "SPEC_OVERRIDES", {})
        plan = tuple(
            (
                f.name,
                overrides.get(f.name) or field_spec(f),
                f.default is MISSING and f.default_factory is MISSING,
            )
            for f in fields(cls)
        )
        _PLANS[cls] = plan
    return plan


def parse_model(cls: type[M], obj: dict[str, Any], path: str = "") -> M:
    """Build ``cls`` from a decoded JSON object, or raise :class:`Invalid`.

    Unknown top-level properties are ignored (a producer on a newer minor version may add
    fields); missing required ones and nulls where null is not allowed are refused.
    """
    values: dict[str, object] = {}
    for name, spec, required in _plan(cls):
        value = obj.get(name, MISSING)
        field_path = f"{path}{name}"
        if value is MISSING or value is None:
            # Absent and null both mean "not given": required fields refuse it, optional
            # ones keep their default (the schemas say the same: optional allows null).
            if required:
                raise Invalid(RejectReason.MISSING_FIELD, f"field {field_path!r} is required")
            continue
        values[name] = spec.parse(value, field_path)
    one_of: tuple[str, ...] = getattr(cls, "REQUIRE_ONE_OF", ())
    if one_of and all(values.get(name) is None for name in one_of):
        raise Invalid(
            RejectReason.MISSING_FIELD,
            f"at least one of {list(one_of)} is required",
        )
    return cls(**values)


def model_json_schema(cls: type) -> JsonSchema:
    """Describe ``cls`` as a JSON Schema object (properties, required, docs)."""
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    docs = {f.name: f.metadata.get("doc", "") for f in fields(cls)}
    for name, spec, is_required in _plan(cls):
        schema = dict(spec.json_schema())
        if not is_required and "anyOf" not in schema:
            # An optional field may be absent or null: both mean "not given".
            schema = {"anyOf": [schema, {"type": "null"}]}
        if docs[name]:
            schema = {"description": docs[name], **schema}
        properties[name] = schema
        if is_required:
            required.append(name)
    schema_obj: JsonSchema = {"type": "object", "properties": properties, "required": required}
    one_of: tuple[str, ...] = getattr(cls, "REQUIRE_ONE_OF", ())
    if one_of:
        schema_obj["anyOf"] = [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in one_of
        ]
    return schema_obj


class Record:
    """A nested object with a closed set of optional keys, parsed into a plain dict.

    Used where "absent" and "null" mean different things (``ticket.updated``'s
    ``changes``: no ``assignee`` key means unchanged, ``"assignee": null`` means
    unassigned), which a dataclass with defaults cannot tell apart.
    """

    def __init__(self, properties: dict[str, tuple[Spec, str]], min_properties: int = 1) -> None:
        self.properties = properties
        self.min_properties = min_properties

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        unknown = sorted(set(value) - set(self.properties))
        if unknown:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: unknown keys {unknown[:5]}; allowed: {sorted(self.properties)}",
            )
        if len(value) < self.min_properties:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: needs at least {self.min_properties} key(s)",
            )
        return {
            key: self.properties[key][0].parse(item, f"{path}.{key}") for key, item in value.items()
        }

    def json_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "minProperties": self.min_properties,
            "additionalProperties": False,
            "properties": {
                key: {"description": doc, **spec.json_schema()}
                for key, (spec, doc) in self.properties.items()
            },
        }
