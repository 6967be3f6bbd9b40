"""The managers' reports over HTTP: the compliance report and the SLA log, as JSON or CSV.

Routes (mounted on the worker's aiohttp application by :func:`add_report_routes`; the
access middleware of :mod:`slawatch.web.access` asks for the web credential on all of
them, as on the wallboard):

- ``GET /api/reports/compliance``: met, missed and cancelled cycles per day, week or
  month of their stop, optionally by department, level, ...;
- ``GET /api/reports/log``: the SLA log a page at a time (JSON), or every matching row
  (CSV, streamed page by page: never the whole log in memory);
- ``GET /api/reports/credits``: the SLA credits owed per customer for a month, under the
  policy's ``credits`` terms and the fees of ``customer_fees_file`` (README, SLA credits);
- ``GET /openapi.json``: the OpenAPI document of all this (:mod:`slawatch.web.openapi`);
- ``GET /reports``: the reports page (``/reports/static/{name}``: its CSS and JS).

The parameters, columns and CSV are :mod:`slawatch.reports.export`'s, shared with
``slawatch report``. ``format=json|csv`` chooses the answer's type, else the ``Accept``
header (JSON unless it prefers ``text/csv``). A wrong or unknown parameter answers 400
``{"error": ..., "parameter": ...}``; a database that cannot be used answers 503
``{"error": ...}`` naming its URL, password masked.

The store is opened on the first request, for reading only (never migrated, never
created), and every call to it runs on this API's own threads: never on the event loop,
and never in the way of the log sink's writes, which have a thread of their own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web

from slawatch.config.fees import FeesFileError, load_fees
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock, SystemClock
from slawatch.core.credits import CreditTerm, CustomerFees
from slawatch.reports.credits import credits_report
from slawatch.reports.errors import InvalidQuery, LogStoreError
from slawatch.reports.export import (
    CREDITS_COLUMNS,
    DEFAULT_LIMIT,
    LOG_CSV_COLUMNS,
    LogQuery,
    compliance_columns,
    compliance_document,
    compliance_query,
    compliance_record,
    credits_document,
    credits_query,
    csv_lines,
    log_query,
    log_record,
    open_store,
    parameter_of,
)
from slawatch.reports.log_page import LogPage
from slawatch.reports.store import LogStore
from slawatch.web.openapi import openapi_document

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads reading the store: as many report queries at once.
THREADS: Final = 4
#: Rows per page while a CSV of the log streams out.
CSV_PAGE_ROWS: Final = 1000
#: Parameters every report takes besides its own: the answer's type, and the access
#: credential (read by the access middleware; allowed here so that it is not "unknown").
COMMON_PARAMETERS: Final = ("format", "token")
FORMATS: Final = ("json", "csv")
CSV_TYPE: Final = "text/csv; charset=utf-8"

_STATIC: Final = {"reports.css": "text/css", "reports.js": "text/javascript"}


class ReportsApi:
    """The reports' handlers, over one SLA log store opened on first use."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        credit_terms: Callable[[], Sequence[CreditTerm]] = tuple,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        #: The credit terms of the policy in force (the worker's current policy).
        self.credit_terms = credit_terms
        self._url = str(settings.log_store)
        self._store: LogStore | None = None
        self._opening = asyncio.Lock()
        self._threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="reports")
        self._failing = False

    # --- the store ----------------------------------------------------------------------

    async def _in_thread(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, function)

    async def _read(self, function: Callable[[LogStore], T]) -> T:
        """``function(store)`` on a thread, the store opened first if need be. A store
        that fails is logged once, and once more when it answers again."""
        try:
            async with self._opening:
                if self._store is None:
                    self._store = await self._in_thread(functools.partial(open_store, self._url))
            store = self._store
            result = await self._in_thread(functools.partial(function, store))
        except LogStoreError as error:
            if not self._failing:
                self._failing = True
                log.warning("reports: cannot read the SLA log: %s", error)
            raise
        if self._failing:
            self._failing = False
            log.info("reports: the SLA log store answers again")
        return result

    async def close(self) -> None:
        """Close the store's connections and let the threads go."""
        store, self._store = self._store, None
        if store is not None:
            await self._in_thread(store.close)
        self._threads.shutdown(wait=False)

    # --- the reports --------------------------------------------------------------------

    async def compliance(self, request: web.Request) -> web.StreamResponse:
        as_csv = wants_csv(request)
        query = compliance_query(
            parameters(request),
            default_time_zone=self.settings.report_time_zone,
            now_ms=self.clock.now_ms(),
            ignored=COMMON_PARAMETERS,
        )
        rows = await self._read(
            lambda store: store.compliance(
                query.log_filter, period=query.period, time_zone=query.time_zone, by=query.by
            )
        )
        if as_csv:
            body = csv_lines(
                (compliance_record(row) for row in rows), compliance_columns(query.by), header=True
            )
            return web.Response(body=body, headers=_csv_headers("sla-compliance.csv"))
        return _json(compliance_document(query, rows))

    async def credits(self, request: web.Request) -> web.StreamResponse:
        as_csv = wants_csv(request)
        query = credits_query(
            parameters(request),
            default_time_zone=self.settings.report_time_zone,
            now_ms=self.clock.now_ms(),
            ignored=COMMON_PARAMETERS,
        )
        terms = tuple(self.credit_terms())
        try:
            fees = await self._in_thread(self._fees)
        except FeesFileError as error:  # the file is the operator's to fix: say where
            return web.json_response({"error": f"customer fees: {error}"}, status=503)
        rows = await self._read(
            lambda store: credits_report(store, terms, fees, query.month, query.time_zone)
        )
        if as_csv:
            body = csv_lines((row.as_dict() for row in rows), CREDITS_COLUMNS, header=True)
            return web.Response(body=body, headers=_csv_headers("sla-credits.csv"))
        return _json(credits_document(query, rows))

    def _fees(self) -> CustomerFees:
        """The fees file, read again for each report (it changes with contracts)."""
        path = self.settings.customer_fees_file
        return load_fees(Path(path)) if path else {}

    async def log(self, request: web.Request) -> web.StreamResponse:
        as_csv = wants_csv(request)
        query = log_query(
            parameters(request),
            default_time_zone=self.settings.report_time_zone,
            ignored=COMMON_PARAMETERS,
        )
        if as_csv:
            return await self._log_csv(request, query)
        limit = query.limit or DEFAULT_LIMIT

        def page_and_total(store: LogStore) -> tuple[LogPage, int]:
            page = store.log_page(
                query.log_filter,
                sort=query.sort,
                descending=query.descending,
                limit=limit,
                after=query.after,
            )
            return page, store.count(query.log_filter)

        page, total = await self._read(page_and_total)
        return _json(
            {
                "rows": [log_record(row) for row in page.rows],
                "next": page.next_cursor,
                "total": total,
            }
        )

    async def _log_csv(self, request: web.Request, query: LogQuery) -> web.StreamResponse:
        """Every row ``query`` keeps, in its order (``limit`` and ``after`` ignored), a page
        at a time. The first page is read before anything is sent, so that a bad query or
        an unreachable store still gets its status; a store lost midway cuts the
        connection before the end of the chunked body, so the client sees a broken
        download rather than a short file that looks complete."""

        def page(after: str | None) -> Callable[[LogStore], LogPage]:
            return lambda store: store.log_page(
                query.log_filter,
                sort=query.sort,
                descending=query.descending,
                limit=CSV_PAGE_ROWS,
                after=after,
            )

        found = await self._read(page(None))
        response = web.StreamResponse(headers=_csv_headers("sla-log.csv"))
        await response.prepare(request)
        if request.method == "HEAD":  # the headers are the answer: read no more pages
            return response
        header = True
        try:
            while True:
                rows = (log_record(row) for row in found.rows)
                await response.write(csv_lines(rows, LOG_CSV_COLUMNS, header=header))
                header = False
                if found.next_cursor is None:
                    break
                try:
                    found = await self._read(page(found.next_cursor))
                except LogStoreError:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away
        return response


def parameters(request: web.Request) -> dict[str, list[str]]:
    """The query string: every value of each parameter, in order."""
    query = request.query
    return {name: query.getall(name) for name in query}


def wants_csv(request: web.Request) -> bool:
    """Whether to answer CSV: ``format`` if given, else whether ``Accept`` prefers
    ``text/csv`` to ``application/json`` (JSON on a tie, and without the header)."""
    given = [value for value in request.query.getall("format", []) if value]
    if len(given) > 1:
        raise InvalidQuery("format", f"given {len(given)} times: give it once")
    if given:
        if given[0] not in FORMATS:
            raise InvalidQuery("format", f"{given[0]!r} is not one of {', '.join(FORMATS)}")
        return given[0] == "csv"
    accept = request.headers.get("Accept", "")
    csv_wanted = _preference(accept, "text", "csv")
    return csv_wanted[0] > 0 and csv_wanted > _preference(accept, "application", "json")


def _preference(accept: str, kind: str, subtype: str) -> tuple[float, int]:
    """How much ``accept`` wants ``kind/subtype``: the quality of the most specific range
    that matches it (0: refused), and how specific that range is (2 exact, 1 ``kind/*``,
    0 ``*/*``); ``(0, -1)`` when none does."""
    best = (0.0, -1)
    for item in accept.split(","):
        media, *options = (part.strip() for part in item.split(";"))
        main, _, sub = media.lower().partition("/")
        if (main, sub) == (kind, subtype):
            specific = 2
        elif (main, sub) == (kind, "*"):
            specific = 1
        elif (main, sub) == ("*", "*"):
            specific = 0
        else:
            continue
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                quality = min(max(quality, 0.0), 1.0) if math.isfinite(quality) else 0.0
        if specific > best[1]:
            best = (quality, specific)
    return best[0], best[1]


def _json(document: Mapping[str, Any] | Sequence[Any]) -> web.Response:
    return web.Response(body=orjson.dumps(document), content_type="application/json")


def _csv_headers(filename: str) -> dict[str, str]:
    return {
        "Content-Type": CSV_TYPE,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answering_errors(handler: Handler) -> Handler:
    """400 for a bad parameter, 503 for a store that cannot be used, as JSON."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidQuery as error:
            name, message = parameter_of(error)
            return web.json_response({"error": f"{name}: {message}", "parameter": name}, status=400)
        except LogStoreError as error:
            return web.json_response({"error": str(error)}, status=503)

    return answer


def _static(name: str) -> bytes | None:
    """A file of the reports page, None if the package has none by that name."""
    try:
        return resources.files("slawatch.web").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def add_report_routes(app: web.Application, api: ReportsApi) -> None:
    """Mount the reports' routes on the worker's aiohttp application (and close the
    store when it shuts down)."""
    document = orjson.dumps(
        openapi_document(
            default_time_zone=api.settings.report_time_zone, ingest=api.settings.http_ingest
        )
    )

    async def openapi(request: web.Request) -> web.StreamResponse:
        return web.Response(body=document, content_type="application/json")

    async def page(request: web.Request) -> web.StreamResponse:
        body = _static("reports.html")
        if body is None:
            raise web.HTTPNotFound(text="the reports page is not installed\n")
        return web.Response(body=body, content_type="text/html")

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = _static(name) if name in _STATIC else None
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type=_STATIC[name])

    async def slash(request: web.Request) -> web.StreamResponse:
        return web.Response(status=301, headers={"Location": "/reports"})

    async def close(app: web.Application) -> None:
        await api.close()

    app.on_cleanup.append(close)
    app.router.add_get("/api/reports/compliance", _answering_errors(api.compliance))
    app.router.add_get("/api/reports/log", _answering_errors(api.log))
    app.router.add_get("/api/reports/credits", _answering_errors(api.credits))
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/reports", page)
    app.router.add_get("/reports/", slash)
    app.router.add_get("/reports/static/{name}", static)
