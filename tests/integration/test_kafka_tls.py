"""The TLS settings reach the wire: ``slawatch topics create``'s admin client, made from
the settings as every client is (slawatch/config/kafka_security.py), against a TLS
listener on loopback that asks for a client certificate (Python's ``ssl`` server, with a
CA made by ``openssl``).

The listener is no Kafka broker: it completes the handshake, reads the first Kafka
request and hangs up, so the command ends with its one-line "cannot reach the broker".
What counts is what the listener saw. SASL is not exercised here (it would need a broker
that answers ApiVersions and SaslHandshake); tests/unit/test_kafka_security.py checks
that every client gets the same SASL options.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from slawatch.config.settings import load_settings
from slawatch.errors import SlawatchError
from slawatch.streams.topics import ensure_topics
from tests.tls_files import KEY_PASSWORD, TlsFiles, make_tls_files

pytestmark = pytest.mark.integration

API_VERSIONS = 18  # Kafka's ApiVersions request: a client's first words on a connection


@dataclass
class Connection:
    """What the listener saw of one connection."""

    client: str | None = None  # the client certificate's common name
    api_key: int | None = None  # of the first Kafka request
    error: str | None = None  # of the handshake


class TlsListener:
    """A TLS server on 127.0.0.1 that requires a client certificate signed by the CA."""

    def __init__(self, tls: TlsFiles) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tls.server_cert, tls.server_key)
        self.context.load_verify_locations(tls.ca_cert)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.seen: list[Connection] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.server.accept()
            except TimeoutError:
                continue
            seen = Connection()
            self.seen.append(seen)
            raw.settimeout(5.0)
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    subject = dict(item[0] for item in conn.getpeercert()["subject"])
                    seen.client = subject["commonName"]
                    header = b""
                    while len(header) < 6:
                        chunk = conn.recv(6 - len(header))
                        if not chunk:
                            break
                        header += chunk
                    if len(header) == 6:  # int32 length, int16 api key
                        seen.api_key = int.from_bytes(header[4:6], "big")
            except (ssl.SSLError, OSError) as exc:
                seen.error = str(getattr(exc, "reason", None) or exc)
            finally:
                raw.close()

    def __enter__(self) -> TlsListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def listener(tls: TlsFiles) -> Iterator[TlsListener]:
    with TlsListener(tls) as running:
        yield running


def _create_topics(port: int, **settings: str) -> str:
    """Run what ``slawatch topics create`` runs against the listener; its one-line error."""
    loaded = load_settings(
        None,
        environ={},
        broker_url=f"kafka://127.0.0.1:{port}",
        kafka_security_protocol="SSL",
        **settings,
    )
    with pytest.raises(SlawatchError) as caught:
        asyncio.run(asyncio.wait_for(ensure_topics(loaded), timeout=60))
    return str(caught.value)


def test_the_client_checks_the_broker_against_the_ca_and_presents_its_certificate(
    tls: TlsFiles, listener: TlsListener
) -> None:
    message = _create_topics(
        listener.port,
        kafka_ssl_ca_file=str(tls.ca_cert),
        kafka_ssl_cert_file=str(tls.client_cert),
        kafka_ssl_key_file=str(tls.client_key),
        kafka_ssl_key_password=KEY_PASSWORD,
    )
    assert message.startswith(f"cannot reach the broker at kafka://127.0.0.1:{listener.port}")
    assert listener.seen, "no connection reached the listener"
    first = listener.seen[0]
    assert first == Connection(client="slawatch test client", api_key=API_VERSIONS), first


def test_without_the_ca_the_client_refuses_the_broker(listener: TlsListener) -> None:
    """The system's trust store does not know the test CA: the client hangs up in the
    handshake, and sends nothing (so the CA file above is what made it trust the broker)."""
    message = _create_topics(listener.port)
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert listener.seen
    assert all(c.api_key is None and c.client is None for c in listener.seen), listener.seen


def test_without_a_client_certificate_the_listener_refuses_the_client(
    tls: TlsFiles, listener: TlsListener
) -> None:
    """The listener asks for a certificate: the one the client presented above is what
    got it in."""
    _create_topics(listener.port, kafka_ssl_ca_file=str(tls.ca_cert))
    assert listener.seen
    assert all(c == Connection(error="PEER_DID_NOT_RETURN_A_CERTIFICATE") for c in listener.seen), (
        listener.seen
    )


def test_tls_material_never_reaches_the_message(tls: TlsFiles, listener: TlsListener) -> None:
    message = _create_topics(
        listener.port,
        kafka_ssl_ca_file=str(tls.ca_cert),
        kafka_ssl_cert_file=str(tls.client_cert),
        kafka_ssl_key_file=str(tls.client_key),
        kafka_ssl_key_password=KEY_PASSWORD,
    )
    assert KEY_PASSWORD not in message and "\n" not in message
    assert Path(tls.client_key).read_text().splitlines()[1] not in message
