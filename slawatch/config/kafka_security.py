"""How every Kafka client slawatch makes connects: TLS and SASL from the settings.

Every client takes its security from here and from nowhere else, so they cannot drift
apart: aiokafka's consumers, producers and admin clients take
``**kafka_client_options(settings)`` and the Faust app takes
``broker_credentials=faust_credentials(settings)``
(``tests/unit/test_kafka_security.py`` checks every client in the source does, and that
they all end up with the same options).

Faust hands its credentials to aiokafka itself (``credentials_to_aiokafka_auth`` in
``faust/transport/drivers/aiokafka.py``, for its consumer and its producers alike):
:class:`faust.SASLCredentials` carries the mechanism, SCRAM-SHA-256 and SCRAM-SHA-512
included (faust's ``SASLMechanism``), which aiokafka implements; it says ``SASL_SSL``
when it is given a TLS context and ``SASL_PLAINTEXT`` when not, so the context is given
exactly when the protocol uses TLS.

Secrets are read when a client is made: the SASL password from the environment or from
its file (a rotated file reaches the next client), the key's password from the settings.
:func:`~slawatch.config.settings.load_settings` has checked the files already; one that
went away since is a one-line :class:`SlawatchError` naming its setting.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from slawatch.config.settings import (
    ENV_PREFIX,
    SASL_PROTOCOLS,
    TLS_PROTOCOLS,
    Settings,
    first_line,
)
from slawatch.errors import SlawatchError

__all__ = ["faust_credentials", "kafka_client_options", "sasl_password", "tls_context"]


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The security keyword arguments of an aiokafka consumer, producer or admin client:
    ``security_protocol``, with ``ssl_context`` under TLS and ``sasl_mechanism``,
    ``sasl_plain_username`` and ``sasl_plain_password`` under SASL (aiokafka's names for
    every mechanism's user and password, SCRAM's too)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in TLS_PROTOCOLS:
        options["ssl_context"] = tls_context(settings)
    if protocol in SASL_PROTOCOLS:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = sasl_password(settings)
    return options


def faust_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` for the same options (None for ``PLAINTEXT``)."""
    protocol = settings.kafka_security_protocol
    if protocol not in TLS_PROTOCOLS | SASL_PROTOCOLS:
        return None
    from faust.auth import SASLCredentials, SSLCredentials  # only a worker needs Faust

    context = tls_context(settings) if protocol in TLS_PROTOCOLS else None
    if protocol not in SASL_PROTOCOLS:
        return SSLCredentials(context)
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=sasl_password(settings),
        ssl_context=context,  # given: SASL_SSL; None: SASL_PLAINTEXT
        mechanism=settings.kafka_sasl_mechanism,
    )


def tls_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context: the brokers' certificates checked against
    ``kafka_ssl_ca_file`` (or the system's trust store), host names checked, and the
    client certificate presented when one is set."""
    cert, key = settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    try:
        return create_ssl_context(
            cafile=settings.kafka_ssl_ca_file or None,
            certfile=cert or None,
            keyfile=key or None,
            # Always a password with a key, empty if none: without one OpenSSL would ask
            # for it on the terminal.
            password=str(settings.kafka_ssl_key_password) if key else None,
        )
    except (OSError, ssl.SSLError) as exc:  # gone or changed since the settings were read
        names = ", ".join(
            ENV_PREFIX + name.upper()
            for name in ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
            if getattr(settings, name)
        )
        raise SlawatchError(f"cannot load the Kafka TLS files ({names}): {exc}") from None


def sasl_password(settings: Settings) -> str:
    """The SASL password: ``kafka_sasl_password``, or the first line of
    ``kafka_sasl_password_file`` read now."""
    if not settings.kafka_sasl_password_file:
        return str(settings.kafka_sasl_password)
    path = Path(settings.kafka_sasl_password_file)
    try:
        return first_line(path)
    except OSError as exc:
        raise SlawatchError(
            f"{ENV_PREFIX}KAFKA_SASL_PASSWORD_FILE: cannot read {path}: {exc.strerror}"
        ) from None
    except ValueError as exc:
        raise SlawatchError(f"{ENV_PREFIX}KAFKA_SASL_PASSWORD_FILE: {exc}") from None
