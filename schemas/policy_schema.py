"""The policy file's JSON Schema, for editors (``schemas/json/policy.v1.json``).

The loader (streams/policy_file.py) is stricter: it also resolves names (levels,
calendars, time zones) and checks spans, durations and regular expressions, and says on
which line.
"""

from __future__ import annotations

import re
from typing import Any

from slawatch.core.rules import CUSTOM_PREFIX, FIELDS
from slawatch.core.sla import Metric
from slawatch.schemas.events import STATUSES

POLICY_SCHEMA_VERSION = 1
#: The built-in calendar: every instant is working time.
ALWAYS_OPEN = "24x7"
DESCRIPTION = "An SLA policy: business-hours calendars, levels of targets, ordered rules."


def policy_json_schema() -> dict[str, Any]:
    """The policy file's JSON Schema (editors check YAML against it). The loader is stricter:
    it also resolves names (levels, calendars, zones) and checks spans and regexes."""
    duration = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*$"}
    day_key = "^(daily|(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?)$"
    scalar = {"type": ["string", "number", "boolean"]}
    operand_schemas = {
        "equals": scalar,
        "in": {"type": "array", "items": scalar, "minItems": 1},
        "contains": {"type": "string"},
        "starts_with": {"type": "string"},
        "matches": {"type": "string", "format": "regex"},
        "exists": {"type": "boolean"},
        "before": {"type": "string"},
        "after": {"type": "string"},
        "within": duration,
        "greater": {"type": ["number", "string"]},
        "less": {"type": ["number", "string"]},
    }
    field_names = "|".join(re.escape(name) for name in FIELDS)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["levels", "default_level"],
        "properties": {
            "version": {"type": "string", "description": "Names this policy on every SLA event."},
            "description": {"type": "string"},
            "default_level": {"type": "string", "description": "Level when no rule matches."},
            "short_abandon": {**duration, "description": "A shorter abandoned call is a misdial."},
            "calendars": {
                "type": "object",
                "propertyNames": {"not": {"const": ALWAYS_OPEN}},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["time_zone", "hours"],
                    "properties": {
                        "time_zone": {"type": "string", "description": "IANA zone name."},
                        "hours": {
                            "type": "object",
                            "minProperties": 1,
                            "propertyNames": {"pattern": day_key},
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
                                    "open": {"type": "string", "pattern": r"\.\."},
                                    "closed": {"type": "string", "pattern": r"\.\."},
                                },
                            },
                        },
                    },
                },
            },
            "levels": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["targets"],
                    "properties": {
                        "targets": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {m.value: duration for m in Metric},
                        },
                        "at_risk": {
                            "type": "string",
                            "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(%|ms|s|m|h|d)\s*$",
                        },
                        "calendar": {"type": "string"},
                        "pause_statuses": {"type": "array", "items": {"enum": list(STATUSES)}},
                    },
                },
            },
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "anyOf": [{"required": ["set_level"]}, {"required": ["stop"]}],
                    "properties": {
                        "name": {"type": "string"},
                        "when": {"$ref": "#/$defs/condition"},
                        "set_level": {"type": "string"},
                        "stop": {"type": "boolean"},
                    },
                },
            },
        },
        "$defs": {
            "condition": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    "all": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/condition"}},
                    "any": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/condition"}},
                    "not": {"$ref": "#/$defs/condition"},
                },
                "patternProperties": {
                    f"^({field_names}|{re.escape(CUSTOM_PREFIX)}.+)$": {"$ref": "#/$defs/test"},
                },
                "additionalProperties": False,
            },
            "test": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": operand_schemas,
            },
        },
    }
