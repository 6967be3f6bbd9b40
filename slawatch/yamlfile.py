"""YAML files read node by node, so that every problem keeps its (1-based) line.

The settings file and the policy file are both read here: :func:`compose` turns the text
into PyYAML's nodes (safe: no tags that build Python objects), and :class:`YamlReader`
walks them, collecting one :class:`Problem` per thing wrong instead of stopping at the
first. Values are built from a node only once its shape was checked.

A file is text from whoever can write to the policy topic, so reading it is bounded
before any node is built (README, SLA policies, "Limits"): at most
:data:`MAX_DOCUMENT_BYTES` of text, :data:`MAX_DEPTH` levels of nesting and
:data:`MAX_NODES` values once every alias is counted as the whole value it stands for
(so a few lines of nested aliases, a "billion laughs", are refused after counting to the
bound, not expanded). The limits are checked on the parser's events, which libyaml
produces without recursion, so no text makes the reader recurse deeper than
:data:`MAX_DEPTH` or build more than :data:`MAX_NODES` nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slawatch.errors import SlawatchError

NULL_TAG = "tag:yaml.org,2002:null"

#: The longest file read, in bytes of UTF-8 (256 KiB; the example policy is 4 KiB).
MAX_DOCUMENT_BYTES = 256 * 1024
#: The deepest nesting of lists and mappings (a policy needs about 10 levels).
MAX_DEPTH = 64
#: The most values (scalars, lists, mappings, keys included) a document may hold, with
#: every alias counted as the whole value it refers to.
MAX_NODES = 50_000
#: The longest single value (a key, a name, a pattern, a description), in characters.
MAX_SCALAR_CHARS = 4096
#: A value counts as one more value per this many characters: an alias to a long value
#: costs what repeating its text would (problems quote what they refer to).
_CHARS_PER_VALUE = 256
#: The most problems a reader keeps (the rest are counted), and the longest field path and
#: message of one: a hostile file cannot make its own rejection huge.
MAX_PROBLEMS = 100
MAX_PROBLEM_CHARS = 300

#: libyaml's parser and composer when PyYAML was built with it (PyPI's wheels are):
#: several times faster than the pure-Python ones, with the same nodes and marks.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file: where, which field (a dotted path), what, and a hint."""

    line: int
    field: str
    message: str
    hint: str = ""

    def render(self, source: str) -> str:
        """``source:line: field: message (hint: ...)``, always one line."""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return _one_line(f"{source}:{self.line}: {self.field}: {self.message}{hint}")


def _bounded(text: str) -> str:
    """``text``, cut to :data:`MAX_PROBLEM_CHARS` characters."""
    return text if len(text) <= MAX_PROBLEM_CHARS else f"{text[: MAX_PROBLEM_CHARS - 1]}…"


def _one_line(text: str) -> str:
    """Line breaks (a key or value can hold them) shown as ``\\n``."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def read_text(path: Path) -> str:
    """The text of the file at ``path``: a one-line :class:`SlawatchError` when it cannot
    be read, a :class:`YamlLimitError` when it is larger than the reader reads, a
    :class:`NotText` with the line when it is not UTF-8."""
    try:
        if not path.is_file():  # a folder, a pipe or a device: nothing to read to the end
            raise SlawatchError(f"{path}: cannot read: not a regular file")
        with path.open("rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)  # what is past the limit is not read
    except OSError as exc:
        raise SlawatchError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise YamlLimitError(
            f"the file is larger than {MAX_DOCUMENT_BYTES:,} bytes", 1, hint="split it up"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NotText(f"not UTF-8 text: {exc.reason} (byte {exc.start})", line) from None


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` is 1-based, 0 when PyYAML does not say where."""

    def __init__(self, message: str, line: int, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


class NotText(YamlSyntaxError):
    """The file is not UTF-8 text."""


class YamlLimitError(YamlSyntaxError):
    """The text is past one of the reader's limits (size, nesting, aliases)."""


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def _check_limits(text: str) -> None:
    """Walk the parser's events; :class:`YamlLimitError` at the first limit passed.

    Counts every value once, and an alias as the size of the value its anchor names,
    so the count is the size of the document with its aliases expanded.
    """
    count = 0
    sizes: dict[str, int] = {}  # anchor -> size of its value, once that value is complete
    open_: list[tuple[str | None, int]] = []  # the lists and mappings being read
    documents = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                return  # the composer says "expected a single document" with its line
        elif isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor or "")
            if size is None:
                if any(anchor == event.anchor for anchor, _ in open_):
                    raise YamlLimitError(
                        f"alias *{event.anchor} refers to a value that contains it",
                        _line(event),
                        hint="an alias may repeat a finished value, never its own parent",
                    )
                continue  # an undefined alias: the composer says so, with its line
            count += size
        elif isinstance(event, yaml.ScalarEvent):
            if len(event.value) > MAX_SCALAR_CHARS:
                raise YamlLimitError(
                    f"a value of {len(event.value):,} characters; at most {MAX_SCALAR_CHARS:,}",
                    _line(event),
                    hint="names, patterns and descriptions are short",
                )
            size = 1 + len(event.value) // _CHARS_PER_VALUE
            count += size
            if event.anchor is not None:
                sizes[event.anchor] = size
        elif isinstance(event, yaml.CollectionStartEvent):
            open_.append((event.anchor, count))
            count += 1
            if len(open_) > MAX_DEPTH:
                raise YamlLimitError(
                    f"lists and mappings nested deeper than {MAX_DEPTH} levels",
                    _line(event),
                    hint="a policy needs about 10 levels",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = open_.pop()
            if anchor is not None:
                sizes[anchor] = count - start
        if count > MAX_NODES:
            raise YamlLimitError(
                f"more than {MAX_NODES:,} values once aliases are expanded",
                _line(event),
                hint="an alias counts as the whole value it repeats; write fewer",
            )


def compose(text: str) -> yaml.Node | None:
    """The document's root node; None for an empty document.

    :class:`YamlSyntaxError` when the text is not YAML, :class:`YamlLimitError` when it
    is past a limit (before a node is built)."""
    if (
        len(text) > MAX_DOCUMENT_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES
    ):
        raise YamlLimitError(
            f"the file is longer than {MAX_DOCUMENT_BYTES:,} bytes",
            1,
            hint="holiday ranges (2027-02-05 .. 2027-02-10) and in: [...] lists say more in less",
        )
    try:
        _check_limits(text)
        return yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlSyntaxError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else 0
        ) from None
    except UnicodeError as exc:  # a lone surrogate: text that no file or record holds
        start = getattr(exc, "start", 0)
        raise YamlSyntaxError(
            f"not valid YAML: {getattr(exc, 'reason', exc)}", text[:start].count("\n") + 1
        ) from None
    except (RecursionError, MemoryError) as exc:  # the limits above leave no way here
        raise YamlLimitError(f"too large to read ({type(exc).__name__})", 1) from None


def line_of(node: yaml.Node | None) -> int:
    """The 1-based line a node starts on (1 without a node)."""
    return node.start_mark.line + 1 if node is not None else 1


def key_text(node: yaml.Node) -> str:
    """A mapping key as written; a list or mapping used as a key shows as ``[...]``/``{...}``."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return "[...]" if isinstance(node, yaml.SequenceNode) else "{...}"


def entries(node: yaml.MappingNode) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """Every (key, key node, value node) of a mapping, in file order, repeats included."""
    for key_node, value_node in node.value:
        yield key_text(key_node), key_node, value_node


def construct(node: yaml.Node) -> Any:
    """A node's value as YAML types it (numbers, true/false, dates, text, lists).

    Raises what PyYAML's constructor raises for a value it cannot build (``2026-02-30``,
    ``!!int x``, an unknown tag, an integer of 5,000 digits): :meth:`YamlReader.value`
    turns that into a problem."""
    return yaml.SafeLoader("").construct_document(node)


#: What :meth:`YamlReader.value` returns for a value it reported as a problem.
INVALID: Any = object()


class YamlReader:
    """Walks the YAML nodes, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: Problems found beyond :data:`MAX_PROBLEMS`, counted, not kept.
        self.omitted = 0
        self._constructor: yaml.SafeLoader | None = None

    def document(self, text: str, *, empty_hint: str) -> yaml.Node | None:
        """The root node of ``text``; None, with the problem recorded, when the text is
        past a limit, not YAML, or empty."""
        try:
            node = compose(text)
        except YamlLimitError as exc:
            self.problems.append(Problem(exc.line or 1, "(document)", exc.message, exc.hint))
            return None
        except YamlSyntaxError as exc:
            self.problems.append(Problem(exc.line or 1, "(syntax)", exc.message))
            return None
        if node is None:
            self.fail(None, "(document)", "the file is empty", hint=empty_hint)
        return node

    def fail(self, node: yaml.Node | None, field: str, message: str, hint: str = "") -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.omitted += 1
            return
        self.problems.append(
            Problem(line_of(node), _bounded(field), _bounded(message), _bounded(hint))
        )

    @property
    def found(self) -> int:
        """How many problems were found, kept or not."""
        return len(self.problems) + self.omitted

    def all_problems(self) -> list[Problem]:
        """The problems kept, by line, and one more saying how many were not."""
        problems = sorted(self.problems, key=lambda p: p.line)
        if self.omitted:
            last = problems[-1].line if problems else 1
            more = f"{self.omitted:,} more problems not listed"
            problems.append(Problem(last, "(document)", more, hint="fix these first"))
        return problems

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
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, path, "a key is a single value, not a list or mapping")
            elif key in out:
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

    def value(self, node: yaml.Node, field: str) -> Any:
        """A scalar or list as YAML types it (numbers, true/false, text); :data:`INVALID`,
        and a problem, when YAML cannot build it."""
        # One constructor for the whole walk: each new one is a reference cycle (its
        # parser holds its own bound methods) that only the garbage collector frees.
        constructor = self._constructor
        if constructor is None:
            constructor = self._constructor = yaml.SafeLoader("")
        try:
            return constructor.construct_document(node)
        except Exception as exc:  # noqa: BLE001 - any value YAML cannot build is a problem
            constructor.constructed_objects = {}
            constructor.recursive_objects = {}
            constructor.state_generators = []
            constructor.deep_construct = False
            mark = getattr(exc, "problem_mark", None)
            where = mark.line + 1 if mark is not None else line_of(node)
            problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            self.problems.append(
                Problem(
                    where,
                    field,
                    f"cannot be read as a value: {problem}",
                    hint="quote it to mean the text as written",
                )
            )
            return INVALID
