"""The customer fees file (setting ``customer_fees_file``): each customer's monthly fee
and currency, which the SLA credits report takes percentages of.

::

    currency: EUR                      # the default currency
    customers:
      acme:   {monthly_fee: 12000}     # key: the tenant or customer group credit terms name
      globex: {monthly_fee: 8000.50, currency: USD}

:func:`parse_fees` reads the whole document through :mod:`slawatch.yamlfile` (the same
limits as a policy file) and reports every problem as ``file:line: field: message (hint:
...)``. A fee is digits with at most two decimals, written as it is meant (``12000``,
``8000.50``; no sign, exponent or separators), read as a :class:`~decimal.Decimal` from
its text, never through a float.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from slawatch.core.credits import (
    CURRENCY_HINT,
    MONEY_HINT,
    CreditError,
    CustomerFee,
    CustomerFees,
    parse_currency,
    parse_money,
)
from slawatch.errors import SlawatchError
from slawatch.yamlfile import Problem, YamlReader, YamlSyntaxError, read_text

__all__ = ["FeesFileError", "load_fees", "parse_fees"]

#: The keys of the document, and of one customer.
TOP_LEVEL = ("currency", "customers")
CUSTOMER_KEYS = ("monthly_fee", "currency")
#: The most customers a file lists, and the longest customer name (a tenant or group).
MAX_CUSTOMERS = 10_000
MAX_CUSTOMER_CHARS = 256
_EXAMPLE = "currency: EUR  and  customers: {acme: {monthly_fee: 12000}}"


class FeesFileError(SlawatchError):
    """A fees file that cannot be used; holds every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0].render(source) + more)

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


def parse_fees(text: str, source: str) -> CustomerFees:
    """The fees in ``text`` by customer; :class:`FeesFileError` lists every problem."""
    r = YamlReader()
    fees = None
    try:
        fees = _parse(text, r)
    except Exception as exc:  # noqa: BLE001 - a last line of defence: a problem, not a crash
        r.fail(None, "(document)", f"cannot be read ({type(exc).__name__}: {str(exc)[:160]})")
    if fees is None or r.found:
        problems = r.all_problems() or [Problem(1, "(document)", "cannot be read")]
        raise FeesFileError(source, problems)
    return fees


def load_fees(path: Path) -> CustomerFees:
    """The fees file at ``path``."""
    try:
        text = read_text(path)
    except YamlSyntaxError as exc:  # NotText, YamlLimitError
        problem = Problem(exc.line, "(document)", exc.message, exc.hint)
        raise FeesFileError(str(path), [problem]) from None
    except SlawatchError as exc:  # cannot be read: missing, a folder, no permission
        raise FeesFileError(str(path), [Problem(0, "(file)", str(exc))]) from None
    return parse_fees(text, str(path))


def _parse(text: str, r: YamlReader) -> dict[str, CustomerFee] | None:
    root = r.document(text, empty_hint=_EXAMPLE)
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        r.fail(root, "(top level)", "expected a mapping (key: value lines)", hint=_EXAMPLE)
        return None
    top = r.mapping(root, "", TOP_LEVEL)
    default = None
    if "currency" in top:
        default = _currency(r, top["currency"][1], "currency")
    if "customers" not in top:
        r.fail(root, "customers", "missing", hint=_EXAMPLE)
        return None
    fees: dict[str, CustomerFee] = {}
    for name, (name_node, node) in r.mapping(top["customers"][1], "customers").items():
        field = f"customers.{name}"
        if len(fees) == MAX_CUSTOMERS:
            r.fail(name_node, field, f"more than {MAX_CUSTOMERS:,} customers")
            break
        if not name.strip() or len(name) > MAX_CUSTOMER_CHARS:
            r.fail(name_node, field, f"a name of {len(name)} characters: 1 to "
                   f"{MAX_CUSTOMER_CHARS}", hint="the tenant or customer group")  # fmt: skip
            continue
        fee = _customer(r, node, field, default, "currency" in top)
        if fee is not None:
            fees[name] = fee
    return fees


def _customer(
    r: YamlReader, node: yaml.Node, field: str, default: str | None, default_given: bool
) -> CustomerFee | None:
    keys = r.mapping(node, field, CUSTOMER_KEYS)
    if not isinstance(node, yaml.MappingNode):
        return None
    fee = None
    if "monthly_fee" not in keys:
        r.fail(node, f"{field}.monthly_fee", "missing", hint="{monthly_fee: 12000}")
    else:
        fee_node = keys["monthly_fee"][1]
        text = r.text(fee_node, f"{field}.monthly_fee")
        if text is not None:
            try:
                fee = parse_money(text)
            except CreditError as exc:
                r.fail(fee_node, f"{field}.monthly_fee", str(exc), hint=MONEY_HINT)
    currency = default
    if "currency" in keys:
        currency = _currency(r, keys["currency"][1], f"{field}.currency")
    elif not default_given:
        r.fail(node, f"{field}.currency", "missing, and the file sets no default currency",
               hint="currency: EUR at the top, or {monthly_fee: 12000, currency: EUR}")  # fmt: skip
    if fee is None or currency is None:
        return None
    return CustomerFee(fee, currency)


def _currency(r: YamlReader, node: yaml.Node, field: str) -> str | None:
    text = r.text(node, field)
    if text is None:
        return None
    try:
        return parse_currency(text)
    except CreditError as exc:
        r.fail(node, field, str(exc), hint=CURRENCY_HINT)
        return None
