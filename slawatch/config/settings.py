"""Typed settings, read in one place: defaults, then a config file, then the environment.

Every field is documented here; ``slawatch config`` prints them all with their values
(secrets masked) and the README's configuration table is generated from the same list.
An environment variable is ``SLAWATCH_`` + the field name in upper case; the config file
(``--config FILE`` or ``SLAWATCH_CONFIG``) is YAML with the field names as keys.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from slawatch import yamlfile
from slawatch.core.census import LABEL_ATTRIBUTES
from slawatch.errors import ConfigError

ENV_PREFIX = "SLAWATCH_"


class Secret(str):
    """A string that never shows itself in a repr, a log line or ``slawatch config``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')"

    def masked(self) -> str:
        """Return a URL with its credentials (``user:password@``) hidden, or any other
        secret hidden whole (empty stays empty)."""
        return mask_url(self) if "://" in self else ("**********" if self else "")


def mask_url(url: str) -> str:
    """Return ``url`` with its credentials (``user:password@``) hidden. The last ``@``
    ends them: a password with an ``@`` in it shows nothing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _doc(text: str, default: Any, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"doc": text, "secret": secret})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a slawatch process can be told. Units are in the names."""

    app_id: str = _doc("Name of the application: prefixes consumer groups and tables.", "slawatch")
    broker_url: str = _doc(
        "Kafka bootstrap servers, `kafka://host:port[;host:port]`.", "kafka://127.0.0.1:9092"
    )
    redis_url: Secret = _doc(
        "Redis URL: the worker registry behind `slawatch status`.",
        Secret("redis://127.0.0.1:6379/0"),
        secret=True,
    )
    store: str = _doc(
        "Table store: `memory://` (demo, tests) or `rocksdb://` (production; needs the "
        "`rocksdb` extra).",
        "memory://",
    )
    data_dir: Path = _doc("Directory for table data (RocksDB) and worker files.", Path(".run/data"))
    table_standby_replicas: int = _doc(
        "Other workers that keep a standby copy of each partition's SLA states, read from "
        "its changelog as it is written: with `rocksdb://`, a partition that fails over to "
        "one is recovered from that copy, not replayed from the changelog (with "
        "`memory://` it is replayed anyway: docs/OPERATIONS.md, Several workers). Costs "
        "each worker the disk and CPU of the copies it keeps. 0 by default: measured, "
        "Faust's RocksDB standby copies missed changelog records, so a failover to one "
        "lost timers (docs/BENCHMARKS.md, Recovery with 1,000,000 timers).",
        0,
    )
    partitions: int = _doc(
        "Partitions of every topic slawatch creates; the input topics must match.", 4
    )
    replication_factor: int = _doc("Replication factor of the topics slawatch creates.", 1)
    topic_tickets: str = _doc("Input topic of ticket events.", "tickets")
    topic_chats: str = _doc("Input topic of chat events.", "chats")
    topic_calls: str = _doc("Input topic of call events.", "calls")
    topic_normalised: str = _doc(
        "Internal topic of validated events, partitioned by conversation.",
        "slawatch-normalised",
    )
    topic_sla_events: str = _doc("Output topic of SLA events.", "sla-events")
    topic_dead_letter: str = _doc("Output topic of refused input messages.", "dead-letter")
    topic_policy: str = _doc(
        "Compacted topic of published SLA policies (`slawatch policy publish`).",
        "slawatch-policy",
    )
    web_host: str = _doc("Address the worker's HTTP server binds.", "127.0.0.1")
    web_port: int = _doc(
        "Port of the worker's HTTP server (`/healthz`, `/readyz`, `/metrics`).", 6066
    )
    web_auth_token: Secret = _doc(
        "Credential for every web page and API but `/healthz`, `/readyz` and `/metrics` "
        "(bearer token, basic-auth password, or `?token=` once). Required when `web_host` "
        "is beyond loopback (README, Wallboard).",
        Secret(""),
        secret=True,
    )
    web_auth_token_file: str = _doc(
        "File whose first line is the web credential (instead of `web_auth_token`).", ""
    )
    http_ingest: bool = _doc(
        "Serve `POST /ingest/tickets`, `/ingest/chats` and `/ingest/calls` on the worker's "
        "web server (README, Webhooks (HTTP)); needs `http_ingest_token` or "
        "`http_ingest_hmac_secret` (or their `_file`). `slawatch ingest-http` serves them alone.",
        False,
    )
    http_ingest_token: Secret = _doc(
        "Bearer token a webhook sender shows (`Authorization: Bearer <token>`) on `/ingest/*`.",
        Secret(""),
        secret=True,
    )
    http_ingest_token_file: str = _doc(
        "File whose first line is `http_ingest_token` (instead of setting it).", ""
    )
    http_ingest_hmac_secret: Secret = _doc(
        "Shared secret of the HMAC-SHA256 signature a webhook sender puts in "
        "`X-Slawatch-Signature` (README, Webhooks (HTTP): what is signed).",
        Secret(""),
        secret=True,
    )
    http_ingest_hmac_secret_file: str = _doc(
        "File whose first line is `http_ingest_hmac_secret` (instead of setting it).", ""
    )
    http_ingest_signature_max_age_s: float = _doc(
        "A signed request with `X-Slawatch-Timestamp` further than this from the server's "
        "clock (either way) is refused as a replay.",
        300.0,
    )
    http_ingest_max_body_bytes: int = _doc(
        "Largest `/ingest/*` request body (one event or a JSON array); larger is 413.",
        1_048_576,
    )
    http_ingest_produce_timeout_s: float = _doc(
        "Longest wait for the broker to acknowledge a request's events; past it, or with the "
        "broker down, the answer is 503.",
        10.0,
    )
    wallboard_publish_ms: int = _doc(
        "How often a worker writes its partitions' share of the wallboard's live view to "
        "Redis (when it changed).",
        500,
    )
    max_event_bytes: int = _doc(
        "Largest input message accepted (at most 524288: a normalised message is at most 512 KiB).",
        65536,
    )
    max_future_skew_s: float = _doc(
        "How far in the future an `occurred_at` may be (producers' clock skew).", 300.0
    )
    ingest_max_records: int = _doc("Most input messages read and validated in one batch.", 2000)
    ingest_poll_timeout_ms: int = _doc(
        "Longest wait for input before a partial batch is processed.", 100
    )
    policy_file: str = _doc(
        "SLA policy file (calendars, levels, rules; README, SLA policies) used until one is "
        "published to the policy topic; empty for the built-in policy.",
        "",
    )
    sla_time_scale: float = _doc(
        "Divide every SLA target by this: for demos that compress time. 1 in production.", 1.0
    )
    watermark_grace_ms: int = _doc(
        "How late a producer may deliver an event: breaches wait this long past due for a "
        "stop that may still be on its way.",
        500,
    )
    timer_tick_ms: int = _doc(
        "How often every partition's timers are checked (with watermark heartbeats).", 200
    )
    emitted_window_s: float = _doc(
        "After a restart or rebalance, SLA events emitted this far back are not emitted again.",
        900.0,
    )
    late_after_s: float = _doc(
        "An SLA event decided more than this after its time is flagged `late` (recovery).", 5.0
    )
    state_retention_s: float = _doc(
        "How long a finished conversation's state (closed, deleted, chat or call ended, no "
        "open cycle) is kept after its last recorded instant, in event time, before it is "
        "removed with a tombstone on the changelog; 0 keeps every state for ever. Events "
        "older than this about a conversation not held are refused (docs/OPERATIONS.md, "
        "State retention).",
        3 * 86400.0,
    )
    fetch_max_wait_ms: int = _doc(
        "Longest wait of an empty fetch. The embedded broker holds every fetch this long "
        "even when data arrives, so it adds up to this much latency per hop there.",
        100,
    )
    broker_session_timeout_s: float = _doc(
        "Consumer-group session timeout. The embedded broker holds every join for about "
        "half of it, so the default is short; use Kafka's usual 30 s against Kafka.",
        3.0,
    )
    broker_heartbeat_interval_s: float = _doc("Consumer-group heartbeat interval.", 1.0)
    broker_rebalance_timeout_s: float = _doc("Consumer-group rebalance timeout.", 4.0)
    # How every Kafka client connects (README, Securing the connection to Kafka): the
    # worker's Faust app, ingest, the read-backs, the policy topic, the notifier, the log
    # sink and the commands all take their options from slawatch/config/kafka_security.py.
    kafka_security_protocol: str = _doc(
        "How every Kafka client connects: `PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or "
        "`SASL_SSL` (SASL over TLS).",
        "PLAINTEXT",
    )
    kafka_ssl_ca_file: str = _doc(
        "PEM file of the CA certificates the brokers' certificates are checked against "
        "(`SSL`, `SASL_SSL`). Empty: the system's trust store.",
        "",
    )
    kafka_ssl_cert_file: str = _doc(
        "PEM file of the client certificate, for brokers that ask for one (mutual TLS); "
        "with `kafka_ssl_key_file`.",
        "",
    )
    kafka_ssl_key_file: str = _doc("PEM file of the client certificate's private key.", "")
    kafka_ssl_key_password: Secret = _doc(
        "Password of an encrypted `kafka_ssl_key_file`.", Secret(""), secret=True
    )
    kafka_sasl_mechanism: str = _doc(
        "SASL mechanism (`SASL_PLAINTEXT`, `SASL_SSL`): `PLAIN`, `SCRAM-SHA-256` or "
        "`SCRAM-SHA-512`.",
        "",
    )
    kafka_sasl_username: str = _doc("SASL user name.", "")
    kafka_sasl_password: Secret = _doc(
        "SASL password (or `kafka_sasl_password_file`).", Secret(""), secret=True
    )
    kafka_sasl_password_file: str = _doc(
        "File whose first line is the SASL password (instead of `kafka_sasl_password`), "
        "e.g. a mounted secret; read whenever a client is made.",
        "",
    )
    registry_interval_s: float = _doc(
        "How often a worker writes its status to Redis (`slawatch status`).", 1.0
    )
    alert_routing_file: str = _doc(
        "Alert routing file (README, Alert routing): receivers and escalation routes. "
        "Empty: no notifications are sent.",
        "",
    )
    notifier_in_worker: bool = _doc(
        "Run the notifier inside `slawatch worker` when `alert_routing_file` is set; "
        "false when notifiers run on their own (`slawatch notifier`).",
        True,
    )
    alert_max_age_s: float = _doc(
        "SLA events decided longer ago than this are not alerted (counted as too old): a "
        "notifier's first start, or one back from a long outage, does not page for history.",
        86_400.0,
    )
    alert_retention_s: float = _doc(
        "How long the notification log and ended cycles' alert states are kept in Redis: "
        "a replay of `sla-events` within it sends nothing twice.",
        7 * 86_400.0,
    )
    log_store_url: Secret = _doc(
        "SLA log database (README, Reports): `sqlite:///path/sla-log.db` on one machine, "
        "`postgresql://user:password@host:5432/db` in production. Empty: "
        "`sqlite:///<data_dir>/sla-log.db`.",
        Secret(""),
        secret=True,
    )
    log_sink_in_worker: bool = _doc(
        "Run the SLA log sink inside `slawatch worker`; false when sinks run on their own "
        "(`slawatch log-sink`).",
        True,
    )
    log_store_migrate: bool = _doc(
        "Apply the SLA log database's schema migrations when a sink starts; false when "
        "they are applied by hand (`slawatch log-sink --migrate`).",
        True,
    )
    log_sink_max_records: int = _doc(
        "Most SLA events the sink folds and writes in one transaction.", 2000
    )
    report_time_zone: str = _doc(
        "The centre's time zone (IANA name): a report's day, week and month are its "
        "calendar's. A request may ask for another.",
        "UTC",
    )
    customer_fees_file: str = _doc(
        "Customer fees file (README, SLA credits): each customer's monthly fee and currency, "
        "which the credits report takes percentages of. Empty: every credit says its fee is "
        "unknown.",
        "",
    )
    metric_labels: str = _doc(
        "Labels of the SLA metrics (comma list of level, channel, department, queue, "
        "priority, tenant, customer_group; README, Metrics).",
        "level,channel,department,queue,priority",
    )
    metric_histogram_labels: str = _doc(
        "Labels of the reply, answer and resolution time histograms besides `outcome` "
        "(same names; empty for none).",
        "level",
    )
    metric_label_values: str = _doc(
        "Allowed values per label, `label=v1,v2;label=v1,...`: any other value is `other`. "
        "Labels not listed admit their first `metric_label_cap` values.",
        "",
    )
    metric_label_cap: int = _doc(
        "Most distinct values a label without an allowed list takes; later ones are `other`.",
        30,
    )
    metric_series_cap: int = _doc(
        "Most label combinations of the SLA metrics; later combinations are all `other`.", 500
    )
    worker_id: str = _doc(
        "Name of this worker in status, logs and dead letters; default host:pid.", ""
    )
    log_level: str = _doc("Log level: debug, info, warning, error.", "info")

    def __post_init__(self) -> None:
        if not self.worker_id:
            object.__setattr__(self, "worker_id", f"{socket.gethostname()}:{os.getpid()}")

    @property
    def input_topics(self) -> tuple[str, str, str]:
        return (self.topic_tickets, self.topic_chats, self.topic_calls)

    @property
    def log_store(self) -> Secret:
        """The SLA log database's URL (``log_store_url``, or SQLite in ``data_dir``)."""
        if self.log_store_url:
            return self.log_store_url
        return Secret(f"sqlite:///{(self.data_dir / 'sla-log.db').resolve()}")

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker URL as aiokafka wants it."""
        hosts = self.broker_url.removeprefix("kafka://")
        return [host.strip() for host in hosts.split(";") if host.strip()]

    def metric_label_names(self, histogram: bool = False) -> tuple[str, ...]:
        """The SLA metrics' label names (or the histograms'), in the order given."""
        text = self.metric_histogram_labels if histogram else self.metric_labels
        return tuple(name.strip() for name in text.split(",") if name.strip())

    def metric_allowed_values(self) -> dict[str, frozenset[str]]:
        """``metric_label_values`` as {label: allowed values}; ValueError if malformed."""
        allowed: dict[str, frozenset[str]] = {}
        for part in self.metric_label_values.split(";"):
            if not part.strip():
                continue
            name, sep, values = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ValueError(f"expected label=value,value,... in {part.strip()!r}")
            if name in allowed:
                raise ValueError(f"label {name!r} is listed twice")
            allowed[name] = frozenset(v.strip() for v in values.split(",") if v.strip())
        return allowed

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **values)

    @classmethod
    def markdown_table(cls) -> str:
        """The README's configuration table, generated from the fields."""
        lines = ["| Variable | Default | What it sets |", "|---|---|---|"]
        for env, _value, default, doc in cls().describe():
            shown = "host:pid" if env == ENV_PREFIX + "WORKER_ID" else default
            lines.append(f"| `{env}` | `{shown}` | {doc} |")
        return "\n".join(lines)

    def to_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment that gives a child process (``slawatch worker``) exactly these
        settings: ``base`` (default: this process's) without its ``SLAWATCH_*`` variables,
        plus one per setting. Secrets are passed as they are: this is for child processes."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items() if not k.startswith(ENV_PREFIX)}
        for f in fields(self):
            env[ENV_PREFIX + f.name.upper()] = str(getattr(self, f.name))
        return env

    def describe(self) -> list[tuple[str, str, str, str]]:
        """Return (env var, value, default, doc) per field, secrets masked."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not MISSING else ""
            if f.metadata.get("secret"):
                value = Secret(value).masked()
                default = Secret(default).masked()
            elif isinstance(value, str):
                value = mask_url(value)  # credentials in a broker_url are refused; never shown
            rows.append((ENV_PREFIX + f.name.upper(), str(value), str(default), f.metadata["doc"]))
        return rows


_LOG_LEVELS = ("debug", "info", "warning", "error")


def _coerce(f: Any, raw: Any, *, from_text: bool) -> Any:
    """Turn a raw value (YAML scalar or environment string) into the field's type."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower() if from_text else None
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind == "int":
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        if isinstance(raw, int):
            return raw
        if from_text:
            try:
                return int(str(raw).strip())
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {raw!r}")
    if kind == "float":
        if isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        if isinstance(raw, int | float):
            return float(raw)
        if from_text:
            try:
                return float(str(raw).strip())
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {raw!r}")
    if isinstance(raw, str) and not raw.strip() and f.default == "":
        return ""  # an optional setting left empty: its default meaning
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"expected a non-empty string, got {raw!r}")
    if kind == "Path":
        return Path(raw)
    if kind == "Secret":
        return Secret(raw)
    return raw


#: The largest ``max_event_bytes``: ingest forwards events in normalised messages of at most
#: 512 KiB (agents/ingest.py, MAX_FORWARDED_EVENT_BYTES), and refuses anything larger.
MAX_EVENT_BYTES_LIMIT = 512 * 1024


def _check(settings: Settings) -> list[tuple[str, str]]:
    """Return (field, problem) for each value that is well-typed but out of range."""
    problems = []
    for name in (
        "partitions",
        "replication_factor",
        "max_event_bytes",
        "ingest_max_records",
        "timer_tick_ms",
        "fetch_max_wait_ms",
        "metric_label_cap",
        "metric_series_cap",
        "wallboard_publish_ms",
        "log_sink_max_records",
    ):
        if getattr(settings, name) < 1:
            problems.append((name, "must be at least 1"))
    if settings.max_event_bytes > MAX_EVENT_BYTES_LIMIT:
        problems.append(("max_event_bytes", f"must be at most {MAX_EVENT_BYTES_LIMIT} (512 KiB)"))
    if not 0 < settings.web_port < 65536:
        problems.append(("web_port", "must be a port number, 1..65535"))
    if settings.log_level not in _LOG_LEVELS:
        problems.append(("log_level", f"must be one of {list(_LOG_LEVELS)}"))
    if "@" in settings.broker_url:
        problems.append(
            (
                "broker_url",
                "must not hold credentials (user:password@): set kafka_sasl_username and "
                "kafka_sasl_password (or kafka_sasl_password_file) with "
                "kafka_security_protocol SASL_SSL",
            )
        )
    elif not settings.broker_url.startswith("kafka://") or not settings.bootstrap_servers:
        problems.append(("broker_url", "must look like kafka://host:port"))
    problems += _check_kafka_security(settings)
    if not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(("redis_url", "must look like redis://host:port/db"))
    if settings.watermark_grace_ms < 0:
        problems.append(("watermark_grace_ms", "must not be negative"))
    if settings.store not in ("memory://", "rocksdb://"):
        problems.append(("store", "must be memory:// or rocksdb://"))
    if settings.log_store_url and not settings.log_store_url.startswith(
        ("sqlite:///", "postgresql://", "postgresql+psycopg://", "postgres://")
    ):
        problems.append(("log_store_url", "must look like sqlite:///path or postgresql://host/db"))
    try:
        ZoneInfo(settings.report_time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
        problems.append(("report_time_zone", "must be an IANA time zone, e.g. Europe/Paris"))
    problems += _check_labels(settings)
    problems += _check_http_ingest(settings)
    for name in (
        "max_future_skew_s",
        "broker_session_timeout_s",
        "broker_heartbeat_interval_s",
        "broker_rebalance_timeout_s",
        "registry_interval_s",
        "sla_time_scale",
        "emitted_window_s",
        "late_after_s",
        "alert_retention_s",
        "alert_max_age_s",
    ):
        if getattr(settings, name) <= 0:
            problems.append((name, "must be greater than 0"))
    if settings.state_retention_s < 0:
        problems.append(("state_retention_s", "must be 0 (keep for ever) or more"))
    if settings.table_standby_replicas < 0:
        problems.append(("table_standby_replicas", "must be 0 (none) or more"))
    return problems


#: What ``kafka_security_protocol`` may be, and which of them use TLS or SASL.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
#: The SASL mechanisms slawatch offers (aiokafka's GSSAPI and OAUTHBEARER need more
#: than a user name and a password).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def first_line(path: Path) -> str:
    """The first line of a credential file, stripped; OSError if it cannot be read,
    ValueError if it is empty."""
    lines = path.read_text().splitlines()
    line = lines[0].strip() if lines else ""
    if not line:
        raise ValueError(f"{path} holds nothing on its first line")
    return line


#: The HTTP ingest's credentials: each a value or a file, not both.
HTTP_INGEST_CREDENTIALS = ("http_ingest_token", "http_ingest_hmac_secret")


def _check_http_ingest(settings: Settings) -> list[tuple[str, str]]:
    """HTTP ingest: each credential set once (value or file), a file that can be read, and
    at least one credential when it is on."""
    problems: list[tuple[str, str]] = []
    given = []
    for name in HTTP_INGEST_CREDENTIALS:
        value, path = getattr(settings, name), getattr(settings, name + "_file")
        if value and path:
            problems.append((name + "_file", f"set {name} or {name}_file, not both"))
        elif path:
            try:
                first_line(Path(path))
            except OSError as exc:
                problems.append((name + "_file", f"cannot read {path}: {exc.strerror}"))
            except ValueError as exc:
                problems.append((name + "_file", str(exc)))
        if value or path:
            given.append(name)
    if settings.http_ingest and not given:
        problems.append(
            (
                "http_ingest",
                "needs a credential: set http_ingest_token or http_ingest_hmac_secret "
                "(or their _file)",
            )
        )
    if settings.http_ingest_max_body_bytes < 1:
        problems.append(("http_ingest_max_body_bytes", "must be at least 1"))
    for name in ("http_ingest_signature_max_age_s", "http_ingest_produce_timeout_s"):
        if getattr(settings, name) <= 0:
            problems.append((name, "must be greater than 0"))
    return problems


def _check_kafka_security(settings: Settings) -> list[tuple[str, str]]:
    """The Kafka security settings: a known protocol, the settings it needs, none it
    would ignore, and files that can be read (the TLS ones loaded as a client would)."""
    protocol = settings.kafka_security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        return [("kafka_security_protocol", f"must be one of {', '.join(SECURITY_PROTOCOLS)}")]
    tls = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
    sasl = ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
    problems = []
    for name in (*tls, "kafka_ssl_key_password"):
        if getattr(settings, name) and protocol not in TLS_PROTOCOLS:
            problems.append((name, "is used only with kafka_security_protocol SSL or SASL_SSL"))
    for name in (*sasl, "kafka_sasl_password_file"):
        if getattr(settings, name) and protocol not in SASL_PROTOCOLS:
            problems.append(
                (name, "is used only with kafka_security_protocol SASL_PLAINTEXT or SASL_SSL")
            )
    if problems:
        return problems
    if protocol in TLS_PROTOCOLS:
        problems += _check_tls_files(settings)
    if protocol in SASL_PROTOCOLS:
        if settings.kafka_sasl_mechanism not in SASL_MECHANISMS:
            problems.append(
                ("kafka_sasl_mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}")
            )
        if not settings.kafka_sasl_username:
            problems.append(("kafka_security_protocol", f"{protocol} needs kafka_sasl_username"))
        if settings.kafka_sasl_password and settings.kafka_sasl_password_file:
            problems.append(
                (
                    "kafka_sasl_password_file",
                    "set kafka_sasl_password or kafka_sasl_password_file, not both",
                )
            )
        elif settings.kafka_sasl_password_file:
            path = Path(settings.kafka_sasl_password_file)
            try:
                first_line(path)
            except OSError as exc:
                problems.append(("kafka_sasl_password_file", f"cannot read {path}: {exc.strerror}"))
            except ValueError as exc:
                problems.append(("kafka_sasl_password_file", str(exc)))
        elif not settings.kafka_sasl_password:
            problems.append(
                (
                    "kafka_security_protocol",
                    f"{protocol} needs kafka_sasl_password or kafka_sasl_password_file",
                )
            )
    return problems


def _check_tls_files(settings: Settings) -> list[tuple[str, str]]:
    """Each TLS file readable, a certificate with its key, and all of them loaded into a
    client's TLS context as aiokafka's ``create_ssl_context`` would."""
    problems = []
    for name in ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file"):
        if getattr(settings, name):
            path = Path(getattr(settings, name))
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                problems.append((name, f"cannot read {path}: {exc.strerror}"))
    cert, key = settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    if cert and not key:
        problems.append(("kafka_ssl_cert_file", "needs kafka_ssl_key_file too"))
    elif key and not cert:
        problems.append(("kafka_ssl_key_file", "needs kafka_ssl_cert_file too"))
    if settings.kafka_ssl_key_password and not key:
        problems.append(("kafka_ssl_key_password", "needs kafka_ssl_key_file"))
    if problems:
        return problems
    ca = settings.kafka_ssl_ca_file
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)
    except ssl.SSLError as exc:
        return [("kafka_ssl_ca_file", f"{ca} holds no PEM certificate ({exc.reason or exc})")]
    if cert:
        try:
            # Always a password, empty if none: without one OpenSSL would ask on the terminal.
            context.load_cert_chain(cert, key, password=str(settings.kafka_ssl_key_password))
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                return [("kafka_ssl_key_file", f"{key} is not the key of {cert}")]
            with contextlib.suppress(OSError):
                # OpenSSL says only "PEM lib" for a file that is not PEM and for a wrong
                # password alike: tell them apart by what the files hold.
                if "BEGIN CERTIFICATE" not in Path(cert).read_text(errors="replace"):
                    return [("kafka_ssl_cert_file", f"{cert} holds no PEM certificate")]
                key_text = Path(key).read_text(errors="replace")
                if "PRIVATE KEY" not in key_text:
                    return [("kafka_ssl_key_file", f"{key} holds no PEM private key")]
                if "ENCRYPTED" in key_text:
                    if settings.kafka_ssl_key_password:
                        return [("kafka_ssl_key_password", f"does not decrypt {key}")]
                    return [("kafka_ssl_key_password", f"must be set: {key} is encrypted")]
            return [
                (
                    "kafka_ssl_cert_file",
                    f"cannot load {cert} with {key}: a PEM certificate and its key are needed "
                    f"({exc.reason or exc})",
                )
            ]
    return []


def _check_labels(settings: Settings) -> list[tuple[str, str]]:
    """The metric label settings: known names, no name twice, well-formed allowed lists."""
    problems = []
    for name, histogram in (("metric_labels", False), ("metric_histogram_labels", True)):
        names = settings.metric_label_names(histogram)
        unknown = [n for n in names if n not in LABEL_ATTRIBUTES]
        if unknown:
            problems.append(
                (name, f"unknown label {unknown[0]!r}; use {', '.join(LABEL_ATTRIBUTES)}")
            )
        elif len(set(names)) != len(names):
            problems.append((name, "names a label twice"))
    try:
        allowed = settings.metric_allowed_values()
    except ValueError as exc:
        problems.append(("metric_label_values", str(exc)))
    else:
        labels = set(settings.metric_label_names()) | set(settings.metric_label_names(True))
        stray = [n for n in allowed if n not in labels]
        if stray:
            problems.append(("metric_label_values", f"{stray[0]!r} is not in metric_labels"))
    return problems


def _read_config_file(path: Path) -> dict[str, tuple[Any, int]]:
    """Read a YAML config file into {field: (value, line)}, with 1-based line numbers."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read: {exc.strerror}", source="file", field="(file)", path=path
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text: {exc.reason} (byte {exc.start})",
            source="file",
            field="(file)",
            path=path,
            line=data[: exc.start].count(b"\n") + 1,
        ) from None
    try:
        node = yamlfile.compose(text)
    except yamlfile.YamlSyntaxError as exc:
        raise ConfigError(
            exc.message, source="file", field="(syntax)", path=path, line=exc.line
        ) from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(
            "the file must be a mapping of setting: value",
            source="file",
            field="(top level)",
            path=path,
            line=yamlfile.line_of(node),
        )
    values: dict[str, tuple[Any, int]] = {}
    for name, key_node, value_node in yamlfile.entries(node):
        line = yamlfile.line_of(key_node)
        if not isinstance(value_node, yaml.ScalarNode):
            raise ConfigError(
                "expected a single value", source="file", field=name, path=path, line=line
            )
        try:
            value = yamlfile.construct(value_node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # A value YAML itself cannot build (2026-02-30, an unknown tag).
            message = getattr(exc, "problem", None) or (str(exc).splitlines() or [""])[0][:200]
            message = message or type(exc).__name__
            raise ConfigError(
                f"not a value YAML can read: {message}",
                source="file",
                field=name,
                path=path,
                line=line,
            ) from None
        values[name] = (value, line)
    return values


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from defaults, ``config_file``, ``environ`` and ``overrides``, in
    that order of precedence (later wins). Raise :class:`ConfigError` naming the file and
    line, or the variable, of the first bad value."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    by_name = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    origin: dict[str, tuple[str, Path | None, int]] = {}

    if config_file is not None:
        for name, (raw, line) in _read_config_file(config_file).items():
            if name not in by_name:
                raise ConfigError(
                    f"unknown setting; known: {', '.join(sorted(by_name))}",
                    source="file",
                    field=name,
                    path=config_file,
                    line=line,
                )
            try:
                values[name] = _coerce(by_name[name], raw, from_text=False)
            except ValueError as exc:
                raise ConfigError(
                    str(exc), source="file", field=name, path=config_file, line=line
                ) from None
            origin[name] = ("file", config_file, line)

    for name, f in by_name.items():
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            try:
                values[name] = _coerce(f, environ[env_name], from_text=True)
            except ValueError as exc:
                raise ConfigError(str(exc), source="environment", field=env_name) from None
            origin[name] = ("environment", None, 0)

    values.update(overrides)
    settings = Settings(**values)
    for name, problem in _check(settings):
        source, path, line = origin.get(name, ("argument", None, 0))
        shown = ENV_PREFIX + name.upper() if source == "environment" else name
        raise ConfigError(problem, source=source, field=shown, path=path, line=line)
    return settings
