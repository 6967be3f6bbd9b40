"""Kafka security: every client slawatch makes connects alike (TLS and SASL from the
settings), the settings refuse what would not work, and no credential is ever shown.

Two checks keep every client on the settings. One reads the source: each aiokafka client
and Faust app built anywhere in slawatch takes ``**kafka_client_options(...)`` (or
``broker_credentials=faust_credentials(...)``), so a new client that forgets fails it. The
other starts each component on real TLS files with the aiokafka constructors recorded
(``start`` stops it before any connection) and compares what every client got: the
same protocol, mechanism, user, password and a TLS context loaded from the CA. That the
options reach the wire is tests/integration/test_kafka_tls.py.
"""

from __future__ import annotations

import ast
import asyncio
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from slawatch.cli.main import main
from slawatch.config.kafka_security import faust_credentials, kafka_client_options
from slawatch.config.settings import Secret, Settings, load_settings
from slawatch.errors import ConfigError, SlawatchError
from tests.tls_files import KEY_PASSWORD, TlsFiles, make_tls_files

ROOT = Path(__file__).resolve().parents[2]
SASL_PASSWORD = "sasl-pw-9c2e"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def secured(tls: TlsFiles, tmp_path: Path) -> Settings:
    """SASL_SSL with SCRAM-SHA-512, the password in a file, and a client certificate
    whose key has a password: every option at once."""
    password_file = tmp_path / "sasl-password"
    password_file.write_text(SASL_PASSWORD + "\n")
    (tmp_path / "data").mkdir()  # the log sink's SQLite file
    return load_settings(
        None,
        environ={
            "SLAWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SLAWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SLAWATCH_KAFKA_SASL_USERNAME": "slawatch-worker",
            "SLAWATCH_KAFKA_SASL_PASSWORD_FILE": str(password_file),
            "SLAWATCH_KAFKA_SSL_CA_FILE": str(tls.ca_cert),
            "SLAWATCH_KAFKA_SSL_CERT_FILE": str(tls.client_cert),
            "SLAWATCH_KAFKA_SSL_KEY_FILE": str(tls.client_key),
            "SLAWATCH_KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
        },
        data_dir=tmp_path / "data",
    )


# --- every client, from the source ---------------------------------------------------------

CLIENT_CLASSES = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}

#: Files whose clients need not take the settings' security, and why. Each must still
#: make a client without it (so that an entry does not outlive its reason).
EXEMPT = {
    "slawatch/dev/bench_reports.py": "runs only on the embedded broker it starts; no Settings",
}


def _called(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _client_calls(path: Path) -> list[tuple[int, str, bool]]:
    """(line, what, secured) of each Kafka client or Faust app made in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in CLIENT_CLASSES:
            secured = any(
                k.arg is None and _called(k.value, "kafka_client_options") for k in node.keywords
            )
            found.append((node.lineno, name, secured))
        elif name == "App" and isinstance(func, ast.Attribute) and ast.unparse(func) == "faust.App":
            secured = any(
                k.arg == "broker_credentials" and _called(k.value, "faust_credentials")
                for k in node.keywords
            )
            found.append((node.lineno, "faust.App", secured))
    return found


def _sources() -> list[Path]:
    """Every Python file that installs under ``slawatch`` (the top-level folders once,
    not again through the symlinks in slawatch/)."""
    files = []
    for top in ("slawatch", "streams", "agents", "schemas"):
        for folder, dirs, names in os.walk(ROOT / top):  # symlinks are not followed
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            files += [Path(folder) / n for n in names if n.endswith(".py")]
    return files


def test_every_client_in_the_source_takes_the_security_options() -> None:
    unsecured, secured_files = [], set()
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        calls = _client_calls(path)
        if relative in EXEMPT:
            assert any(not ok for *_, ok in calls), f"{relative} is exempt for nothing"
            continue
        unsecured += [f"{relative}:{line}: {what}" for line, what, ok in calls if not ok]
        secured_files |= {relative for *_, ok in calls if ok}
    assert not unsecured, (
        "a Kafka client without the settings' security: pass "
        "**kafka_client_options(settings) (faust.App: broker_credentials=faust_credentials(...))"
        f": {unsecured}"
    )
    # The scan sees what it should: the clients the issue names are all found.
    assert {
        "streams/app.py",
        "streams/topics.py",
        "streams/read_back.py",
        "streams/policy_topic.py",
        "agents/ingest.py",
        "slawatch/alerting/notifier.py",
        "slawatch/logsink/sink.py",
        "slawatch/web/ingest.py",
        "slawatch/dev/simulator/output.py",
        "slawatch/dev/demo.py",
    } <= secured_files


def test_the_source_scan_catches_a_client_that_forgot(tmp_path: Path) -> None:
    path = tmp_path / "new_client.py"
    path.write_text(
        "import faust\n"
        "a = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers)\n"
        "b = aiokafka.AIOKafkaProducer(**options)\n"
        "c = AIOKafkaAdminClient(**kafka_client_options(s))\n"
        "d = faust.App('x', broker='kafka://h:1')\n"
    )
    assert _client_calls(path) == [
        (2, "AIOKafkaConsumer", False),
        (3, "AIOKafkaProducer", False),
        (4, "AIOKafkaAdminClient", True),
        (5, "faust.App", False),
    ]


# --- every client, as the components make them -----------------------------------------------


class _Stop(Exception):
    """Raised by a recorded client's ``start``: no connection is attempted."""


@dataclass
class _Made:
    component: str
    client: Any
    kwargs: dict[str, Any]


class _Recorder:
    """Every aiokafka client made while it is installed, with its keyword arguments and
    the component being started (:attr:`component`); a client's ``start`` raises
    :class:`_Stop`."""

    def __init__(self) -> None:
        self.made: list[_Made] = []
        self.component = "?"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    recorder = _Recorder()
    for cls in (aiokafka.AIOKafkaConsumer, aiokafka.AIOKafkaProducer, AIOKafkaAdminClient):
        original = cls.__init__

        def init(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            recorder.made.append(_Made(recorder.component, self, kwargs))
            _original(self, *args, **kwargs)

        async def start(self: Any) -> None:
            raise _Stop

        monkeypatch.setattr(cls, "__init__", init)
        monkeypatch.setattr(cls, "start", start)
    return recorder


async def _start_every_component(settings: Settings, recorder: _Recorder) -> None:
    """Start each component that talks to Kafka as far as its first client's ``start``."""
    from slawatch.agents.ingest import IngestService
    from slawatch.alerting.config import load_routing
    from slawatch.alerting.metrics import NotifierMetrics
    from slawatch.alerting.notifier import Notifier
    from slawatch.core.clock import ManualClock
    from slawatch.core.keys import ConversationKind
    from slawatch.core.policy import builtin_policy
    from slawatch.dev import bench, demo
    from slawatch.dev.simulator.output import publish
    from slawatch.logsink.metrics import LogSinkMetrics
    from slawatch.logsink.sink import LogSink
    from slawatch.schemas.validation import EventValidator
    from slawatch.streams import policy_topic
    from slawatch.streams.app import create_app
    from slawatch.streams.metrics import Metrics
    from slawatch.streams.read_back import read_back
    from slawatch.streams.topics import ensure_topics
    from slawatch.web.ingest import KafkaSink

    clock = ManualClock(1_700_000_000_000)

    async def stopped(component: str, step: Any) -> None:
        recorder.component = component
        with pytest.raises(_Stop):
            await step()

    async def no_topics(*args: Any, **kwargs: Any) -> list[str]:
        return []

    await stopped("topics (the commands' admin)", lambda: ensure_topics(settings))
    await stopped(
        "read-back (emitted ids, KPIs)", lambda: anext(read_back(settings, "t", 0, 0, "x"))
    )
    original_ensure = policy_topic.ensure_topics
    policy_topic.ensure_topics = no_topics  # its admin client is the one above
    try:
        await stopped(
            "policy publish",
            lambda: policy_topic.publish_policy(settings, Path("p.yaml"), "x", clock),
        )
    finally:
        policy_topic.ensure_topics = original_ensure
    follower = policy_topic.PolicyFollower(
        settings, builtin_policy(), lambda _: None, Metrics(CollectorRegistry())
    )
    await stopped("policy follower", follower.on_start)
    validator = EventValidator(max_event_bytes=65536, max_future_skew_ms=1000, clock=clock)
    ingest = IngestService(settings, Metrics(CollectorRegistry()), validator, clock)
    await stopped("ingest", ingest.on_start)
    routing = load_routing(ROOT / "deploy/slawatch/routing.yaml", env={})
    notifier = Notifier(settings, routing, NotifierMetrics(CollectorRegistry()), clock)
    try:
        await stopped("notifier", notifier.on_start)
    finally:
        if notifier.client is not None:
            await notifier.client.aclose()
    sink = LogSink(settings, LogSinkMetrics(CollectorRegistry()), clock)
    try:
        await stopped("log sink", sink.on_start)
    finally:
        await sink.on_stop()
    http_ingest = KafkaSink(settings)
    await stopped("http ingest", lambda: http_ingest.send_all("t", []))
    topics = dict.fromkeys(ConversationKind, "t")
    await stopped("simulator", lambda: publish([], settings=settings, topics=topics))
    from slawatch.connectors import runner as asterisk

    connector = asterisk.AsteriskConnector(
        settings,
        asterisk.ConnectorOptions(
            path=settings.data_dir / "queue_log", state_file=settings.data_dir / "state.json"
        ),
        clock,
    )
    original_ensure = asterisk.ensure_topics
    asterisk.ensure_topics = no_topics  # its admin client is the commands' one, above
    try:
        await stopped("asterisk connector", lambda: connector.run(asyncio.Event()))
    finally:
        asterisk.ensure_topics = original_ensure
    recorder.component = "demo"
    demo._OutputCounter(settings)
    await stopped("bench producer", lambda: bench._produce(settings, []))
    await stopped("bench raw ceiling", lambda: bench._raw_ceiling(settings, 1, 1.0))
    await stopped("bench routing floor", lambda: bench._routing_floor(settings, 1, 1.0))
    await stopped("bench breach delays", lambda: bench._breach_delays(settings, "p", 1, 1.0))
    # The worker's Faust app: its consumer and producer as Faust's aiokafka driver makes
    # them (faust/transport/drivers/aiokafka.py), from the app's broker_credentials.
    recorder.component = "faust app"
    app = create_app(settings)
    thread = app.consumer._thread
    try:
        thread._create_worker_consumer(app.transport)
        app.producer._new_producer()
    finally:
        thread.thread_loop.close()  # the consumer thread's loop, never started


def test_every_client_gets_the_same_security_settings(
    secured: Settings, recorder: _Recorder
) -> None:
    async def run() -> None:
        try:
            await _start_every_component(secured, recorder)
        finally:
            for made in recorder.made:
                close = getattr(made.client, "stop", None) or made.client.close
                await close()

    asyncio.run(run())
    by_component: dict[str, int] = {}
    for made in recorder.made:
        by_component[made.component] = by_component.get(made.component, 0) + 1
    assert by_component == {
        "topics (the commands' admin)": 1,
        "read-back (emitted ids, KPIs)": 1,
        "policy publish": 1,
        "policy follower": 1,
        "ingest": 2,  # producer, consumer
        "notifier": 1,
        "log sink": 1,
        "http ingest": 1,
        "simulator": 1,
        "asterisk connector": 1,
        "demo": 1,
        "bench producer": 1,
        "bench raw ceiling": 1,
        "bench routing floor": 1,
        "bench breach delays": 1,
        "faust app": 2,  # consumer, producer
    }
    for made in recorder.made:
        kwargs = made.kwargs
        got = {k: kwargs.get(k) for k in ("security_protocol", "sasl_mechanism")}
        got["user"] = (kwargs.get("sasl_plain_username"), kwargs.get("sasl_plain_password"))
        assert got == {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "user": ("slawatch-worker", SASL_PASSWORD),
        }, made.component
        context = kwargs["ssl_context"]
        assert isinstance(context, ssl.SSLContext), made.component
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        issuers = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
        assert issuers == [{"commonName": "slawatch test CA"}], made.component


def test_options_per_protocol(tls: TlsFiles) -> None:
    plain = Settings()
    assert kafka_client_options(plain) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(plain) is None

    tls_only = load_settings(
        None,
        environ={},
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=str(tls.ca_cert),
    )
    options = kafka_client_options(tls_only)
    assert options.keys() == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    credentials = faust_credentials(tls_only)
    assert type(credentials).__name__ == "SSLCredentials"
    assert credentials.protocol.value == "SSL" and credentials.context.get_ca_certs()

    sasl_plain = load_settings(
        None,
        environ={},
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password=Secret("p"),
    )
    assert kafka_client_options(sasl_plain) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    credentials = faust_credentials(sasl_plain)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.ssl_context is None
    assert "p" not in repr(credentials).partition("username=")[0]


def test_the_password_file_is_read_when_a_client_is_made(secured: Settings) -> None:
    path = Path(secured.kafka_sasl_password_file)
    path.write_text("rotated\n")
    assert kafka_client_options(secured)["sasl_plain_password"] == "rotated"
    path.unlink()
    with pytest.raises(SlawatchError) as caught:
        kafka_client_options(secured)
    assert str(caught.value) == (
        f"SLAWATCH_KAFKA_SASL_PASSWORD_FILE: cannot read {path}: No such file or directory"
    )


# --- settings that would not work -----------------------------------------------------------


def _sasl(**more: str) -> dict[str, str]:
    return {
        "SLAWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SLAWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
        "SLAWATCH_KAFKA_SASL_USERNAME": "u",
        "SLAWATCH_KAFKA_SASL_PASSWORD": "p",
        **more,
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"SLAWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"},
            "SLAWATCH_KAFKA_SECURITY_PROTOCOL: must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
            "SASL_SSL",
        ),
        (
            _sasl(SLAWATCH_KAFKA_SASL_MECHANISM="GSSAPI"),
            "SLAWATCH_KAFKA_SASL_MECHANISM: must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            _sasl(SLAWATCH_KAFKA_SASL_USERNAME=""),
            "SLAWATCH_KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT needs kafka_sasl_username",
        ),
        (
            _sasl(SLAWATCH_KAFKA_SASL_PASSWORD=""),
            "SLAWATCH_KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT needs kafka_sasl_password or "
            "kafka_sasl_password_file",
        ),
        (
            _sasl(SLAWATCH_KAFKA_SASL_PASSWORD_FILE="/etc/hostname"),
            "SLAWATCH_KAFKA_SASL_PASSWORD_FILE: set kafka_sasl_password or "
            "kafka_sasl_password_file, not both",
        ),
        (
            _sasl(SLAWATCH_KAFKA_SASL_PASSWORD="", SLAWATCH_KAFKA_SASL_PASSWORD_FILE="/no/such"),
            "SLAWATCH_KAFKA_SASL_PASSWORD_FILE: cannot read /no/such: No such file or directory",
        ),
        (
            {"SLAWATCH_KAFKA_SASL_USERNAME": "u"},
            "SLAWATCH_KAFKA_SASL_USERNAME: is used only with kafka_security_protocol "
            "SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"SLAWATCH_KAFKA_SSL_CA_FILE": "/etc/hostname"},
            "SLAWATCH_KAFKA_SSL_CA_FILE: is used only with kafka_security_protocol SSL or SASL_SSL",
        ),
        (
            {"SLAWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAWATCH_KAFKA_SSL_CA_FILE": "/no/ca"},
            "SLAWATCH_KAFKA_SSL_CA_FILE: cannot read /no/ca: No such file or directory",
        ),
    ],
)
def test_security_settings_that_would_not_work_name_the_variable(environ, expected) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=environ)
    assert str(caught.value) == f"environment: {expected}"


def test_tls_files_are_loaded_as_a_client_would(tls: TlsFiles, tmp_path: Path) -> None:
    def problem(**values: str) -> str:
        values = {"kafka_security_protocol": "SSL", **values}
        with pytest.raises(ConfigError) as caught:
            load_settings(None, environ={}, **values)
        return str(caught.value).removeprefix("argument: ")

    cert, key = str(tls.client_cert), str(tls.client_key)
    assert problem(kafka_ssl_cert_file=cert) == "kafka_ssl_cert_file: needs kafka_ssl_key_file too"
    assert problem(kafka_ssl_ca_file=key) == (
        f"kafka_ssl_ca_file: {key} holds no PEM certificate (NO_CERTIFICATE_OR_CRL_FOUND)"
    )
    assert problem(kafka_ssl_cert_file=cert, kafka_ssl_key_file=key) == (
        f"kafka_ssl_key_password: must be set: {key} is encrypted"
    )
    assert problem(
        kafka_ssl_cert_file=cert, kafka_ssl_key_file=key, kafka_ssl_key_password="wrong"
    ) == (f"kafka_ssl_key_password: does not decrypt {key}")
    other_key = str(tls.server_key)
    assert problem(kafka_ssl_cert_file=cert, kafka_ssl_key_file=other_key) == (
        f"kafka_ssl_key_file: {other_key} is not the key of {cert}"
    )
    assert problem(kafka_ssl_cert_file=str(tls.ca_key), kafka_ssl_key_file=other_key) == (
        f"kafka_ssl_cert_file: {tls.ca_key} holds no PEM certificate"
    )
    assert problem(kafka_ssl_cert_file=cert, kafka_ssl_key_file=str(tmp_path)) == (
        f"kafka_ssl_key_file: cannot read {tmp_path}: Is a directory"
    )


def test_credentials_in_the_broker_url_are_refused_without_showing_them() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"SLAWATCH_BROKER_URL": "kafka://svc:hunter2@kafka:9093"})
    message = str(caught.value)
    assert message == (
        "environment: SLAWATCH_BROKER_URL: must not hold credentials (user:password@): set "
        "kafka_sasl_username and kafka_sasl_password (or kafka_sasl_password_file) with "
        "kafka_security_protocol SASL_SSL"
    )
    # And were such a URL in settings made without the checks, it would show masked.
    settings = Settings(broker_url="kafka://svc:hunter2@kafka:9093")
    assert "hunter2" not in str(settings.describe())
    from slawatch.streams.topics import broker_unreachable

    assert "hunter2" not in str(broker_unreachable(settings, "refused"))


# --- never shown ---------------------------------------------------------------------------


def test_secrets_are_masked_everywhere(secured: Settings, capsys, monkeypatch) -> None:
    secrets = {
        "SLAWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SLAWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
        "SLAWATCH_KAFKA_SASL_USERNAME": "slawatch-worker",
        "SLAWATCH_KAFKA_SASL_PASSWORD": "sasl-in-env-77",
        "SLAWATCH_KAFKA_SSL_CA_FILE": secured.kafka_ssl_ca_file,
        "SLAWATCH_KAFKA_SSL_CERT_FILE": secured.kafka_ssl_cert_file,
        "SLAWATCH_KAFKA_SSL_KEY_FILE": secured.kafka_ssl_key_file,
        "SLAWATCH_KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
        "SLAWATCH_WEB_AUTH_TOKEN": "web-token-5d",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for shown in ("sasl-in-env-77", KEY_PASSWORD, "web-token-5d"):
        assert shown not in out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert lines["SLAWATCH_KAFKA_SASL_PASSWORD"] == "**********"
    assert lines["SLAWATCH_KAFKA_SSL_KEY_PASSWORD"] == "**********"
    assert lines["SLAWATCH_KAFKA_SASL_USERNAME"] == "slawatch-worker"
    settings = load_settings(None)
    assert "sasl-in-env-77" not in repr(settings) and KEY_PASSWORD not in repr(settings)
    assert repr(settings.kafka_sasl_password) == "Secret('**********')"
    assert str(settings.kafka_sasl_password) == "sasl-in-env-77"  # for the client only


def test_a_secret_shows_as_its_mask() -> None:
    assert Secret("hunter2").masked() == "**********"
    assert Secret("").masked() == ""
    assert Secret("redis://:pw@cache:6379/0").masked() == "redis://***@cache:6379/0"
    assert Secret("postgresql://u:p@ss@db/x").masked() == "postgresql://***@db/x"
    assert Secret("sqlite:///data/sla-log.db").masked() == "sqlite:///data/sla-log.db"
