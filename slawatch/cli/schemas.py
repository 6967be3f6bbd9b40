"""``slawatch schemas export|check``: every published JSON Schema file in ``schemas/json/``.

The contracts' schemas (:mod:`slawatch.schemas.export`) and the policy file's
(:mod:`slawatch.policy.schema`) meet here, the lowest layer that may see both. Both are
imported when used, so that other commands start without them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slawatch.errors import SlawatchError


def all_schemas() -> dict[str, Any]:
    """Return every published schema, by file name."""
    from slawatch.policy.schema import policy_schemas
    from slawatch.schemas.export import contract_schemas

    return {**contract_schemas(), **policy_schemas()}


def write_schemas(directory: Path | None = None) -> list[Path]:
    """Write every schema file into ``directory`` (default: ``schemas/json/``); remove
    stale ones. Return the paths."""
    from slawatch.schemas.export import SCHEMA_DIR, write_documents

    return write_documents(all_schemas(), directory or SCHEMA_DIR)


def drifted_schemas(directory: Path | None = None) -> list[str]:
    """Name the files that differ from the models (missing, changed or stale)."""
    from slawatch.schemas.export import SCHEMA_DIR, drifted_documents

    return drifted_documents(all_schemas(), directory or SCHEMA_DIR)


def _run_schemas(args: argparse.Namespace) -> int:
    from slawatch.schemas.export import SCHEMA_DIR

    directory = args.dir or SCHEMA_DIR
    if args.action == "export":
        paths = write_schemas(directory)
        print(f"wrote {len(paths)} schemas to {directory}")
        return 0
    drifted = drifted_schemas(directory)
    if drifted:
        raise SlawatchError(
            f"schemas differ from the models: {', '.join(drifted)}; run `slawatch schemas export`"
        )
    print(f"schemas in {directory} match the models")
    return 0


def add_schemas(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = commands.add_parser("schemas", help="export or check the JSON Schema files")
    schemas.add_argument("action", choices=("export", "check"))
    schemas.add_argument("--dir", type=Path, default=None)
    schemas.set_defaults(run=_run_schemas)
