"""What the SLA log store raises: a store it cannot use, or a report query it cannot run."""

from __future__ import annotations

from slawatch.errors import SlawatchError


class LogStoreError(SlawatchError):
    """The database cannot be used: a bad URL, a server that does not answer, a lost
    connection. One line, naming the URL with any password masked."""


class InvalidQuery(ValueError):
    """A report query's argument is wrong. :attr:`parameter` names it, so that an HTTP API
    can answer 400 naming the query parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class BadCursor(InvalidQuery):
    """The ``after`` cursor is not one a page of this sort handed out (garbage, truncated,
    edited, or made for another sort key or direction)."""

    def __init__(self, message: str) -> None:
        super().__init__("after", message)
