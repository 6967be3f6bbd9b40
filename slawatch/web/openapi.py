"""The OpenAPI 3.1 document of the worker's web API, served at ``GET /openapi.json``.

Built in code from the same constants the API runs on (the parameters and columns of
:mod:`slawatch.reports.export`, the store's sort keys, statuses and group columns, and
the ``sla_cycles`` table's types and nullability), so it cannot drift from what the
server does; ``tests/integration/test_reports_api.py`` runs schemathesis against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, get_args

from slawatch.core.events import EVENT_TYPES
from slawatch.core.keys import ConversationKind
from slawatch.reports.compliance import GROUP_COLUMNS
from slawatch.reports.credits import CreditStatus
from slawatch.reports.export import (
    COMPLIANCE_MEASURES,
    CREDITS_COLUMNS,
    DEFAULT_LIMIT,
    DEFAULT_PERIODS,
    FILTER_VALUES,
    FILTERS,
    LOG_CSV_COLUMNS,
    MAX_LIMIT,
    ONS,
    ORDERS,
)
from slawatch.reports.periods import PERIODS
from slawatch.reports.table import SORT_COLUMNS, sla_cycles
from slawatch.schemas.cycle_log import LOG_FIELDS
from slawatch.schemas.reasons import RejectReason
from slawatch.web.access import COOKIE
from slawatch.web.ingest import FAMILIES, PATH_PREFIX, RETRY_AFTER_S
from slawatch.web.ingest_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER

OPENAPI_VERSION: Final = "3.1.0"
API_VERSION: Final = "1"

_JSON: Final = "application/json"
_CSV: Final = "text/csv"

#: What each field of an SLA log record means.
LOG_FIELD_DOCS: Final[Mapping[str, str]] = {
    "conversation_key": "kind:tenant:id of the conversation: with metric and cycle, the key.",
    "metric": "The commitment.",
    "cycle": "Which cycle of the metric (1, 2, ...).",
    "conversation_kind": "ticket, chat or call.",
    "conversation_id": "The ticket, chat or call id.",
    "tenant": "Tenant.",
    "requester": "Who asked: the ticket's requester, the chat's customer, the call's caller.",
    "customer_group": "Customer group.",
    "channel": "Source channel.",
    "priority": "Priority.",
    "department": "Department.",
    "queue": "Call queue.",
    "agent": "Assigned agent.",
    "level": "SLA level that set the target.",
    "policy_version": "Policy version of the latest SLA event.",
    "target_s": "Target, seconds of working time.",
    "started_at": "When the cycle started (RFC 3339, UTC).",
    "due_at": "When it is or was due; null while paused short of its target.",
    "stopped_at": "When it stopped (met, missed or cancelled); null while open.",
    "at_risk_at": "When its working time crossed the at-risk threshold, if it did.",
    "breached_at": "When it breached (its due), if it did.",
    "status": "open, at_risk, breached (still open), or met, missed, cancelled (final).",
    "stop": "What stopped it (final cycles).",
    "reason": "Why it was cancelled, or other detail of its stop (final cycles).",
    "business_s": "Working seconds it took (final cycles).",
    "remaining_s": "target_s - business_s: negative when missed (final cycles).",
    "late": "An at-risk or breach declaration of it came late (a recovery).",
}

#: JSON Schema types of the table's Python types.
_JSON_TYPES: Final[Mapping[type, str]] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
}


def openapi_document(
    *, default_time_zone: str, reports: bool = True, ingest: bool = False
) -> dict[str, Any]:
    """The document; ``default_time_zone`` is the ``tz`` a request without one gets. With
    ``reports``, the reports and the wallboard (a worker); with ``ingest``, the HTTP ingest
    (a worker with ``http_ingest`` on, or ``slawatch ingest-http``)."""
    document = _document(default_time_zone)
    if not reports:
        document["paths"] = {"/openapi.json": document["paths"]["/openapi.json"]}
        document["tags"] = [tag for tag in document["tags"] if tag["name"] == "pages"]
        document["info"]["description"] = (
            "slawatch ingest-http: the HTTP ingest alone (README, Webhooks (HTTP))."
        )
    if ingest:
        _add_ingest(document)
    return document


def _document(default_time_zone: str) -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "slawatch",
            "version": API_VERSION,
            "description": (
                "A slawatch worker's web API: the SLA reports over the SLA log database "
                "(compliance per period, the log of every SLA cycle) as JSON or CSV, and "
                "the wallboard. Every path but /healthz, /readyz and /metrics asks for the "
                "web credential (SLAWATCH_WEB_AUTH_TOKEN) whenever one is set.\n\n"
                "A parameter given empty counts as not given. A wrong or unknown parameter "
                "answers 400 naming it; an SLA log database that cannot be used answers 503."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"basic": []}, {"tokenQuery": []}, {"tokenCookie": []}],
        "tags": [
            {"name": "reports", "description": "The SLA log and the compliance report."},
            {"name": "wallboard", "description": "The live wall screen."},
            {"name": "pages", "description": "Pages for a browser."},
        ],
        "paths": {
            "/api/reports/compliance": {"get": _compliance_operation()},
            "/api/reports/log": {"get": _log_operation()},
            "/api/reports/credits": {"get": _credits_operation()},
            "/openapi.json": {"get": _openapi_operation()},
            "/reports": {"get": _page("The reports page (HTML).", "reports")},
            "/wallboard": {"get": _page("The wallboard page (HTML); / redirects here.", "pages")},
            "/wallboard/state": {"get": _wallboard_state()},
            "/wallboard/events": {"get": _wallboard_events()},
        },
        "components": {
            "schemas": {
                "Error": _error_schema(),
                "ParameterError": _parameter_error_schema(),
                "ComplianceReport": _compliance_report_schema(),
                "ComplianceRow": _compliance_row_schema(),
                "Totals": _totals_schema(),
                "LogPage": _log_page_schema(),
                "LogRecord": _log_record_schema(),
                "CreditsReport": _credits_report_schema(),
                "CreditRow": _credit_row_schema(),
            },
            "parameters": _shared_parameters(default_time_zone),
            "responses": _shared_responses(),
            "securitySchemes": _security_schemes(),
        },
    }


# --- operations ---------------------------------------------------------------------------


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _common_parameters() -> list[dict[str, str]]:
    return [_ref("parameters", name) for name in (*FILTERS, "from", "to", "tz", "format")]


def _error_responses() -> dict[str, Any]:
    return {
        "400": _ref("responses", "BadParameter"),
        "401": _ref("responses", "Unauthorized"),
        "503": _ref("responses", "StoreUnavailable"),
    }


def _compliance_operation() -> dict[str, Any]:
    columns = ", ".join(("period", "start", "end", "<by columns>", *COMPLIANCE_MEASURES))
    back = ", ".join(f"{count} {period}s" for period, count in DEFAULT_PERIODS.items())
    return {
        "tags": ["reports"],
        "operationId": "complianceReport",
        "summary": "Compliance per period: met, missed and cancelled cycles",
        "description": (
            "Final cycles (met, missed, cancelled) counted by the local calendar period of "
            "their stop, in `tz`: days, weeks (from Monday) or months; with the average, "
            "longest and shortest working time of the met and the missed, and compliance "
            "= met / (met + missed). One row per period and `by` group that has a final "
            "cycle, ordered by period then groups. `from` and `to` apply to the stop. "
            f"Without `to` the range ends with today; without `from` it holds the last {back} "
            "(for period day, week, month), the current one included.\n\n"
            f"CSV columns: {columns}."
        ),
        "parameters": [
            *_common_parameters(),
            {
                "name": "period",
                "in": "query",
                "description": "The calendar period of a row.",
                "schema": _choice(PERIODS, "day"),
            },
            {
                "name": "by",
                "in": "query",
                "description": "Group each period's figures by these columns too, in this "
                "order (a comma list: by=department,level).",
                "style": "form",
                "explode": False,
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "enum": [*GROUP_COLUMNS, ""]},
                    "uniqueItems": True,
                },
            },
        ],
        "responses": {
            "200": {
                "description": "The report.",
                "headers": {"Content-Disposition": _disposition("sla-compliance.csv")},
                "content": {
                    _JSON: {"schema": _ref("schemas", "ComplianceReport")},
                    _CSV: {"schema": {"type": "string"}},
                },
            },
            **_error_responses(),
        },
    }


def _log_operation() -> dict[str, Any]:
    sort_keys = list(SORT_COLUMNS)
    return {
        "tags": ["reports"],
        "operationId": "slaLog",
        "summary": "The SLA log: one record per SLA cycle",
        "description": (
            "JSON: a page of at most `limit` records in `sort` order, the cursor of the "
            "next page (`next`, give it as `after`; null on the last page) and the count of "
            "every matching record (`total`). Ties are broken by the cycle's key, and "
            "records without a value of the sort key come last in ascending order.\n\n"
            "CSV: every matching record in that order (`limit` and `after` are ignored), "
            "streamed; a download cut short by a database failure ends without the last "
            f"chunk. Columns: {', '.join(LOG_CSV_COLUMNS)}."
        ),
        "parameters": [
            *_common_parameters(),
            {
                "name": "on",
                "in": "query",
                "description": "The instant `from` and `to` apply to: the cycle's start, its "
                "due or its stop (a range on due or stop leaves out the cycles without one).",
                "schema": _choice(ONS, "start"),
            },
            {
                "name": "sort",
                "in": "query",
                "description": "The sort key.",
                "schema": _choice(sort_keys, "started"),
            },
            {
                "name": "order",
                "in": "query",
                "description": "Ascending or descending.",
                "schema": _choice(ORDERS, "asc"),
            },
            {
                "name": "limit",
                "in": "query",
                "description": "Records in a JSON page.",
                "schema": {
                    "anyOf": [
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        _EMPTY,
                    ],
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": "after",
                "in": "query",
                "description": "The previous page's `next`: start after its last record. "
                "Only for the same sort and order; anything else answers 400.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "A page of the log (JSON), or all of it (CSV).",
                "headers": {"Content-Disposition": _disposition("sla-log.csv")},
                "content": {
                    _JSON: {"schema": _ref("schemas", "LogPage")},
                    _CSV: {"schema": {"type": "string"}},
                },
            },
            **_error_responses(),
        },
    }


def _credits_operation() -> dict[str, Any]:
    return {
        "tags": ["reports"],
        "operationId": "creditsReport",
        "summary": "SLA credits owed per customer for a month",
        "description": (
            "Per credit term of the policy in force (README, SLA credits) and customer (the "
            "tenant or customer group the term settles by): the month's met and missed "
            "cycles in the term's scope (by their stop, in `tz`), the compliance, what of "
            "the term applied, the monthly fee of `customer_fees_file`, the credit owed and "
            "why. A customer without a fee gets `status` fee_unknown and no credit, never 0. "
            "Without `month`, the last whole month.\n\n"
            f"CSV columns: {', '.join(CREDITS_COLUMNS)}."
        ),
        "parameters": [
            {
                "name": "month",
                "in": "query",
                "description": "The month, YYYY-MM, in `tz`.",
                "schema": {"anyOf": [{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, _EMPTY]},
            },
            _ref("parameters", "tz"),
            _ref("parameters", "format"),
        ],
        "responses": {
            "200": {
                "description": "The credits.",
                "headers": {"Content-Disposition": _disposition("sla-credits.csv")},
                "content": {
                    _JSON: {"schema": _ref("schemas", "CreditsReport")},
                    _CSV: {"schema": {"type": "string"}},
                },
            },
            **_error_responses(),
        },
    }


def _disposition(filename: str) -> dict[str, Any]:
    return {
        "description": f'With CSV: `attachment; filename="{filename}"`.',
        "schema": {"type": "string"},
    }


def _openapi_operation() -> dict[str, Any]:
    return {
        "tags": ["pages"],
        "operationId": "openapi",
        "summary": "This document",
        "responses": {
            "200": {
                "description": "The OpenAPI document.",
                "content": {_JSON: {"schema": {"type": "object"}}},
            },
            "401": _ref("responses", "Unauthorized"),
        },
    }


def _page(summary: str, tag: str) -> dict[str, Any]:
    return {
        "tags": [tag],
        "summary": summary,
        "responses": {
            "200": {"description": "The page.", "content": {"text/html": {"schema": {}}}},
            "401": _ref("responses", "Unauthorized"),
        },
    }


def _wallboard_state() -> dict[str, Any]:
    return {
        "tags": ["wallboard"],
        "operationId": "wallboardState",
        "summary": "The centre-wide live view now",
        "description": "Per queue the calls waiting, the longest wait and the service level "
        "windows; the open cycles at risk or breached; the latest breaches; the partitions "
        "without data (README, Wallboard).",
        "responses": {
            "200": {
                "description": "The view.",
                "content": {_JSON: {"schema": {"type": "object"}}},
            },
            "401": _ref("responses", "Unauthorized"),
        },
    }


def _wallboard_events() -> dict[str, Any]:
    return {
        "tags": ["wallboard"],
        "operationId": "wallboardEvents",
        "summary": "Server-sent events: the view whenever it changes",
        "description": "A `view` event with the document of /wallboard/state whenever it "
        "changes, and at least every 5 seconds.",
        "responses": {
            "200": {
                "description": "The event stream.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "401": _ref("responses", "Unauthorized"),
        },
    }


# --- parameters ---------------------------------------------------------------------------


def _shared_parameters(default_time_zone: str) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for name in FILTERS:
        items: dict[str, Any] = {"type": "string"}
        if name in FILTER_VALUES:
            items["enum"] = [*FILTER_VALUES[name], ""]
        parameters[name] = {
            "name": name,
            "in": "query",
            "description": f"Keep the cycles whose {name} is one of these (repeat the "
            f"parameter: {name}=a&{name}=b). A cycle without one is never kept.",
            "style": "form",
            "explode": True,
            "schema": {"type": "array", "items": items},
        }
    instant = {
        "anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
            _EMPTY,
        ]
    }
    parameters["from"] = {
        "name": "from",
        "in": "query",
        "description": "Start of the range (included): a date YYYY-MM-DD, the start of that "
        "day in `tz`, or an RFC 3339 instant with an offset; from 1970 on.",
        "schema": instant,
    }
    parameters["to"] = {
        "name": "to",
        "in": "query",
        "description": "End of the range (left out), after `from`: a date YYYY-MM-DD, the "
        "start of that day in `tz` (to=2026-12-01 ends with November 30th), or an RFC 3339 "
        "instant with an offset; from 1970 on.",
        "schema": instant,
    }
    parameters["tz"] = {
        "name": "tz",
        "in": "query",
        "description": "IANA time zone of the dates and periods (the centre's, "
        "SLAWATCH_REPORT_TIME_ZONE, by default).",
        "schema": {"type": "string", "default": default_time_zone},
        "example": "Europe/Paris",
    }
    parameters["format"] = {
        "name": "format",
        "in": "query",
        "description": "json or csv; without it, the Accept header chooses (JSON unless it "
        "prefers text/csv).",
        "schema": _choice(("json", "csv"), None),
    }
    return parameters


# --- schemas ------------------------------------------------------------------------------

#: A parameter given empty counts as not given (what an HTML form sends for a blank field).
_EMPTY: Final = {"type": "string", "maxLength": 0}


def _choice(values: Sequence[str], default: str | None) -> dict[str, Any]:
    """One of ``values`` (or empty: not given)."""
    schema: dict[str, Any] = {"type": "string", "enum": [*values, ""]}
    if default is not None:
        schema["default"] = default
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    nullable = dict(schema)
    nullable["type"] = [schema["type"], "null"]
    if "enum" in schema:
        nullable["enum"] = [*schema["enum"], None]
    return nullable


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"error": {"type": "string", "description": "What is wrong."}},
        "required": ["error"],
        "additionalProperties": False,
    }


def _parameter_error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "What is wrong, naming the parameter."},
            "parameter": {"type": "string", "description": "The parameter at fault."},
        },
        "required": ["error", "parameter"],
        "additionalProperties": False,
    }


def _seconds(description: str) -> dict[str, Any]:
    return {"type": ["number", "null"], "minimum": 0, "description": description}


def _count(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


def _percent() -> dict[str, Any]:
    return {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": 100,
        "description": "met / (met + missed) * 100; null when both are 0.",
    }


def _compliance_row_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "period": {
            "type": "string",
            "format": "date",
            "description": "The period's first local day: the day, the week's Monday or the "
            "month's 1st.",
        },
        "start": {"type": "string", "format": "date-time", "description": "Its first instant."},
        "end": {"type": "string", "format": "date-time", "description": "The next's first."},
    }
    for name in GROUP_COLUMNS:
        properties[name] = {
            "type": ["string", "null"],
            "description": f"The group's {name} (only with by={name}; null: cycles without one).",
        }
    for outcome in ("met", "missed"):
        properties[outcome] = _count(f"Cycles {outcome}.")
        properties[f"{outcome}_avg_s"] = _seconds(f"Average working seconds of the {outcome}.")
        properties[f"{outcome}_max_s"] = _seconds(f"Longest working seconds of the {outcome}.")
        properties[f"{outcome}_min_s"] = _seconds(f"Shortest working seconds of the {outcome}.")
    properties["cancelled"] = _count("Cycles cancelled.")
    properties["compliance_pct"] = _percent()
    return {
        "type": "object",
        "properties": properties,
        "required": ["period", "start", "end", *COMPLIANCE_MEASURES],
        "additionalProperties": False,
    }


def _totals_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The rows added up.",
        "properties": {
            "met": _count("Cycles met."),
            "missed": _count("Cycles missed."),
            "cancelled": _count("Cycles cancelled."),
            "compliance_pct": _percent(),
        },
        "required": ["met", "missed", "cancelled", "compliance_pct"],
        "additionalProperties": False,
    }


def _compliance_report_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "period": {"type": "string", "enum": list(PERIODS)},
            "time_zone": {"type": "string", "description": "The time zone of the periods."},
            "from": {"type": "string", "format": "date-time", "description": "The range's start."},
            "to": {"type": "string", "format": "date-time", "description": "Its end (left out)."},
            "by": {"type": "array", "items": {"type": "string", "enum": list(GROUP_COLUMNS)}},
            "rows": {"type": "array", "items": _ref("schemas", "ComplianceRow")},
            "totals": _ref("schemas", "Totals"),
        },
        "required": ["period", "time_zone", "from", "to", "by", "rows", "totals"],
        "additionalProperties": False,
    }


def _credits_report_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "month": {"type": "string"},
            "time_zone": {"type": "string"},
            "rows": {"type": "array", "items": _ref("schemas", "CreditRow")},
        },
        "required": ["month", "time_zone", "rows"],
        "additionalProperties": False,
    }


def _credit_row_schema() -> dict[str, Any]:
    text, maybe_text = {"type": "string"}, {"type": ["string", "null"]}
    count = {"type": "integer", "minimum": 0}
    money = {"type": ["string", "null"], "pattern": "^-?[0-9]+[.][0-9]{2}$",
             "description": "Exact, two decimals."}  # fmt: skip
    properties: dict[str, Any] = {
        "month": text,
        "start_ms": {"type": "integer"},
        "end_ms": {"type": "integer"},
        "term": text,
        "scope": text,
        "metrics": text,
        "customer_key": {"type": "string", "enum": ["tenant", "customer_group"]},
        "customer": maybe_text,
        "met": count,
        "missed": count,
        "cancelled": count,
        "compliance_pct": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
        "terms": text,
        "applied": text,
        "fee": money,
        "currency": maybe_text,
        "credit": money,
        "capped": {"type": "boolean"},
        "status": {"type": "string", "enum": list(get_args(CreditStatus))},
        "why": text,
    }
    assert tuple(properties) == CREDITS_COLUMNS, "the schema lists CreditRow's fields"
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _log_page_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": _ref("schemas", "LogRecord"), "maxItems": MAX_LIMIT},
            "next": {
                "type": ["string", "null"],
                "description": "Give it as `after` for the next page; null on the last.",
            },
            "total": _count("Records matching the filters (all pages)."),
        },
        "required": ["rows", "next", "total"],
        "additionalProperties": False,
    }


def _log_record_schema() -> dict[str, Any]:
    """From the table: each column's type and whether it may be NULL; instants as text."""
    enums: dict[str, Sequence[str]] = {
        **FILTER_VALUES,
        "conversation_kind": [kind.value for kind in ConversationKind],
    }
    properties: dict[str, Any] = {}
    for name in LOG_FIELDS:
        column = sla_cycles.c[name]
        key = name
        schema: dict[str, Any]
        if name.endswith("_ms"):
            key = name.removesuffix("_ms") + "_at"
            schema = {"type": "string", "format": "date-time"}
        else:
            schema = {"type": _JSON_TYPES[column.type.python_type]}
        if name in enums:
            schema["enum"] = list(enums[name])
        if column.nullable:
            schema = _nullable(schema)
        schema["description"] = LOG_FIELD_DOCS[key]
        properties[key] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# --- responses and security ---------------------------------------------------------------


def _shared_responses() -> dict[str, Any]:
    return {
        "BadParameter": {
            "description": "A parameter is wrong or unknown.",
            "content": {_JSON: {"schema": _ref("schemas", "ParameterError")}},
        },
        "Unauthorized": {
            "description": "The web credential is missing or wrong.",
            "headers": {
                "WWW-Authenticate": {
                    "description": "Basic, when the request accepts text/html (a browser).",
                    "schema": {"type": "string"},
                }
            },
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "StoreUnavailable": {
            "description": "The SLA log database cannot be used (its URL, password masked, "
            "is in the message).",
            "content": {_JSON: {"schema": _ref("schemas", "Error")}},
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Authorization: Bearer <SLAWATCH_WEB_AUTH_TOKEN>.",
        },
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "The token as the password, any user name (a browser asks).",
        },
        "tokenQuery": {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": "?token=<token> once: the server answers 303 to the same address "
            f"without it and sets the cookie {COOKIE}.",
        },
        "tokenCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": COOKIE,
            "description": "The HttpOnly cookie ?token= sets.",
        },
    }


# --- HTTP ingest --------------------------------------------------------------------------


def _add_ingest(document: dict[str, Any]) -> None:
    """The ``/ingest/*`` operations, their schemas and their security schemes."""
    document["tags"].append(
        {"name": "ingest", "description": "Events in over HTTP (webhooks): README, Webhooks."}
    )
    components = document["components"]
    for family, kind in FAMILIES.items():
        name = _event_schema_name(kind)
        components["schemas"][name] = _ingest_event_schema(kind)
        document["paths"][PATH_PREFIX + family] = {"post": _ingest_operation(family, name)}
    components["schemas"]["IngestAccepted"] = {
        "type": "object",
        "properties": {
            "accepted": _count("Events the broker acknowledged: all of the request's."),
            "event_ids": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["accepted", "event_ids"],
        "additionalProperties": False,
    }
    components["schemas"]["IngestRefused"] = _ingest_refused_schema()
    components["schemas"]["IngestUnavailable"] = {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "What went wrong with the broker."},
            "accepted": {"type": "integer", "const": 0},
        },
        "required": ["error", "accepted"],
        "additionalProperties": False,
    }
    components["securitySchemes"]["ingestBearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <SLAWATCH_HTTP_INGEST_TOKEN>.",
    }
    components["securitySchemes"]["ingestSignature"] = {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "sha256=<hex HMAC-SHA256 with SLAWATCH_HTTP_INGEST_HMAC_SECRET> of the "
        f"body as sent, or of `<timestamp>.<body>` when {TIMESTAMP_HEADER} is sent.",
    }


def _event_schema_name(kind: ConversationKind) -> str:
    return f"{kind.value.capitalize()}Event"


def _ingest_event_schema(kind: ConversationKind) -> dict[str, Any]:
    types = sorted(name for name, cls in EVENT_TYPES.items() if cls.KIND is kind)
    id_field = f"{kind.value}_id"
    return {
        "type": "object",
        "description": f"A {kind.value} event: one of {', '.join(types)}, each as its JSON "
        "Schema says (schemas/json/<type>.v1.json; README, Event contracts).",
        "properties": {
            "schema_version": {"type": "integer", "const": 1},
            "event_id": {"type": "string"},
            "type": {"type": "string", "enum": types},
            "occurred_at": {"type": ["string", "integer"]},
            id_field: {"type": "string"},
        },
        "required": ["schema_version", "event_id", "type", "occurred_at", id_field],
    }


def _ingest_refused_schema() -> dict[str, Any]:
    reasons = [reason.value for reason in RejectReason]
    return {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "accepted": {"type": "integer", "const": 0},
            "refused": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {
                            "type": ["integer", "null"],
                            "minimum": 0,
                            "description": "The event's place in the array (0 for a single "
                            "event); null when the body as a whole is refused.",
                        },
                        "reason": {"type": "string", "enum": reasons},
                        "field": {"type": ["string", "null"], "description": "The field."},
                        "detail": {"type": "string", "description": "What exactly is wrong."},
                        "event_id": {"type": ["string", "null"]},
                        "type": {"type": ["string", "null"]},
                    },
                    "required": ["index", "reason", "field", "detail", "event_id", "type"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["error", "accepted", "refused"],
        "additionalProperties": False,
    }


def _ingest_operation(family: str, event_schema: str) -> dict[str, Any]:
    error = {_JSON: {"schema": _ref("schemas", "Error")}}
    return {
        "tags": ["ingest"],
        "operationId": f"ingest{family.capitalize()}",
        "summary": f"Post {family} events: one, or a JSON array",
        "description": (
            f"Each event is validated by the `{family}` topic's contract and, if every one "
            f"passes, produced to that topic keyed by its {family[:-1]} id; 202 once the broker "
            "acknowledged them all. All or nothing: one refused event refuses the request "
            "(400, with every refused event's index and reason), and nothing is produced."
        ),
        "security": [{"ingestBearer": []}, {"ingestSignature": []}],
        "parameters": [
            {
                "name": TIMESTAMP_HEADER,
                "in": "header",
                "required": False,
                "description": "Unix seconds when the request was signed: then the signature "
                "covers `<timestamp>.<body>`, and a timestamp further than "
                "SLAWATCH_HTTP_INGEST_SIGNATURE_MAX_AGE_S from the server's clock is 403.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": {
                        "oneOf": [
                            _ref("schemas", event_schema),
                            {
                                "type": "array",
                                "minItems": 1,
                                "items": _ref("schemas", event_schema),
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
            "202": {
                "description": "Every event acknowledged by the broker.",
                "content": {_JSON: {"schema": _ref("schemas", "IngestAccepted")}},
            },
            "400": {
                "description": "Refused by the contract; nothing was produced.",
                "content": {_JSON: {"schema": _ref("schemas", "IngestRefused")}},
            },
            "401": {
                "description": "No credential.",
                "headers": {
                    "WWW-Authenticate": {"description": "Bearer.", "schema": {"type": "string"}}
                },
                "content": error,
            },
            "403": {"description": "A credential that is not valid.", "content": error},
            "413": {
                "description": "The body is larger than SLAWATCH_HTTP_INGEST_MAX_BODY_BYTES.",
                "content": error,
            },
            "503": {
                "description": "The broker did not acknowledge every event in time; nothing "
                "was accepted (a retry is safe: events are deduplicated by event_id).",
                "headers": {
                    "Retry-After": {
                        "description": f"Seconds to wait ({RETRY_AFTER_S}).",
                        "schema": {"type": "string"},
                    }
                },
                "content": {_JSON: {"schema": _ref("schemas", "IngestUnavailable")}},
            },
        },
    }
