"""What is wrong with a policy file, and the reader that collects it.

Every problem has its line, the dotted path of the field and, where there is one, a hint;
:class:`PolicyFileError` holds all of them so ``slawatch check-config`` lists them at once.
Whatever goes wrong while a policy loads ends as a problem with a line and a field, never
as another exception (:meth:`PolicyReader.guard`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import yaml

from slawatch.core.durations import InvalidDuration, parse_duration_ms
from slawatch.errors import SlawatchError
from slawatch.policy.regex import RegexBudget
from slawatch.yamlfile import Problem, YamlReader

__all__ = ["MAX_DURATION", "PolicyFileError", "PolicyReader", "Problem"]

#: The longest duration a policy may write (targets, at_risk, short_abandon, within,
#: greater, less): ten years, so a due is always a date the state table can store.
MAX_DURATION = "3660d"
MAX_DURATION_MS = parse_duration_ms(MAX_DURATION)


class PolicyFileError(SlawatchError):
    """A policy that cannot be used; holds every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        more = (
            f" (and {len(problems) - 1} more: slawatch check-config)" if len(problems) > 1 else ""
        )
        super().__init__(problems[0].render(source) + more)

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


def safe_duration_ms(text: str) -> int:
    """:func:`parse_duration_ms`, bounded by :data:`MAX_DURATION`; only
    :class:`InvalidDuration` escapes (``9999…9d`` would overflow a float)."""
    try:
        value = parse_duration_ms(text)
    except (OverflowError, ValueError) as exc:  # InvalidDuration is a ValueError
        if isinstance(exc, InvalidDuration):
            raise
        raise InvalidDuration(f"{text[:40]!r} is not a duration like 90s, 15m, 8h or 3d") from None
    if value > MAX_DURATION_MS:
        raise InvalidDuration(f"{text[:40]!r} is longer than {MAX_DURATION}")
    return value


class PolicyReader(YamlReader):
    """The YAML walker, plus the durations and patterns a policy is written in."""

    def __init__(self) -> None:
        super().__init__()
        self.regexes = RegexBudget()

    def duration(self, node: yaml.Node, field: str) -> int | None:
        text = self.text(node, field)
        if text is None:
            return None
        try:
            return safe_duration_ms(text)
        except InvalidDuration as exc:
            self.fail(node, field, str(exc), hint="a number and a unit: 90s, 15m, 8h, 3d")
            return None

    @contextmanager
    def guard(self, node: yaml.Node | None, field: str) -> Iterator[None]:
        """Any exception inside becomes a problem at ``node``'s line and ``field`` (a last
        line of defence: each section reports what it knows can go wrong itself)."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - a policy never stops its reader
            detail = str(exc)
            detail = f"{detail[:160]}…" if len(detail) > 160 else detail
            self.fail(
                node,
                field,
                f"cannot be read ({type(exc).__name__}: {detail})",
                hint="simplify this entry",
            )
