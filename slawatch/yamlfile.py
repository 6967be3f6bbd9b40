"""YAML files read node by node, so that every problem keeps its (1-based) line.

The settings file and the policy file are both read here: :func:`compose` turns the text
into PyYAML's nodes (``yaml.SafeLoader``: no tags that build Python objects), and
:class:`YamlReader` walks them, collecting one :class:`Problem` per thing wrong instead of
stopping at the first. Values are built from a node only once its shape was checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file: where, which field (a dotted path), what, and a hint."""

    line: int
    field: str
    message: str
    hint: str = ""

    def render(self, source: str) -> str:
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{source}:{self.line}: {self.field}: {self.message}{hint}"


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` is 1-based, 0 when PyYAML does not say where."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def compose(text: str) -> yaml.Node | None:
    """The document's root node; None for an empty document."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlSyntaxError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else 0
        ) from None


def line_of(node: yaml.Node | None) -> int:
    """The 1-based line a node starts on (1 without a node)."""
    return node.start_mark.line + 1 if node is not None else 1


def entries(node: yaml.MappingNode) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """Every (key, key node, value node) of a mapping, in file order, repeats included."""
    for key_node, value_node in node.value:
        yield str(key_node.value), key_node, value_node


def construct(node: yaml.Node) -> Any:
    """A node's value as YAML types it (numbers, true/false, dates, text, lists)."""
    return yaml.SafeLoader("").construct_document(node)


class YamlReader:
    """Walks the YAML nodes, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, node: yaml.Node | None, field: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(line_of(node), field, message, hint))

    def mapping(
        self, node: yaml.Node, field: str, known: tuple[str, ...] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The mapping's entries by key; a repeated key, or one not ``known``, is a problem."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, field, "expected a mapping (key: value lines)")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, key_node, value_node in entries(node):
            path = f"{field}.{key}" if field else key
            if key in out:
                self.fail(key_node, path, "appears twice")
            elif known is not None and key not in known:
                self.fail(key_node, path, "unknown key", hint=f"known keys: {', '.join(known)}")
            else:
                out[key] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, field, "expected a list")
            return []
        return list(node.value)

    def text(self, node: yaml.Node, field: str) -> str | None:
        """A single non-null value, as the text it was written as."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == NULL_TAG:
            self.fail(node, field, "expected a single value")
            return None
        return str(node.value)

    def value(self, node: yaml.Node) -> Any:
        """A scalar or list as YAML types it (numbers, true/false, text)."""
        return construct(node)
