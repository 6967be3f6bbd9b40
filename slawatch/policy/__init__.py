"""The SLA policy file format: YAML in, core policy objects out, every error with its line.

One module per section of the document (:mod:`~slawatch.policy.calendars`,
:mod:`~slawatch.policy.levels`, :mod:`~slawatch.policy.rules`,
:mod:`~slawatch.policy.queues`), the top level that composes them
(:mod:`~slawatch.policy.loading`), what a problem is (:mod:`~slawatch.policy.problems`)
and the JSON Schema built from the same key tables (:mod:`~slawatch.policy.schema`).
"""

from slawatch.policy.loading import (
    load_policy,
    parse_policy,
    policy_version_of,
    read_policy_text,
    summary,
)
from slawatch.policy.problems import PolicyFileError, Problem

__all__ = [
    "PolicyFileError",
    "Problem",
    "load_policy",
    "parse_policy",
    "policy_version_of",
    "read_policy_text",
    "summary",
]
