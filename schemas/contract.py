"""Constraints and descriptions of the output records' fields (the dead letter, the SLA
event), as ``msgspec.Meta`` for ``Annotated`` types: the JSON Schemas are generated from
them (slawatch/schemas/export.py), as the input events' are from the core's Structs."""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Meta


def doc(description: str) -> Meta:
    """Only a description."""
    return Meta(description=description)


def text(max_length: int, description: str | None = None) -> Meta:
    """A string of 1..``max_length`` characters."""
    return Meta(min_length=1, max_length=max_length, description=description)


def integer(minimum: int, maximum: int, description: str | None = None) -> Meta:
    """A whole number (or any number, on a ``float``) within bounds."""
    return Meta(ge=minimum, le=maximum, description=description)


def choice(values: Iterable[str], description: str | None = None) -> Meta:
    """One string out of a closed set (the field stays a ``str``)."""
    return Meta(extra_json_schema={"enum": list(values)}, description=description)
