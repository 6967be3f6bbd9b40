"""``slawatch report compliance|log|credits``: the SLA reports from the SLA log database, on a
terminal or into a file.

The options are the web API's parameters (:mod:`slawatch.reports.export`: the same
meaning, the same checks) and the CSV is the same file the API sends. A wrong option is
one line naming it (``slawatch: --sort: 'x' is not one of ...``), exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from slawatch.config.settings import Settings, load_settings
from slawatch.errors import SlawatchError
from slawatch.reports import periods
from slawatch.reports.compliance import GROUP_COLUMNS
from slawatch.reports.errors import InvalidQuery
from slawatch.reports.export import (
    COMPLIANCE_MEASURES,
    CREDITS_COLUMNS,
    FILTER_VALUES,
    FILTERS,
    LOG_CSV_COLUMNS,
    ONS,
    ComplianceQuery,
    LogQuery,
    compliance_columns,
    compliance_document,
    compliance_query,
    compliance_record,
    compliance_totals,
    credits_document,
    credits_query,
    csv_lines,
    log_query,
    log_record,
    open_store,
    parameter_of,
)
from slawatch.reports.store import LogStore
from slawatch.reports.table import SORT_COLUMNS

FORMATS: Final = ("table", "csv", "json")
#: Rows of the log a table shows without ``--limit`` (a terminal is no place for more).
TABLE_ROWS: Final = 100
#: Rows read from the database at a time.
PAGE_ROWS: Final = 1000
#: The log's columns in a table: who, what, where it stands and when; the CSV has all.
LOG_TABLE_COLUMNS: Final = LOG_CSV_COLUMNS[: LOG_CSV_COLUMNS.index("remaining_s") + 1]

_FORMAT_HELP = (
    "table: aligned text (the default when the output is a terminal); csv: RFC 4180 with a "
    "header line (the default otherwise, e.g. `> report.csv`); json"
)


def _run_report(args: argparse.Namespace) -> int:
    # Reading the schema's revision is no news on a terminal.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = load_settings(args.config)
    output = args.format or ("table" if sys.stdout.isatty() else "csv")
    try:
        if output not in FORMATS:
            raise InvalidQuery("format", f"{output!r} is not one of {', '.join(FORMATS)}")
        url = args.db or str(settings.log_store)
        if args.report == "credits":
            _write_credits(settings, args, url, output)
        elif args.report == "compliance":
            query = compliance_query(
                _parameters(args), default_time_zone=settings.report_time_zone, now_ms=_now_ms()
            )
            with open_store(url) as store:
                _write_compliance(store, query, output)
        else:
            log = log_query(
                _parameters(args), default_time_zone=settings.report_time_zone, max_limit=None
            )
            with open_store(url) as store:
                _write_log(store, log, output)
    except InvalidQuery as error:
        name, message = parameter_of(error)
        raise SlawatchError(f"{_option(name)}: {message}") from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's final
        # flush from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _write_compliance(store: LogStore, query: ComplianceQuery, output: str) -> None:
    rows = store.compliance(
        query.log_filter, period=query.period, time_zone=query.time_zone, by=query.by
    )
    if output == "json":
        _write([orjson.dumps(compliance_document(query, rows), option=orjson.OPT_INDENT_2), b"\n"])
    elif output == "csv":
        records = (compliance_record(row) for row in rows)
        _write([csv_lines(records, compliance_columns(query.by), header=True)])
    else:
        # The period says when; its instants are in the CSV and the JSON.
        columns = ("period", *query.by, *COMPLIANCE_MEASURES)
        totals = {"period": "total", **dict.fromkeys(query.by, ""), **compliance_totals(rows)}
        _write(_table(columns, [compliance_record(row) for row in rows], footer=totals))


#: The credits' columns in a table: who, how it went, what is owed; the CSV has all.
CREDITS_TABLE_COLUMNS: Final = ("term", "customer", "met", "missed", "compliance_pct",
                                 "applied", "fee", "credit", "currency", "status")  # fmt: skip


def _write_credits(settings: Settings, args: argparse.Namespace, url: str, output: str) -> None:
    from slawatch.config.fees import load_fees
    from slawatch.core.policy import builtin_policy
    from slawatch.policy import load_policy
    from slawatch.reports.credits import credits_report

    given = {name: [value] for name, value in (("month", args.month), ("tz", args.tz)) if value}
    query = credits_query(given, default_time_zone=settings.report_time_zone, now_ms=_now_ms())
    policy_file = args.policy or settings.policy_file
    policy = load_policy(Path(policy_file)) if policy_file else builtin_policy()
    if not policy.credits:
        raise SlawatchError(f"policy {policy.version} has no credits terms (README, SLA credits)")
    fees_file = args.fees or settings.customer_fees_file
    fees = load_fees(Path(fees_file)) if fees_file else {}
    with open_store(url) as store:
        rows = credits_report(store, policy.credits, fees, query.month, query.time_zone)
    if output == "json":
        _write([orjson.dumps(credits_document(query, rows), option=orjson.OPT_INDENT_2), b"\n"])
    elif output == "csv":
        _write([csv_lines((row.as_dict() for row in rows), CREDITS_COLUMNS, header=True)])
    else:
        _write(_table(CREDITS_TABLE_COLUMNS, [row.as_dict() for row in rows]))
        for row in rows:  # the reasons, which a table cell would cut
            print(f"{row.term} / {row.customer or '(no customer)'}: {row.why}")


def _write_log(store: LogStore, query: LogQuery, output: str) -> None:
    limit = query.limit or (TABLE_ROWS if output == "table" else None)
    reader = _LogReader(store, query, limit)
    if output == "json":  # JSON Lines, one record a line, as `slawatch replay` writes them
        _write(orjson.dumps(record) + b"\n" for record in reader)
    elif output == "csv":
        _write(csv_lines(page, LOG_CSV_COLUMNS, header=first) for first, page in reader.pages())
    else:
        _write(_table(LOG_TABLE_COLUMNS, list(reader)))
    if reader.more:
        print(
            f"slawatch: more than {limit} rows: give --limit, or --format csv for all",
            file=sys.stderr,
        )


class _LogReader:
    """The log's records in the query's order, read a page at a time, at most ``limit``;
    :attr:`more` says, once they are read, whether more were left."""

    def __init__(self, store: LogStore, query: LogQuery, limit: int | None) -> None:
        self.store = store
        self.query = query
        self.limit = limit
        self.more = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _, page in self.pages():
            yield from page

    def pages(self) -> Iterator[tuple[bool, list[dict[str, Any]]]]:
        """(first page?, its records): the first one even when empty."""
        after = None
        count = 0
        first = True
        while True:
            size = PAGE_ROWS if self.limit is None else min(PAGE_ROWS, self.limit - count)
            page = self.store.log_page(
                self.query.log_filter,
                sort=self.query.sort,
                descending=self.query.descending,
                limit=size,
                after=after,
            )
            yield first, [log_record(row) for row in page.rows]
            first = False
            count += len(page.rows)
            after = page.next_cursor
            if after is None:
                return
            if self.limit is not None and count >= self.limit:
                self.more = True
                return


def _write(chunks: Iterable[bytes]) -> None:
    out: BinaryIO = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def _now_ms() -> int:
    from slawatch.core.clock import SystemClock

    return SystemClock().now_ms()


def _parameters(args: argparse.Namespace) -> dict[str, list[str]]:
    """The options as the API's query parameters."""
    given: dict[str, list[str]] = {}
    for name in FILTERS:
        values = getattr(args, name)
        if values:
            given[name] = list(values)
    single = {"from": args.from_, "to": args.to, "tz": args.tz}
    if args.report == "compliance":
        single.update(period=args.period, by=args.by)
    else:
        single.update(on=args.on, sort=args.sort, limit=args.limit)
        if args.desc:
            single["order"] = "desc"
    for name, value in single.items():
        if value is not None:
            given[name] = [value]
    return given


def _option(parameter: str) -> str:
    """The option behind an API parameter."""
    return "--desc" if parameter == "order" else "--" + parameter.replace("_", "-")


def _table(
    columns: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    footer: Mapping[str, Any] | None = None,
) -> Iterator[bytes]:
    """An aligned text table: numbers right-aligned, a rule under the header (and above
    the footer); "no rows" when there are none."""
    if not records:
        yield b"no rows\n"
        return
    lines = [[_cell(record[name]) for name in columns] for record in records]
    if footer is not None:
        lines.append([_cell(footer.get(name)) for name in columns])
    numeric = [any(isinstance(record[name], int | float) for record in records) for name in columns]
    widths = [max(len(name), *(len(line[i]) for line in lines)) for i, name in enumerate(columns)]

    def text(cells: Sequence[str]) -> bytes:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return ("  ".join(padded).rstrip() + "\n").encode()

    rule = text(["-" * width for width in widths])
    yield text(columns)
    yield rule
    for line in lines[: len(records)]:
        yield text(line)
    if footer is not None:
        yield rule
        yield text(lines[-1])


def _cell(value: object) -> str:
    """A value on one line of a terminal: control characters escaped (a line break in a
    requester's name, or an escape sequence meant for the terminal, shows as ``\\n``,
    ``\\x1b``), seconds and percentages to a tenth."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def add_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="SLA reports from the SLA log database: compliance per period, or the log",
        description="The reports of the web API (/api/reports/...) on the command line.",
    )
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    compliance = kinds.add_parser(
        "compliance",
        help="met, missed and cancelled cycles per day, week or month of their stop",
        description="Final cycles per local day, week or month of their stop (--from and "
        "--to apply to the stop): met and missed with their average, longest and shortest "
        "working time, cancelled, and compliance = met / (met + missed). Without --to the "
        "range ends with today; without --from it holds the last 30 days, 12 weeks or 12 "
        "months.",
    )
    compliance.add_argument(
        "--period", default=None, help=f"{', '.join(periods.PERIODS)} (default: day)"
    )
    compliance.add_argument(
        "--by", default=None, help=f"group by these too, a comma list of {', '.join(GROUP_COLUMNS)}"
    )
    log = kinds.add_parser(
        "log",
        help="the SLA log: one row per SLA cycle",
        description="One row per SLA cycle in --sort order. A table shows the first "
        f"{TABLE_ROWS} rows and the main columns; csv and json give every row and column "
        "(json: one record a line).",
    )
    log.add_argument(
        "--on",
        default=None,
        help=f"what --from and --to apply to: {', '.join(ONS)} (default: start)",
    )
    log.add_argument("--sort", default=None, help=f"{', '.join(SORT_COLUMNS)} (default: started)")
    log.add_argument("--desc", action="store_true", help="descending order")
    log.add_argument(
        "--limit",
        default=None,
        metavar="N",
        help=f"at most N rows (default: all; {TABLE_ROWS} in a table)",
    )
    for parser in (compliance, log):
        _add_common(parser)
        parser.set_defaults(run=_run_report)
    credits = kinds.add_parser(
        "credits",
        help="SLA credits owed per customer for a month (the policy's credits terms)",
        description="Per credit term of the policy and customer: the month's met and missed "
        "cycles in the term's scope, compliance, what of the term applied, the monthly fee "
        "(SLAWATCH_CUSTOMER_FEES_FILE) and the credit owed, with why (README, SLA credits).",
    )
    credits.add_argument(
        "--month", default=None, metavar="YYYY-MM", help="the month (default: the last whole one)"
    )
    credits.add_argument(
        "--tz",
        default=None,
        metavar="ZONE",
        help="IANA time zone of the month (default: SLAWATCH_REPORT_TIME_ZONE)",
    )
    credits.add_argument(
        "--policy",
        default=None,
        metavar="FILE",
        help="the policy whose credits terms apply (default: SLAWATCH_POLICY_FILE)",
    )
    credits.add_argument(
        "--fees",
        default=None,
        metavar="FILE",
        help="customer fees file (default: SLAWATCH_CUSTOMER_FEES_FILE)",
    )
    credits.add_argument("--format", default=None, help=_FORMAT_HELP)
    credits.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the SLA log database (default: SLAWATCH_LOG_STORE_URL's)",
    )
    credits.set_defaults(run=_run_report)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="from_",
        default=None,
        metavar="WHEN",
        help="start of the range, included: a date YYYY-MM-DD (its start in --tz) or an "
        "RFC 3339 instant",
    )
    parser.add_argument(
        "--to", default=None, metavar="WHEN", help="end of the range, left out: the same forms"
    )
    parser.add_argument(
        "--tz",
        default=None,
        metavar="ZONE",
        help="IANA time zone of dates and periods (default: SLAWATCH_REPORT_TIME_ZONE)",
    )
    for name in FILTERS:
        known = FILTER_VALUES.get(name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action="append",
            default=None,
            metavar="VALUE",
            help=f"only this {name} (repeat for any of several)"
            + (f": {', '.join(known)}" if known else ""),
        )
    parser.add_argument("--format", default=None, help=_FORMAT_HELP)
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the SLA log database (default: SLAWATCH_LOG_STORE_URL's)",
    )
