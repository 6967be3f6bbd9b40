"""The policy file's JSON Schema, for editors (``schemas/json/policy.v1.json``).

It is built from the loader's own tables: the keys of the document, of a calendar, of a
level, of a rule and of a queue's settings, the weekdays, the exception kinds, the
metrics, the statuses, the condition groups and the core's operators and fields, the
queue limits. :func:`_properties` refuses a key
the loader knows and the schema does not describe, or the reverse, so ``slawatch schemas
check`` (and the unit tests) fail as soon as the two part.

The loader is stricter: it also resolves names (levels, calendars, time zones) and checks
spans, durations and regular expressions, and says on which line.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from slawatch.core.credits import CUSTOMER_KEYS, MAX_MONEY, SCOPE_FIELDS
from slawatch.core.rules import CUSTOM_PREFIX, FIELDS, OPERATORS
from slawatch.policy.calendars import ALWAYS_OPEN, CALENDAR_KEYS, DAILY, DAYS, EXCEPTION_KINDS
from slawatch.policy.credits import (
    CREDIT_KEYS,
    MAX_CREDIT_TERMS,
    MAX_SCOPE_VALUES,
    MAX_TIERS,
    MONEY_PATTERN,
    PERCENT_PATTERN,
    TIER_KEYS,
)
from slawatch.policy.levels import LEVEL_KEYS, MAX_NAME_CHARS, METRICS, PAUSE_STATUSES
from slawatch.policy.loading import TOP_LEVEL
from slawatch.policy.queues import GOAL_PERCENT, MAX_QUEUES, QUEUE_KEYS
from slawatch.policy.regex import MAX_PATTERN_CHARS
from slawatch.policy.rules import DATE_OPERATORS, LIST_GROUPS, NOT, RULE_KEYS
from slawatch.schemas.export import schema_document

POLICY_SCHEMA_VERSION = 1
POLICY_SCHEMA_FILE = f"policy.v{POLICY_SCHEMA_VERSION}.json"
DESCRIPTION = (
    "An SLA policy: business-hours calendars, levels of targets, ordered rules, "
    "call queues' service-level targets, SLA credits."
)

_DURATION = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*$"}
_SCALAR = {"type": ["string", "number", "boolean"]}
_CONDITION = {"$ref": "#/$defs/condition"}


class SchemaOutOfStep(RuntimeError):
    """The schema does not describe exactly the keys the loader reads."""


def _properties(where: str, keys: Sequence[str], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """The loader's ``keys``, in its order, each with its schema from ``schemas``."""
    undescribed = [key for key in keys if key not in schemas]
    unknown = [key for key in schemas if key not in keys]
    if undescribed or unknown:
        raise SchemaOutOfStep(
            f"{where}: the loader reads {undescribed} that the schema does not describe, "
            f"the schema describes {unknown} that the loader does not read"
        )
    return {key: schemas[key] for key in keys}


def _calendar() -> dict[str, Any]:
    day = "|".join(DAYS)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["time_zone", "hours"],
        "properties": _properties(
            "a calendar",
            CALENDAR_KEYS,
            {
                "time_zone": {"type": "string", "description": "IANA zone name."},
                "hours": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": f"^({DAILY}|({day})(-({day}))?)$"},
                    "additionalProperties": {
                        "type": "array",
                        "items": {
                            "type": "string",
                            "pattern": r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$",
                        },
                    },
                },
                "holidays": {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "pattern": r"^\d{4}-\d{2}-\d{2}(\s*\.\.\s*\d{4}-\d{2}-\d{2})?$",
                    },
                },
                "exceptions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "additionalProperties": False,
                        "properties": {
                            kind: {"type": "string", "pattern": r"\.\."} for kind in EXCEPTION_KINDS
                        },
                    },
                },
            },
        ),
    }


def _level() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["targets"],
        "properties": _properties(
            "a level",
            LEVEL_KEYS,
            {
                "targets": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {metric: _DURATION for metric in METRICS},
                },
                "at_risk": {
                    "type": "string",
                    "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(%|ms|s|m|h|d)\s*$",
                },
                "calendar": {"type": "string"},
                "pause_statuses": {"type": "array", "items": {"enum": list(PAUSE_STATUSES)}},
            },
        ),
    }


def _queue(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": _properties(
            what,
            QUEUE_KEYS,
            {
                "target": {**_DURATION, "description": "Answered within this long is within."},
                "goal": {
                    "description": "The share of calls to answer within the target: 80% or 0.8.",
                    "oneOf": [
                        {"type": "string", "pattern": GOAL_PERCENT},
                        {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    ],
                },
                "short_abandon": {
                    **_DURATION,
                    "description": "A shorter abandoned call is a short abandon.",
                },
                "timezone": {"type": "string", "description": "IANA zone name of its day."},
            },
        ),
    }


def _credit_term() -> dict[str, Any]:
    percent = {"type": "string", "pattern": PERCENT_PATTERN}
    names = {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_SCOPE_VALUES,
                "uniqueItems": True,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
            },
        ]
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": [scope]} for scope in SCOPE_FIELDS],
        "properties": _properties(
            "a credit term",
            CREDIT_KEYS,
            {
                "name": {"type": "string", "maxLength": MAX_NAME_CHARS},
                "level": {**names, "description": "The cycles of these levels."},
                "customer_group": {**names, "description": "The cycles of these groups."},
                "tenant": {**names, "description": "The cycles of these tenants."},
                "metrics": {
                    "oneOf": [
                        {"enum": list(METRICS)},
                        {
                            "type": "array",
                            "minItems": 1,
                            "uniqueItems": True,
                            "items": {"enum": list(METRICS)},
                        },
                    ],
                    "description": "Only these metrics' cycles count (default: every metric).",
                },
                "customer_key": {
                    "enum": list(CUSTOMER_KEYS),
                    "description": "Who is owed: each cycle's tenant or customer group "
                    "(default: the scope's own field; tenant for a level).",
                },
                "tiers": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_TIERS,
                    "description": "Highest threshold first; the lowest one reached applies.",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": list(TIER_KEYS),
                        "properties": _properties(
                            "a credit tier",
                            TIER_KEYS,
                            {
                                "below": {**percent, "description": "Compliance under this."},
                                "credit": {**percent, "description": "Of the monthly fee."},
                            },
                        ),
                    },
                },
                "per_missed": {
                    "oneOf": [
                        {"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_MONEY)},
                        {"type": "string", "pattern": MONEY_PATTERN},
                    ],
                    "description": "Owed per missed cycle, in the customer's currency.",
                },
                "cap": {**percent, "description": "At most this share of the monthly fee."},
            },
        ),
        "allOf": [
            {"oneOf": [{"required": ["tiers"]}, {"required": ["per_missed"]}]},
            {"if": {"required": ["cap"]}, "then": {"required": ["per_missed"]}},
        ],
    }


def _rule() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "anyOf": [{"required": ["set_level"]}, {"required": ["stop"]}],
        "properties": _properties(
            "a rule",
            RULE_KEYS,
            {
                "name": {"type": "string"},
                "when": _CONDITION,
                "set_level": {"type": "string"},
                "stop": {"type": "boolean"},
            },
        ),
    }


def _condition() -> dict[str, Any]:
    field_names = "|".join(re.escape(name) for name in FIELDS)
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            **{
                group: {"type": "array", "minItems": 1, "items": _CONDITION}
                for group in LIST_GROUPS
            },
            NOT: _CONDITION,
        },
        "patternProperties": {
            f"^({field_names}|{re.escape(CUSTOM_PREFIX)}.+)$": {"$ref": "#/$defs/test"},
        },
        "additionalProperties": False,
    }


def _test() -> dict[str, Any]:
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": _properties(
            "the operators",
            tuple(OPERATORS),
            {
                "equals": _SCALAR,
                "in": {"type": "array", "items": _SCALAR, "minItems": 1},
                "contains": {"type": "string"},
                "starts_with": {"type": "string"},
                "matches": {
                    # No "format": "regex": JSON Schema means ECMA-262 by it, and the
                    # dialect is RE2's (editors would flag valid patterns).
                    "type": "string",
                    "maxLength": MAX_PATTERN_CHARS,
                    "description": (
                        "A pattern searched anywhere in the text, in RE2 syntax "
                        "(https://github.com/google/re2/wiki/Syntax): Python's re without "
                        "backreferences, lookahead or lookbehind; \\z for the end of the "
                        "text; \\d, \\w, \\b are ASCII, \\p{L} and \\p{N} are any "
                        f"script. At most {MAX_PATTERN_CHARS} characters."
                    ),
                },
                "exists": {"type": "boolean"},
                **{op: {"type": "string"} for op in DATE_OPERATORS},
                "within": _DURATION,
                "greater": {"type": ["number", "string"]},
                "less": {"type": ["number", "string"]},
            },
        ),
    }


def policy_json_schema() -> dict[str, Any]:
    """The policy file's JSON Schema (editors check YAML against it). The loader is stricter:
    it also resolves names (levels, calendars, zones) and checks spans and regexes."""
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["levels", "default_level"],
        "properties": _properties(
            "the document",
            TOP_LEVEL,
            {
                "version": {
                    "type": "string",
                    "description": "Names this policy on every SLA event.",
                },
                "description": {"type": "string"},
                "default_level": {"type": "string", "description": "Level when no rule matches."},
                "short_abandon": {
                    **_DURATION,
                    "description": "A shorter abandoned call is a misdial.",
                },
                "calendars": {
                    "type": "object",
                    "propertyNames": {"not": {"const": ALWAYS_OPEN}},
                    "additionalProperties": _calendar(),
                },
                "levels": {"type": "object", "minProperties": 1, "additionalProperties": _level()},
                "rules": {"type": "array", "items": _rule()},
                "queue_defaults": {
                    **_queue("queue_defaults"),
                    "description": "What a call queue without its own settings is measured "
                    "against.",
                },
                "queues": {
                    "type": "object",
                    "maxProperties": MAX_QUEUES,
                    "propertyNames": {"maxLength": MAX_NAME_CHARS},
                    "additionalProperties": _queue("a queue"),
                    "description": "Call queues with their own settings; a key left out is "
                    "queue_defaults' one.",
                },
                "credits": {
                    "type": "array",
                    "maxItems": MAX_CREDIT_TERMS,
                    "items": _credit_term(),
                    "description": "SLA credits: what is owed back per customer and month "
                    "for missed commitments.",
                },
            },
        ),
        "$defs": {"condition": _condition(), "test": _test()},
    }
    return copy.deepcopy(schema)  # the shared fragments become the caller's own


def policy_schemas() -> dict[str, Any]:
    """The policy file's published schema, by file name."""
    return {
        POLICY_SCHEMA_FILE: schema_document(
            "policy", POLICY_SCHEMA_VERSION, "policy", DESCRIPTION, policy_json_schema()
        )
    }
