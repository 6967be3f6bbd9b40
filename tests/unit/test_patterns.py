"""Every pattern in the published contract schemas means the same in Python, where
slawatch checks it, and in ECMA-262, the dialect JSON Schema reads it in (through
``regress``, a Rust ECMA-262 engine): a producer that checks its messages against the
schema and slawatch must agree on every string, a trailing newline included.

The policy file's schema (policy.v1.json) is built and checked by slawatch/policy/, not by
these contracts, so its patterns are not part of this test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import regress
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from slawatch.core.clock import ManualClock
from slawatch.core.events import CUSTOM_FIELD_KEY_PATTERN, TENANT_PATTERN
from slawatch.core.patterns import compile_pattern
from slawatch.core.timestamps import RFC3339_PATTERN
from slawatch.schemas.export import contract_schemas
from slawatch.schemas.validation import EventValidator, Rejection
from tests.samples import NOW_MS, event


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


PUBLISHED = sorted({p for document in contract_schemas().values() for p in _patterns(document)})

#: Characters where the dialects have differed: line terminators ($ and . in Python),
#: Unicode digits and spaces (\d and \s in Python), case, the anchors' own characters.
EDGES = [
    "\n", "\r", "\r\n", "\u2028", "\u2029", "\x00", "\t", " ", "\u00a0", "\ufeff",
    "\u0663", "\uff10", "\u0130", "é", "Z", "z", "$", "^", ".", "-", "_", "a", "0",
]  # fmt: skip


def ecma(pattern: str, text: str, flags: str | None) -> bool:
    return regress.Regex(pattern, flags).find(text) is not None


def python(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None


def seeds(pattern: str) -> list[str]:
    """Strings the pattern accepts: the simplest, and a longer one."""
    strategy = st.from_regex(compile_pattern(pattern), fullmatch=True)
    found = [find(strategy, lambda s: True), find(strategy, lambda s: len(s) >= 12)]
    return list(dict.fromkeys(found))


def variants(seed: str) -> Iterator[str]:
    yield from (seed, "", seed * 2, seed.upper(), seed.lower(), seed[1:], seed[:-1])
    middle = len(seed) // 2
    for edge in EDGES:
        yield seed + edge
        yield edge + seed
        yield seed[:middle] + edge + seed[middle:]
        if seed:
            yield seed[:-1] + edge
            yield edge + seed[1:]
            yield seed[:middle] + edge + seed[middle + 1 :]


def test_the_contracts_publish_patterns() -> None:
    assert len(PUBLISHED) >= 2  # the tenant/key pattern and RFC 3339, at least


@pytest.mark.parametrize("pattern", PUBLISHED)
def test_each_published_pattern_is_valid_ecma_262(pattern: str) -> None:
    regress.Regex(pattern)
    regress.Regex(pattern, "u")  # the stricter unicode mode, as Ajv and others use


@pytest.mark.parametrize("pattern", PUBLISHED)
def test_both_dialects_agree_on_the_edge_cases(pattern: str) -> None:
    checked = 0
    for seed in seeds(pattern):
        assert python(pattern, seed) and ecma(pattern, seed, "u"), seed
        for text in variants(seed):
            verdict = python(pattern, text)
            assert verdict == ecma(pattern, text, "u") == ecma(pattern, text, None), (
                pattern,
                text,
                verdict,
            )
            checked += 1
    assert checked > 100


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_both_dialects_agree_on_mutated_matches(data: st.DataObject) -> None:
    pattern = data.draw(st.sampled_from(PUBLISHED))
    text = data.draw(st.from_regex(compile_pattern(pattern), fullmatch=True))
    at = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.text(max_size=2) | st.sampled_from(EDGES))
    cut = data.draw(st.integers(0, 1))
    mutated = text[:at] + insert + text[at + cut :]
    assert python(pattern, mutated) == ecma(pattern, mutated, "u"), (pattern, mutated)


_VALIDATOR = EventValidator(
    max_event_bytes=1 << 20, max_future_skew_ms=1 << 50, clock=ManualClock(NOW_MS)
)


def _accepts(**fields: Any) -> bool:
    """Whether slawatch's validator takes a ticket.created with ``fields``."""
    raw = orjson.dumps(event("ticket.created", **fields))
    return not isinstance(_VALIDATOR.validate(raw, None), Rejection)


def test_every_field_with_a_pattern_checks_what_the_schema_says() -> None:
    """What the product does, not only the translation: each field that publishes a
    pattern accepts a string (of an allowed length) exactly when ECMA-262 does."""
    assert {TENANT_PATTERN, CUSTOM_FIELD_KEY_PATTERN, RFC3339_PATTERN} <= set(PUBLISHED)
    for seed in seeds(TENANT_PATTERN):
        for text in variants(seed):
            if 1 <= len(text) <= 64:
                assert _accepts(tenant=text) == ecma(TENANT_PATTERN, text, "u"), text
    for seed in seeds(CUSTOM_FIELD_KEY_PATTERN):
        for text in variants(seed):
            verdict = _accepts(custom_fields={text: 1})
            assert verdict == ecma(CUSTOM_FIELD_KEY_PATTERN, text, "u"), text
    for seed in ("2026-11-22T10:00:00Z", "2026-11-22 10:00:00.123456+07:00"):
        assert _accepts(occurred_at=seed) and ecma(RFC3339_PATTERN, seed, "u")
        for text in variants(seed):
            # The schema cannot tell a real date (1970 on, no February 30) from a
            # well-formed one; slawatch never accepts what it refuses.
            if _accepts(occurred_at=text):
                assert ecma(RFC3339_PATTERN, text, "u"), text


def test_a_trailing_newline_is_refused_in_both_dialects() -> None:
    tenant = r"^[A-Za-z0-9_.\-]{1,64}$"
    assert tenant in PUBLISHED
    assert not python(tenant, "acme\n") and not ecma(tenant, "acme\n", "u")
    # What Python's own $ would have said (and the `jsonschema` library, which uses re):
    assert compile_pattern(tenant).search("acme") and __import__("re").search(tenant, "acme\n")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("^a.c$", "abc", True),
        ("^a.c$", "a\rc", False),  # ECMA's . excludes \r, \u2028, \u2029 too
        ("^a.c$", "a\u2028c", False),
        ("^a[.]c$", "a.c", True),
        ("^a[$]$", "a$", True),  # $ in a class stays a dollar
        (r"^a\$$", "a$", True),
        ("^a$|^b$", "b\n", False),
        ("^a(?:b|c)$", "ac", True),
        ("^a(?!b)", "ab", False),
    ],
)
def test_the_translation(pattern: str, text: str, expected: bool) -> None:
    assert python(pattern, text) is expected
    assert ecma(pattern, text, "u") is expected


@pytest.mark.parametrize(
    "pattern", [r"^\d$", r"^\s$", r"^\w$", r"\bword", r"^a\Z", r"\Aa", "(?P<x>a)", "(?i)a", "[]a]"]
)
def test_patterns_that_would_mean_two_things_do_not_build(pattern: str) -> None:
    with pytest.raises(ValueError):
        compile_pattern(pattern)
