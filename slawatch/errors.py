"""Errors the CLI reports as one line and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path


class SlawatchError(Exception):
    """An error with a message fit for an operator: what is wrong and what to do."""


class ConfigError(SlawatchError):
    """A setting is wrong; names the file and line, or the environment variable."""

    def __init__(
        self, message: str, *, source: str, field: str, path: Path | None = None, line: int = 0
    ) -> None:
        self.source = source
        self.field = field
        self.path = path
        self.line = line
        where = f"{path}:{line}" if path is not None and line else str(path or source)
        super().__init__(f"{where}: {field}: {message}")


class TopicMismatch(SlawatchError):
    """An existing topic has another partition count than configured."""


class ComponentMissing(SlawatchError):
    """A program slawatch needs (broker, redis-server) is not installed."""
