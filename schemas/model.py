"""Turning a dataclass model into a parser and a JSON Schema.

A model is a frozen dataclass whose fields each have a spec and a description, given one
of two ways: declared with :func:`~slawatch.schemas.fields.spec_field` on a dataclass the
contracts own (the dead-letter record, the SLA event record), or, for a dataclass defined
elsewhere (the core's input events), by :func:`describe_model` with a table keyed by its
field names. :func:`parse_model` checks a decoded JSON object against the model;
:func:`model_json_schema` describes the same rules as JSON Schema. Both read the same
field list, which is why the schema files cannot drift from the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, NamedTuple, TypeVar

from slawatch.schemas.fields import JsonSchema, Spec, _wrong_type, field_spec, preview
from slawatch.schemas.reasons import Invalid, RejectReason

M = TypeVar("M")

#: A field's spec and its description.
FieldContract = tuple[Spec, str]


class _Described(NamedTuple):
    fields: Mapping[str, FieldContract]
    require_one_of: tuple[str, ...]


#: Models described from outside: class -> its field table (see :func:`describe_model`).
_DESCRIBED: dict[type, _Described] = {}


class _Plan(NamedTuple):
    #: (name, spec, required, description) per field, in the dataclass's order.
    fields: tuple[tuple[str, Spec, bool, str], ...]
    require_one_of: tuple[str, ...]


#: Per-class compiled plans.
_PLANS: dict[type, _Plan] = {}


def describe_model(
    cls: type,
    field_contracts: Mapping[str, FieldContract],
    *,
    require_one_of: tuple[str, ...] = (),
) -> None:
    """Give the dataclass ``cls`` its contract: the spec and description of every field
    (exactly its fields, or :class:`TypeError`), and the fields of which at least one must
    be given."""
    names = [f.name for f in fields(cls)]
    missing = [name for name in names if name not in field_contracts]
    unknown = [name for name in (*field_contracts, *require_one_of) if name not in names]
    if missing or unknown:
        raise TypeError(
            f"{cls.__name__}: fields without a spec {missing}, specs without a field {unknown}"
        )
    _DESCRIBED[cls] = _Described(dict(field_contracts), require_one_of)
    _PLANS.pop(cls, None)


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        described = _DESCRIBED.get(cls)
        entries = []
        for f in fields(cls):
            if described is not None:
                spec, doc = described.fields[f.name]
            else:
                spec, doc = field_spec(f), f.metadata.get("doc", "")
            required = f.default is MISSING and f.default_factory is MISSING
            entries.append((f.name, spec, required, doc))
        one_of = described.require_one_of if described is not None else ()
        plan = _PLANS[cls] = _Plan(tuple(entries), one_of)
    return plan


def parse_model(cls: type[M], obj: dict[str, Any], path: str = "") -> M:
    """Build ``cls`` from a decoded JSON object, or raise :class:`Invalid`.

    Unknown top-level properties are ignored (a producer on a newer minor version may add
    fields); missing required ones and nulls where null is not allowed are refused.
    """
    values: dict[str, object] = {}
    plan, one_of = _plan(cls)
    for name, spec, required, _ in plan:
        value = obj.get(name, MISSING)
        field_path = f"{path}{name}"
        if value is MISSING or value is None:
            # Absent and null both mean "not given": required fields refuse it, optional
            # ones keep their default (the schemas say the same: optional allows null).
            if required:
                raise Invalid(RejectReason.MISSING_FIELD, f"field {field_path!r} is required")
            continue
        values[name] = spec.parse(value, field_path)
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
    plan, one_of = _plan(cls)
    for name, spec, is_required, doc in plan:
        schema = dict(spec.json_schema())
        if not is_required and "anyOf" not in schema:
            # An optional field may be absent or null: both mean "not given".
            schema = {"anyOf": [schema, {"type": "null"}]}
        if doc:
            schema = {"description": doc, **schema}
        properties[name] = schema
        if is_required:
            required.append(name)
    schema_obj: JsonSchema = {"type": "object", "properties": properties, "required": required}
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

    def __init__(self, properties: Mapping[str, FieldContract], min_properties: int = 1) -> None:
        self.properties = properties
        self.min_properties = min_properties

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        unknown = sorted(set(value) - set(self.properties))
        if unknown:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: unknown keys {', '.join(preview(k) for k in unknown[:5])}"
                f"{', …' if len(unknown) > 5 else ''}; allowed: {sorted(self.properties)}",
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
