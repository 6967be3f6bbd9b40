"""Generate the contracts' published JSON Schema files from the Python models: the core's
event Structs and the output records' dataclasses, described by msgspec
(:func:`model_json_schema`).

:func:`contract_schemas` holds the event, dead-letter and SLA event schemas; the policy
file's schema is built by :mod:`slawatch.policy.schema`, and ``slawatch schemas`` writes
and checks both (:mod:`slawatch.cli.schemas`) with :func:`write_documents` and
:func:`drifted_documents`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import orjson

from slawatch.core import vocabulary
from slawatch.core.patterns import PUBLISHED
from slawatch.schemas.deadletter import DEAD_LETTER_VERSION, DeadLetter
from slawatch.schemas.events import EVENT_TYPES, SCHEMA_VERSION
from slawatch.schemas.sla_events import SLA_EVENT_VERSION, SlaEventRecord

SCHEMA_DIR = Path(__file__).parent / "json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


JsonSchema = dict[str, Any]

#: Each closed vocabulary's values in their published order, by the set of them (msgspec
#: lists a ``Literal``'s values sorted).
_VOCABULARIES: Final[dict[frozenset[object], list[object]]] = {
    frozenset(values): list(values)
    for values in vars(vocabulary).values()
    if isinstance(values, tuple) and values and all(isinstance(v, str) for v in values)
}


def _published(node: Any) -> Any:
    """``node`` as the contract publishes it: every pattern as written (ECMA-262, where
    msgspec's is its Python translation), every vocabulary in its order, and the keys of a
    type's ``x-published`` in place of what msgspec says (the input range of epoch
    milliseconds, narrower than what the type reads: slawatch/core/events.py)."""
    if isinstance(node, list):
        return [_published(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _published(value) for key, value in node.items() if key != "x-published"}
    out.update(node.get("x-published", {}))
    if isinstance(out.get("pattern"), str):
        out["pattern"] = PUBLISHED.get(out["pattern"], out["pattern"])
    if isinstance(out.get("enum"), list):
        out["enum"] = _VOCABULARIES.get(frozenset(out["enum"]), out["enum"])
    return out


def _allow_null(schema: JsonSchema) -> JsonSchema:
    if "anyOf" in schema and {"type": "null"} in schema["anyOf"]:
        return schema
    inner = {k: v for k, v in schema.items() if k not in ("description", "default")}
    outer = {k: v for k, v in schema.items() if k in ("description", "default")}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def model_json_schema(cls: type) -> JsonSchema:
    """Describe the Struct or dataclass ``cls`` as a JSON Schema object, as msgspec reads
    it (types, constraints, descriptions, defaults), with the contract's rules no type
    states: an optional field may also be null (both mean "not given",
    slawatch/schemas/validation.py), and an event type with
    :attr:`~slawatch.core.events.InputEvent.REQUIRE_ONE_OF` needs one of those fields
    given and not null. Nested objects stay in ``$defs``."""
    (ref,), components = msgspec.json.schema_components([cls], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[1]
    body: JsonSchema = dict(components.pop(name))
    body.pop("title", None)
    body.pop("description", None)
    required = set(body.get("required", ()))
    body["properties"] = {
        key: value if key in required else _allow_null(value)
        for key, value in body["properties"].items()
    }
    one_of: tuple[str, ...] = getattr(cls, "REQUIRE_ONE_OF", ())
    if one_of:
        body["anyOf"] = [
            {"required": [key], "properties": {key: {"not": {"type": "null"}}}} for key in one_of
        ]
    if components:
        body["$defs"] = {
            key: {k: v for k, v in value.items() if k not in ("title", "description")}
            for key, value in sorted(components.items())
        }
    published: JsonSchema = _published(body)
    return published


def schema_document(
    name: str, version: int, title: str, description: str, body: dict[str, Any]
) -> Any:
    """A published schema: the dialect, an id, a title and a description, then ``body``."""
    return {
        "$schema": DIALECT,
        "$id": f"urn:slawatch:schema:{name}:v{version}",
        "title": title,
        "description": description,
        **body,
    }


def contract_schemas() -> dict[str, Any]:
    """Return the contracts' schemas (events, dead letter, SLA event), by file name."""
    documents: dict[str, Any] = {}
    for type_name, cls in sorted(EVENT_TYPES.items()):
        documents[f"{type_name}.v{SCHEMA_VERSION}.json"] = schema_document(
            type_name, SCHEMA_VERSION, type_name, cls.DESCRIPTION, model_json_schema(cls)
        )
    documents[f"dead-letter.v{DEAD_LETTER_VERSION}.json"] = schema_document(
        "dead-letter",
        DEAD_LETTER_VERSION,
        "dead-letter",
        DeadLetter.DESCRIPTION,
        model_json_schema(DeadLetter),
    )
    documents[f"sla-event.v{SLA_EVENT_VERSION}.json"] = schema_document(
        "sla-event",
        SLA_EVENT_VERSION,
        "sla-event",
        SlaEventRecord.DESCRIPTION,
        model_json_schema(SlaEventRecord),
    )
    return documents


def render(document: Any) -> bytes:
    """Serialise a schema the way the committed files are written."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def write_documents(documents: Mapping[str, Any], directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write ``documents`` (by file name) into ``directory``; remove any other schema file
    there. Return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if stale.name not in documents:
            stale.unlink()
    written = []
    for name, document in documents.items():
        path = directory / name
        path.write_bytes(render(document))
        written.append(path)
    return written


def drifted_documents(documents: Mapping[str, Any], directory: Path = SCHEMA_DIR) -> list[str]:
    """Name the files in ``directory`` that differ from ``documents`` (missing, changed, or
    a schema file that is not one of them)."""
    drifted = [
        name
        for name, document in documents.items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != render(document)
    ]
    drifted += [p.name for p in directory.glob("*.json") if p.name not in documents]
    return sorted(drifted)
