"""What is wrong with a policy file, and the reader that collects it.

Every problem has its line, the dotted path of the field and, where there is one, a hint;
:class:`PolicyFileError` holds all of them so ``slawatch check-config`` lists them at once.
"""

from __future__ import annotations

import yaml

from slawatch.core.durations import InvalidDuration, parse_duration_ms
from slawatch.errors import SlawatchError
from slawatch.yamlfile import Problem, YamlReader

__all__ = ["PolicyFileError", "PolicyReader", "Problem"]


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


class PolicyReader(YamlReader):
    """The YAML walker, plus the durations a policy is written in."""

    def duration(self, node: yaml.Node, field: str) -> int | None:
        text = self.text(node, field)
        if text is None:
            return None
        try:
            return parse_duration_ms(text)
        except InvalidDuration as exc:
            self.fail(node, field, str(exc), hint="a number and a unit: 90s, 15m, 8h, 3d")
            return None
