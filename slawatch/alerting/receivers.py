"""The ``receivers`` section of a routing file: where notifications would go.

Each receiver has a ``type`` and that type's fields. URLs must be http(s). Secrets
(routing keys, webhook URLs and secrets, SMTP passwords) are never written in the file:
a secret field is ``{env: VAR}`` or ``{file: PATH}``, resolved when the file is read, and
held as a :class:`Secret` that shows itself masked in a repr, a string, a format, a log
line or a problem. A problem names the variable or the file, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from slawatch.policy.problems import PolicyReader

MASK = "**********"
#: The longest secret file read.
MAX_SECRET_BYTES = 64 * 1024


class Secret:
    """A secret value and where it came from (``env:VAR`` or ``file:PATH``).

    Unlike ``slawatch.config.settings.Secret`` (a ``str``, whose ``str()`` and f-string
    give the value), this is not a string, nor a dataclass (``dataclasses.asdict`` of a
    receiver would copy the value out): only :meth:`reveal` gives the value.
    """

    __slots__ = ("_value", "source")

    def __init__(self, source: str, value: str) -> None:
        self.source = source
        self._value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.source, self._value) == (
            other.source,
            other._value,
        )

    def __hash__(self) -> int:
        return hash((self.source, self._value))

    def reveal(self) -> str:
        """The value itself: for a channel building its request, nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source}, {MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK


#: A field's kind: how it is written and checked.
URL, SECRET, SECRET_URL, TEXT, EMAIL, EMAILS, HOST_PORT, CHOICE, BOOL = (
    "url", "secret", "secret_url", "text", "email", "emails", "host_port", "choice", "bool",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: str
    required: bool
    example: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How the notifier delivers to one receiver (the fields every receiver type has)."""

    timeout_s: float = 10.0
    """Longest wait for one attempt (connect, send and the receiver's answer)."""
    rate_per_minute: int = 600
    """Messages a minute: a token bucket holding 5 seconds' worth, refilled
    continuously; past it, notifications wait, or are combined into digests."""
    max_attempts: int = 8
    """Attempts before a notification is dead-lettered (exponential backoff with jitter
    between them, from 1 s up to 5 minutes)."""


#: Default rate limits by receiver type (each receiver may set ``rate_per_minute``):
#: Slack's incoming webhooks take about one message a second, PagerDuty's Events API
#: about 120 events a minute per routing key; a mailbox is read by a person.
DEFAULT_RATE_PER_MINUTE = {
    "alertmanager": 6000,
    "pagerduty": 120,
    "slack": 60,
    "webhook": 600,
    "email": 30,
}
#: Fields every receiver type has (``DeliveryOptions``, and ``hours``).
COMMON_FIELDS = ("timeout", "rate_per_minute", "max_attempts", "hours")
#: What happens to a notification for a receiver outside its hours: it waits for them
#: (``wait``), or goes to the receiver named instead.
WAIT = "wait"


@dataclass(frozen=True, slots=True)
class Hours:
    """A receiver limited to a calendar's working time (``hours: {calendar, outside}``)."""

    calendar: str
    outside: str = WAIT
    """``wait`` or the name of the receiver that gets what comes outside the hours."""


MAX_TIMEOUT_MS = 300_000


#: The receiver types and their fields.
RECEIVER_TYPES: dict[str, dict[str, FieldSpec]] = {
    "alertmanager": {
        "url": FieldSpec(URL, True, "url: http://alertmanager:9093"),
        "identity_labels": FieldSpec(BOOL, False, "identity_labels: true"),
    },
    "pagerduty": {
        "routing_key": FieldSpec(SECRET, True, "routing_key: {env: PAGERDUTY_ROUTING_KEY}"),
        "url": FieldSpec(URL, False, "url: https://events.pagerduty.com/v2/enqueue"),
    },
    "slack": {
        "webhook_url": FieldSpec(SECRET_URL, True, "webhook_url: {env: SLACK_WEBHOOK_URL}"),
        "channel": FieldSpec(TEXT, False, "channel: '#support-sla'"),
    },
    "webhook": {
        "url": FieldSpec(URL, True, "url: https://hooks.example.com/sla"),
        "secret": FieldSpec(SECRET, False, "secret: {file: /run/secrets/webhook}"),
    },
    "email": {
        "to": FieldSpec(EMAILS, True, "to: [oncall@example.com]"),
        "from": FieldSpec(EMAIL, True, "from: slawatch@example.com"),
        "smtp": FieldSpec(HOST_PORT, True, "smtp: smtp.example.com:587"),
        "username": FieldSpec(TEXT, False, "username: slawatch"),
        "password": FieldSpec(SECRET, False, "password: {env: SMTP_PASSWORD}"),
        "tls": FieldSpec(CHOICE, False, "tls: starttls", ("auto", "starttls", "implicit", "none")),
    },
}

FieldValue = str | tuple[str, ...] | Secret

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:([0-9]{1,5})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Receiver:
    """One receiver: its name, type and fields (secrets as :class:`Secret`)."""

    name: str
    type: str
    fields: Mapping[str, FieldValue] = field(hash=False)
    delivery: DeliveryOptions = DeliveryOptions()
    hours: Hours | None = None


def is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in text
    except ValueError:
        return False


def read_receivers(
    r: PolicyReader,
    node: yaml.Node,
    env: Mapping[str, str],
    base_dir: Path,
    calendars: Collection[str] = (),
) -> dict[str, Receiver | None]:
    """The ``receivers`` section by name; None for a receiver with problems.
    ``calendars``: the names an ``hours`` field may use."""
    out: dict[str, Receiver | None] = {}
    hours_nodes: dict[str, yaml.Node] = {}
    for name, (name_node, value_node) in r.mapping(node, "receivers").items():
        out[name] = None
        here = f"receivers.{name}"
        if not _NAME.match(name):
            r.fail(name_node, here, "a name is 1 to 64 letters, digits, '_', '-' or '.'")
            continue
        with r.guard(value_node, here):
            out[name] = _receiver(r, name, value_node, env, base_dir, calendars, hours_nodes)
    for name, hours_node in hours_nodes.items():  # fallbacks name receivers: now all known
        receiver = out.get(name)
        if receiver is None or receiver.hours is None or receiver.hours.outside == WAIT:
            continue
        fallback = receiver.hours.outside
        if fallback == name or fallback not in out:
            known = ", ".join(sorted(set(out) - {name})) or "(none other)"
            r.fail(hours_node, f"receivers.{name}.hours.outside",
                   f"{fallback!r} is not another receiver",
                   hint=f"wait, or one of: {known}")  # fmt: skip
            out[name] = None
    for name, hours_node in hours_nodes.items():  # a chain of fallbacks must end
        chain = [name]
        receiver = out.get(name)
        while receiver is not None and receiver.hours is not None:
            if receiver.hours.outside == WAIT:
                break
            nxt = receiver.hours.outside
            if nxt in chain:
                r.fail(hours_node, f"receivers.{name}.hours.outside",
                       f"fallbacks go round in a circle: {' -> '.join([*chain, nxt])}",
                       hint="end it with a receiver without hours, or outside: wait")  # fmt: skip
                out[name] = None
                break
            chain.append(nxt)
            receiver = out.get(nxt)
    return out


def _hours(r: PolicyReader, node: yaml.Node, here: str, calendars: Collection[str]) -> Hours | None:
    hint = "hours: {calendar: office, outside: wait}"
    keys = r.mapping(node, here, ("calendar", "outside"))
    if "calendar" not in keys:
        r.fail(node, f"{here}.calendar", "missing", hint=hint)
        return None
    calendar = r.text(keys["calendar"][1], f"{here}.calendar")
    if calendar is not None and calendar not in calendars:
        known = ", ".join(sorted(calendars)) or "none: add a calendars section"
        r.fail(keys["calendar"][1], f"{here}.calendar", f"no calendar {calendar!r}",
               hint=f"calendars: {known}")  # fmt: skip
        return None
    outside = WAIT
    if "outside" in keys:
        outside = r.text(keys["outside"][1], f"{here}.outside") or WAIT
    return None if calendar is None else Hours(calendar, outside)


def _receiver(
    r: PolicyReader,
    name: str,
    node: yaml.Node,
    env: Mapping[str, str],
    base_dir: Path,
    calendars: Collection[str],
    hours_nodes: dict[str, yaml.Node],
) -> Receiver | None:
    here = f"receivers.{name}"
    before = r.found
    keys = r.mapping(node, here)
    if "type" not in keys:
        r.fail(node, f"{here}.type", "missing", hint=f"types: {', '.join(RECEIVER_TYPES)}")
        return None
    type_ = r.text(keys["type"][1], f"{here}.type")
    if type_ is None:
        return None
    specs = RECEIVER_TYPES.get(type_)
    if specs is None:
        r.fail(keys["type"][1], f"{here}.type", f"unknown type {type_!r}",
               hint=f"types: {', '.join(RECEIVER_TYPES)}")  # fmt: skip
        return None
    fields: dict[str, FieldValue] = {}
    delivery = DeliveryOptions(rate_per_minute=DEFAULT_RATE_PER_MINUTE[type_])
    hours = None
    for key, (key_node, value_node) in keys.items():
        if key == "type":
            continue
        if key == "hours":
            hours = _hours(r, value_node, f"{here}.hours", calendars)
            hours_nodes[name] = value_node
            continue
        if key in COMMON_FIELDS:
            delivery = _delivery_option(r, delivery, key, value_node, f"{here}.{key}")
            continue
        spec = specs.get(key)
        if spec is None:
            r.fail(key_node, f"{here}.{key}", f"not a field of a {type_} receiver",
                   hint=f"{type_} fields: {', '.join((*specs, *COMMON_FIELDS))}")  # fmt: skip
            continue
        value = _field(r, spec, value_node, f"{here}.{key}", env, base_dir)
        if value is not None:
            fields[key] = value
    for key, spec in specs.items():
        if spec.required and key not in keys:
            r.fail(node, f"{here}.{key}", f"a {type_} receiver needs {key}", hint=spec.example)
    if r.found > before:
        return None
    return Receiver(name, type_, fields, delivery, hours)


def _delivery_option(
    r: PolicyReader, delivery: DeliveryOptions, key: str, node: yaml.Node, here: str
) -> DeliveryOptions:
    if key == "timeout":
        ms = r.duration(node, here)
        if ms is not None and not 0 < ms <= MAX_TIMEOUT_MS:
            r.fail(node, here, "from 1s to 5m", hint="timeout: 10s")
        elif ms is not None:
            return replace(delivery, timeout_s=ms / 1000)
        return delivery
    value = r.value(node, here)
    low, high = (1, 1_000_000) if key == "rate_per_minute" else (1, 100)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        r.fail(node, here, f"a whole number from {low} to {high:,}", hint=f"{key}: {high // 10}")
        return delivery
    return replace(delivery, **{key: value})


def _field(
    r: PolicyReader,
    spec: FieldSpec,
    node: yaml.Node,
    here: str,
    env: Mapping[str, str],
    base_dir: Path,
) -> FieldValue | None:
    if spec.kind in (SECRET, SECRET_URL):
        secret = _secret(r, node, here, env, base_dir, spec.example)
        if secret is not None and spec.kind == SECRET_URL and not is_http_url(secret.reveal()):
            r.fail(node, here, f"the value of {secret.source} is not an http(s) URL",
                   hint="https://hooks.slack.com/services/...")  # fmt: skip
            return None
        return secret
    if spec.kind == EMAILS:
        values = []
        for item in r.sequence(node, here):
            text = _checked(r, EMAIL, item, here)
            if text is not None:
                values.append(text)
        if isinstance(node, yaml.SequenceNode) and not node.value:
            r.fail(node, here, "an empty list", hint=spec.example)
        return tuple(values)
    if spec.kind == BOOL:
        value = r.value(node, here)
        if not isinstance(value, bool):
            r.fail(node, here, "expected true or false", hint=spec.example)
            return None
        return "true" if value else "false"
    text = _checked(r, spec.kind, node, here)
    if text is not None and spec.kind == CHOICE and text not in spec.choices:
        r.fail(node, here, f"{text!r} is not one of {', '.join(spec.choices)}", hint=spec.example)
        return None
    return text


def _checked(r: PolicyReader, kind: str, node: yaml.Node, here: str) -> str | None:
    text = r.text(node, here)
    if text is None:
        return None
    if kind == URL and not is_http_url(text):
        r.fail(node, here, f"{text!r} is not an http(s) URL", hint="http://host:port/path")
        return None
    if kind == EMAIL and not _EMAIL.match(text):
        r.fail(node, here, f"{text!r} is not an e-mail address", hint="oncall@example.com")
        return None
    if kind == HOST_PORT:
        match = _HOST_PORT.match(text)
        if match is None or not 0 < int(match.group(1)) < 65536:
            r.fail(node, here, f"{text!r} is not host:port", hint="smtp.example.com:587")
            return None
    return text


def _secret(
    r: PolicyReader,
    node: yaml.Node,
    here: str,
    env: Mapping[str, str],
    base_dir: Path,
    example: str,
) -> Secret | None:
    if not isinstance(node, yaml.MappingNode):
        # The value is never quoted back: it may be the secret itself.
        r.fail(node, here, "a secret is not written in the file",
               hint="{env: VARIABLE} or {file: /path/to/file}")  # fmt: skip
        return None
    keys = r.mapping(node, here, ("env", "file"))
    if len(keys) != 1:
        if keys or not node.value:
            r.fail(node, here, "give one of env or file", hint=example)
        return None
    (how, (_, value_node)), = keys.items()  # fmt: skip
    ref = r.text(value_node, f"{here}.{how}")
    if ref is None:
        return None
    if how == "env":
        if not _ENV_VAR.match(ref):
            r.fail(value_node, f"{here}.env", f"{ref!r} is not an environment variable name")
            return None
        value = env.get(ref)
        if value is None:
            r.fail(value_node, f"{here}.env", f"the environment variable {ref} is not set",
                   hint=f"export {ref}=... before starting slawatch")  # fmt: skip
            return None
        source = f"env:{ref}"
    else:
        path = base_dir / ref
        try:
            if path.exists() and not path.is_file():  # a device or a pipe could block
                raise OSError(0, "not a regular file")
            with path.open("rb") as stream:
                data = stream.read(MAX_SECRET_BYTES + 1)
            if len(data) > MAX_SECRET_BYTES:
                raise OSError(0, f"longer than {MAX_SECRET_BYTES:,} bytes")
            value = data.decode("utf-8").rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            r.fail(value_node, f"{here}.file", f"cannot read {str(path)!r}: {reason}",
                   hint="a path relative to the routing file, or absolute")  # fmt: skip
            return None
        source = f"file:{ref}"
    if not value.strip():
        r.fail(value_node, f"{here}.{how}", f"{source} is empty")
        return None
    return Secret(source, value)
