"""Generate the published JSON Schema files from the Python models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from slawatch.schemas.deadletter import DEAD_LETTER_VERSION, DeadLetter
from slawatch.schemas.events import EVENT_TYPES, SCHEMA_VERSION
from slawatch.schemas.model import model_json_schema
from slawatch.schemas.policy_schema import DESCRIPTION as POLICY_DESCRIPTION
from slawatch.schemas.policy_schema import POLICY_SCHEMA_VERSION, policy_json_schema
from slawatch.schemas.sla_events import SLA_EVENT_VERSION, SlaEventRecord

SCHEMA_DIR = Path(__file__).parent / "json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _document(name: str, version: int, title: str, description: str, body: dict[str, Any]) -> Any:
    return {
        "$schema": DIALECT,
        "$id": f"urn:slawatch:schema:{name}:v{version}",
        "title": title,
        "description": description,
        **body,
    }


def all_schemas() -> dict[str, Any]:
    """Return every published schema, by file name."""
    documents: dict[str, Any] = {}
    for type_name, cls in sorted(EVENT_TYPES.items()):
        documents[f"{type_name}.v{SCHEMA_VERSION}.json"] = _document(
            type_name, SCHEMA_VERSION, type_name, cls.DESCRIPTION, model_json_schema(cls)
        )
    documents[f"dead-letter.v{DEAD_LETTER_VERSION}.json"] = _document(
        "dead-letter",
        DEAD_LETTER_VERSION,
        "dead-letter",
        DeadLetter.DESCRIPTION,
        model_json_schema(DeadLetter),
    )
    documents[f"sla-event.v{SLA_EVENT_VERSION}.json"] = _document(
        "sla-event",
        SLA_EVENT_VERSION,
        "sla-event",
        SlaEventRecord.DESCRIPTION,
        model_json_schema(SlaEventRecord),
    )
    documents[f"policy.v{POLICY_SCHEMA_VERSION}.json"] = _document(
        "policy", POLICY_SCHEMA_VERSION, "policy", POLICY_DESCRIPTION, policy_json_schema()
    )
    return documents


def render(document: Any) -> bytes:
    """Serialise a schema the way the committed files are written."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into ``directory``; remove stale ones. Return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = all_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in documents:
            stale.unlink()
    written = []
    for name, document in documents.items():
        path = directory / name
        path.write_bytes(render(document))
        written.append(path)
    return written


def drifted_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Name the files that differ from the models (missing, changed or stale)."""
    documents = all_schemas()
    drifted = [
        name
        for name, document in documents.items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != render(document)
    ]
    drifted += [p.name for p in directory.glob("*.json") if p.name not in documents]
    return sorted(drifted)
