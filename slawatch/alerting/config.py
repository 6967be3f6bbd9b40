"""The routing file: receivers and routes, read with every problem and its line.

:func:`parse_routing` reads the whole document through :mod:`slawatch.yamlfile` (the
same limits as a policy file) and reports every problem as
``file:line: field: message (hint: ...)``, as ``slawatch check-config`` prints them.
Secrets are resolved from the environment or files while reading; a problem names the
variable or the file, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from slawatch.alerting.receivers import Receiver, is_http_url, read_receivers
from slawatch.alerting.routes import Route, read_routes
from slawatch.core.calendar import Calendar
from slawatch.errors import SlawatchError
from slawatch.policy.calendars import read_calendars
from slawatch.policy.problems import PolicyReader
from slawatch.yamlfile import (
    Problem,
    YamlSyntaxError,
    read_text,
)

TOP_LEVEL = ("receivers", "routes", "link", "calendars")
#: The SLA event fields a ``link`` template may use, as ``{name}``.
LINK_FIELDS = (
    "conversation_id",
    "conversation_key",
    "conversation_kind",
    "tenant",
    "metric",
    "cycle",
    "department",
    "queue",
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]*)\}")
_EXAMPLE = "start from the README's alert routing example"


class RoutingFileError(SlawatchError):
    """A routing file that cannot be used; holds every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0].render(source) + more)

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    receivers: Mapping[str, Receiver] = field(hash=False)
    routes: tuple[Route, ...]
    link_template: str | None = None
    """Where a notification links to, with ``{field}`` placeholders (``LINK_FIELDS``)."""
    calendars: Mapping[str, Calendar] = field(default_factory=dict, hash=False)
    """Business calendars receivers' ``hours`` name (a policy's ``calendars`` syntax)."""

    def summary(self) -> str:
        steps = sum(len(route.steps) for route in self.routes)
        return f"routing: {len(self.receivers)} receivers, {len(self.routes)} routes, {steps} steps"


def parse_routing(
    text: str, source: str, *, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> RoutingConfig:
    """The routing in ``text``; :class:`RoutingFileError` lists every problem.

    ``env`` holds the variables secrets are read from (the process's by default);
    ``{file: ...}`` paths are relative to ``base_dir`` (the current folder by default)."""
    r = PolicyReader()
    config = None
    with r.guard(None, "(document)"):
        config = _parse(text, r, os.environ if env is None else env, base_dir or Path())
    if config is None:
        raise RoutingFileError(
            source, r.all_problems() or [Problem(1, "(document)", "cannot be read")]
        )
    return config


def _parse(
    text: str, r: PolicyReader, env: Mapping[str, str], base_dir: Path
) -> RoutingConfig | None:
    root = r.document(text, empty_hint=_EXAMPLE)
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        r.fail(root, "(top level)", "expected a mapping (key: value lines)", hint=_EXAMPLE)
        return None
    top = r.mapping(root, "", TOP_LEVEL)
    calendars: dict[str, Calendar | None] = {}
    if "calendars" in top:
        calendars = read_calendars(r, top["calendars"][1])
    receivers: dict[str, Receiver | None] = {}
    if "receivers" not in top:
        r.fail(root, "receivers", "missing", hint="receivers: {oncall: {type: pagerduty, ...}}")
    else:
        receivers = read_receivers(r, top["receivers"][1], env, base_dir, set(calendars))
    routes: list[Route | None] = []
    if "routes" not in top:
        r.fail(
            root, "routes", "missing", hint="routes: [{escalation: [{on: breached, to: [oncall]}]}]"
        )
    else:
        routes = read_routes(r, top["routes"][1], set(receivers))
    link_template = None
    if "link" in top:
        link_template = _link(r, top["link"][1])
    if r.found:
        return None
    return RoutingConfig(
        {name: rc for name, rc in receivers.items() if rc is not None},
        tuple(route for route in routes if route is not None),
        link_template,
        {name: c for name, c in calendars.items() if c is not None},
    )


def _link(r: PolicyReader, node: yaml.Node) -> str | None:
    text = r.text(node, "link")
    if text is None:
        return None
    hint = "link: https://helpdesk.example.com/tickets/{conversation_id}"
    for name in _PLACEHOLDER.findall(text):
        if name not in LINK_FIELDS:
            r.fail(
                node, "link", f"unknown field {{{name}}}", hint=f"fields: {', '.join(LINK_FIELDS)}"
            )
            return None
    if not is_http_url(_PLACEHOLDER.sub("x", text)):
        r.fail(node, "link", f"{text!r} is not an http(s) URL template", hint=hint)
        return None
    return text


def load_routing(path: Path, *, env: Mapping[str, str] | None = None) -> RoutingConfig:
    """The routing file at ``path``; ``{file: ...}`` secrets relative to its folder."""
    try:
        text = read_text(path)
    except YamlSyntaxError as exc:  # NotText, YamlLimitError
        problem = Problem(exc.line, "(document)", exc.message, exc.hint)
        raise RoutingFileError(str(path), [problem]) from None
    except SlawatchError as exc:  # cannot be read: missing, a folder, no permission
        raise RoutingFileError(str(path), [Problem(0, "(file)", str(exc))]) from None
    return parse_routing(text, str(path), env=env, base_dir=path.parent)
