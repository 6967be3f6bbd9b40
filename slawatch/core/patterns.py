"""Patterns written once, in the dialect the published schemas use (ECMA-262, as JSON
Schema says), and checked in Python with the same meaning.

Python's ``$`` also matches before a trailing newline and its ``.`` matches a carriage
return, ECMA-262's do not: :func:`compile_pattern` gives the Python regular expression
that means the same under ``search`` (what msgspec's ``Meta(pattern=...)`` runs), and
:func:`pattern_meta` a constraint that checks the Python form and publishes the ECMA-262
one (tests/unit/test_patterns.py runs every published pattern through both engines).
"""

from __future__ import annotations

import re

import msgspec


def _escape_end(pattern: str, i: int) -> int:
    """Index just past the escape that starts at ``pattern[i]`` (a backslash)."""
    if i + 1 >= len(pattern):
        raise ValueError(f"pattern {pattern!r} ends with a lone backslash")
    char = pattern[i + 1]
    if char.isalnum() and char not in "nrtfv":
        raise ValueError(
            f"pattern {pattern!r}: \\{char} means different things in Python and "
            "ECMA-262 (or exists in only one); spell the characters out, e.g. [0-9]"
        )
    return i + 2


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a published (ECMA-262) pattern into a Python regex with the same meaning
    under ``search``: ``$`` becomes ``\\Z`` and ``.`` excludes every ECMA-262 line
    terminator. Escapes whose meaning differs (``\\d``, ``\\s``, ``\\w``, ``\\b``,
    ``\\Z``, …) and Python-only groups are refused. That covers the contracts' own
    patterns, which tests/unit/test_patterns.py runs through both dialects; it is not a
    general translator (``a{,2}`` and possessive quantifiers still differ)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            end = _escape_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
            if pattern.startswith("^", i + 1):  # a negated class: keep its caret
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                raise ValueError(f"pattern {pattern!r}: [] and [^] differ between dialects")
        elif char == "$":
            out.append(r"\Z")
        elif char == ".":
            out.append(r"[^\n\r\u2028\u2029]")
        elif char == "(" and pattern.startswith("?", i + 1):
            if not pattern.startswith(("(?:", "(?=", "(?!", "(?<=", "(?<!"), i):
                raise ValueError(f"pattern {pattern!r}: a group ECMA-262 does not have")
            out.append(char)
        else:
            out.append(char)
        i += 1
    return re.compile("".join(out))


#: The Python translation of every pattern :func:`pattern_meta` made -> the pattern as
#: written (ECMA-262): what the JSON Schemas publish in place of msgspec's.
PUBLISHED: dict[str, str] = {}


def pattern_meta(
    pattern: str, *, min_length: int | None = None, max_length: int | None = None
) -> msgspec.Meta:
    """A string constraint: msgspec checks the Python translation of ``pattern`` (and the
    lengths given); the JSON Schema publishes ``pattern`` as written (:data:`PUBLISHED`)."""
    translated = compile_pattern(pattern).pattern
    PUBLISHED[translated] = pattern
    return msgspec.Meta(pattern=translated, min_length=min_length, max_length=max_length)
