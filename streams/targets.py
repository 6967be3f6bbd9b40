"""The SLA policy a worker runs: built-in targets, or a targets file, and settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from slacore.durations import InvalidDuration, parse_duration_ms
from slacore.policy import DEFAULT_TARGETS_S, PRIORITIES, SlaPolicy, scaled_targets
from slacore.sla import Metric
from streams.errors import ConfigError
from streams.settings import Settings


def load_targets_s(path: Path) -> dict[Metric, dict[str, float]]:
    """Read a targets file: ``metric: {priority: duration}``. Errors name file, line, field."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source="file", field="(file)",
                          path=path) from None  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source="file",
                          field="(syntax)", path=path,
                          line=mark.line + 1 if mark else 0) from None  # fmt: skip
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError("expected a mapping of metric: {priority: duration}", source="file",
                          field="(top level)", path=path)  # fmt: skip
    targets: dict[Metric, dict[str, float]] = {}
    for metric_node, by_priority in node.value:
        line = metric_node.start_mark.line + 1
        try:
            metric = Metric(metric_node.value)
        except ValueError:
            raise ConfigError(f"unknown metric; known: {', '.join(m.value for m in Metric)}",
                              source="file", field=metric_node.value, path=path,
                              line=line) from None  # fmt: skip
        if not isinstance(by_priority, yaml.MappingNode):
            raise ConfigError("expected {priority: duration}", source="file",
                              field=metric.value, path=path, line=line)  # fmt: skip
        targets[metric] = {}
        for priority_node, value_node in by_priority.value:
            field = f"{metric.value}.{priority_node.value}"
            where = {"source": "file", "field": field, "path": path,
                     "line": priority_node.start_mark.line + 1}  # fmt: skip
            if priority_node.value not in PRIORITIES:
                raise ConfigError(f"unknown priority; known: {', '.join(PRIORITIES)}", **where)
            try:
                targets[metric][priority_node.value] = parse_duration_ms(value_node.value) / 1000
            except InvalidDuration as exc:
                raise ConfigError(str(exc), **where) from None
    return targets


def build_policy(settings: Settings) -> SlaPolicy:
    """The policy for ``settings``: targets (file or built-in), scaled, and thresholds."""
    targets_s = (
        load_targets_s(Path(settings.sla_targets_file))
        if settings.sla_targets_file
        else DEFAULT_TARGETS_S
    )
    return SlaPolicy(
        version="targets-file-1" if settings.sla_targets_file else "builtin-1",
        targets_ms=scaled_targets(targets_s, settings.sla_time_scale),
        at_risk_ratio=settings.at_risk_ratio,
        short_abandon_ms=round(settings.short_abandon_s * 1000 / settings.sla_time_scale),
    )
