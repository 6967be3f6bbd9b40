"""Regular expressions in rules (the ``matches`` operator): RE2, never backtracking.

A rule's pattern runs against conversation attributes on the timers' event loop, so it
must not take time that grows faster than the text: Python's ``re`` backtracks, and
``(a+)+$`` against 28 characters of a referrer URL takes 40 s (twice as long per
character). RE2 (Google's engine, through its official binding ``google-re2``) matches in
time linear in the text, whatever the pattern. Its dialect is Python's without the
constructs that need backtracking (README, SLA policies, ``matches``): no backreferences
(``\\1``), no lookahead or lookbehind (``(?=``, ``(?!``, ``(?<=``, ``(?<!``), no
conditionals or atomic groups; ``\\Z`` is written ``\\z``; ``\\d``, ``\\w``, ``\\s`` and
``\\b`` are ASCII (``\\p{L}``, ``\\p{N}`` for letters and digits of any script).

Linear is not free: the time per character grows with the size of the compiled program,
so a pattern is at most :data:`MAX_PATTERN_CHARS` characters and
:data:`MAX_PROGRAM_SIZE` RE2 instructions, and all of a policy's patterns together at
most :data:`MAX_TOTAL_PROGRAM_SIZE` (:class:`RegexBudget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

#: The longest pattern, in characters.
MAX_PATTERN_CHARS = 500
#: The largest compiled pattern, in RE2 instructions (``^https://example\.com/pricing`` is
#: 4, ``^(urgent|high)$`` 14, ``\p{L}+`` 1,201: the Unicode letter tables). The slowest
#: pattern of this size searches a 2,048-character text in about 50 ms.
MAX_PROGRAM_SIZE = 1_500
#: The largest total of a policy's patterns, in RE2 instructions.
MAX_TOTAL_PROGRAM_SIZE = 6_000
#: RE2's memory for one pattern (program and matching cache); it refuses larger ones.
MAX_MEMORY_BYTES = 1 << 20

DIALECT_HINT = r"RE2 syntax: as Python's re without backreferences or lookarounds; \z, not \Z"


class RegexError(ValueError):
    """A pattern that is not accepted; ``hint`` says what would be."""

    def __init__(self, message: str, hint: str = DIALECT_HINT, cost: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        #: What trying it counts against a :class:`RegexBudget`, in RE2 instructions.
        self.cost = cost


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.max_mem = MAX_MEMORY_BYTES
    return options


_OPTIONS = _options()


@dataclass(frozen=True, slots=True)
class Regex:
    """A compiled pattern: the core's :class:`~slawatch.core.rules.Matcher`."""

    pattern: str
    program_size: int
    compiled: Any = field(compare=False, repr=False)

    def search(self, text: str) -> object | None:
        """The first match anywhere in ``text``, or None."""
        try:
            return self.compiled.search(text)
        except UnicodeEncodeError:  # a lone surrogate: match the rest of the text as is
            return self.compiled.search(text.encode("utf-8", "surrogatepass"))


def compile_regex(pattern: str) -> Regex:
    """``pattern`` compiled by RE2; :class:`RegexError` says why not."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(
            f"the pattern is {len(pattern):,} characters, more than {MAX_PATTERN_CHARS}",
            hint="match a shorter, distinctive part of the text",
        )
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        if "too large" in str(reason):
            raise RegexError(
                f"the pattern is too large to compile (more than {MAX_PROGRAM_SIZE:,} "
                "RE2 instructions)",
                hint="fewer repetitions ({n}) of Unicode classes and dots",
                cost=MAX_PROGRAM_SIZE,
            ) from None
        raise RegexError(f"bad regular expression: {reason}") from None
    size = int(compiled.programsize)
    if size > MAX_PROGRAM_SIZE:
        raise RegexError(
            f"the pattern compiles to {size:,} RE2 instructions, more than {MAX_PROGRAM_SIZE:,}",
            hint="fewer repetitions ({n}) of Unicode classes and dots",
            cost=size,
        )
    return Regex(pattern, size, compiled)


class RegexBudget:
    """Compiles a policy's patterns, at most :data:`MAX_TOTAL_PROGRAM_SIZE` instructions in
    all; once spent, every further pattern is refused without compiling it (so a policy
    of a thousand large patterns costs a handful of compilations). A pattern written
    twice (or reached twice through an alias) is compiled and counted once."""

    def __init__(self, total: int = MAX_TOTAL_PROGRAM_SIZE) -> None:
        self.total = total
        self.used = 0
        # The refusals as (message, hint), not as exceptions: a raised exception holds
        # its traceback, whose frames hold the document's nodes (and this budget).
        self._seen: dict[str, Regex | tuple[str, str]] = {}

    def compile(self, pattern: str) -> Regex:
        seen = self._seen.get(pattern)
        if seen is None:
            try:
                seen = self._compile(pattern)
            except RegexError as exc:
                seen = (str(exc), exc.hint)
            self._seen[pattern] = seen
        if isinstance(seen, tuple):
            raise RegexError(*seen)
        return seen

    def _compile(self, pattern: str) -> Regex:
        if self.used > self.total:
            raise RegexError(
                f"not compiled: the policy's patterns already pass {self.total:,} "
                "RE2 instructions in all",
                hint="fewer or simpler matches rules; equals, in, starts_with, contains",
            )
        try:
            regex = compile_regex(pattern)
        except RegexError as exc:
            self.used += exc.cost  # a large refused pattern took time to refuse
            raise
        self.used += regex.program_size
        if self.used > self.total:
            raise RegexError(
                f"the policy's patterns compile to {self.used:,} RE2 instructions in all, "
                f"more than {self.total:,}",
                hint="fewer or simpler matches rules; equals, in, starts_with, contains",
            )
        return regex
