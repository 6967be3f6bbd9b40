"""The connector's read position, saved in a small JSON file after every acknowledged
batch: written to a temporary file in the same directory, flushed to disk and renamed
over the old one, so a crash leaves either the old position or the new one, never half.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

from slawatch.connectors.follow import Position
from slawatch.errors import SlawatchError

STATE_VERSION = 1


def default_state_file(data_dir: Path, source: Path) -> Path:
    """``<data_dir>/connectors/asterisk-<hash of the source's absolute path>.json``."""
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return data_dir / "connectors" / f"asterisk-{source.name}-{digest}.json"


def load_position(state_file: Path, source: Path) -> Position | None:
    """The saved position, or None when nothing was saved yet."""
    try:
        document = orjson.loads(state_file.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SlawatchError(f"cannot read the connector state file {state_file}: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise SlawatchError(f"{state_file}: not a version {STATE_VERSION} connector state file")
    if document.get("source") != str(source.resolve()):
        raise SlawatchError(
            f"{state_file} holds the position in {document.get('source')}, not {source}: "
            "give each file its own --state-file"
        )
    try:
        return Position(int(document["inode"]), int(document["offset"]))
    except (KeyError, TypeError, ValueError):
        raise SlawatchError(f"{state_file}: no inode and offset") from None


def save_position(state_file: Path, source: Path, position: Position, saved_at_ms: int) -> None:
    """Replace the saved position, atomically."""
    document = {
        "version": STATE_VERSION,
        "source": str(source.resolve()),
        "inode": position.inode,
        "offset": position.offset,
        "saved_at_ms": saved_at_ms,
    }
    state_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = state_file.with_name(f".{state_file.name}.tmp")
    with temporary.open("wb") as out:
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, state_file)
