"""Generate the contracts' published JSON Schema files from the Python models.

:func:`contract_schemas` holds the event, dead-letter and SLA event schemas; the policy
file's schema is built by :mod:`slawatch.policy.schema`, and ``slawatch schemas`` writes
and checks both (:mod:`slawatch.cli.schemas`) with :func:`write_documents` and
:func:`drifted_documents`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from slawatch.schemas.deadletter import DEAD_LETTER_VERSION, DeadLetter
from slawatch.schemas.events import EVENT_TYPES, SCHEMA_VERSION
from slawatch.schemas.model import model_json_schema
from slawatch.schemas.sla_events import SLA_EVENT_VERSION, SlaEventRecord

SCHEMA_DIR = Path(__file__).parent / "json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


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
