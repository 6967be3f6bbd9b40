"""Who may post events to ``/ingest/*``: a bearer token or an HMAC-SHA256 signature.

A sender shows either credential (or both; one valid is enough):

- ``Authorization: Bearer <http_ingest_token>``;
- ``X-Slawatch-Signature: sha256=<hex>``: the HMAC-SHA256, keyed with
  ``http_ingest_hmac_secret``, of exactly the request body's bytes as sent; or, when the
  request also has ``X-Slawatch-Timestamp: <unix seconds>``, of the ASCII bytes
  ``<timestamp>.`` followed by the body (so the timestamp cannot be changed without the
  signature). A timestamp further than ``http_ingest_signature_max_age_s`` from the
  server's clock is refused, which bounds a replay; a replay within it changes nothing
  anyway, since every event carries its ``event_id``.

No credential shown: 401 (with ``WWW-Authenticate: Bearer``). A credential shown but not
valid (a wrong token, a wrong signature, an unreadable or stale timestamp, a credential
this server has no secret for): 403. Secrets come from the settings or from the first line
of their ``_file``, read when the server starts; comparisons take constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from slawatch.config.settings import ENV_PREFIX, Settings, first_line
from slawatch.errors import SlawatchError

SIGNATURE_HEADER = "X-Slawatch-Signature"
TIMESTAMP_HEADER = "X-Slawatch-Timestamp"
SIGNATURE_PREFIX = "sha256="

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Credentials",
    "Verdict",
    "credentials_from",
    "sign",
]


class Verdict(Enum):
    """What the credentials of one request come to."""

    ACCEPTED = "accepted"
    MISSING = "missing"  # 401: nothing shown
    REFUSED = "refused"  # 403: shown, not valid
    NEEDS_BODY = "needs_body"  # a signature to check once the body is read


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    why: str = ""


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Slawatch-Signature`` value of ``body`` (signed with ``timestamp`` if given)."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return SIGNATURE_PREFIX + hmac.new(secret, signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secrets of one server (None: not set) and the replay window."""

    token: bytes | None
    hmac_secret: bytes | None
    max_age_s: float

    def before_body(self, headers: Mapping[str, str]) -> Check:
        """What the headers alone decide: a valid token accepts; a signature waits for the
        body; a wrong token with no signature refuses; nothing shown is missing."""
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        has_token = scheme.lower() == "bearer"
        if (
            has_token
            and self.token is not None
            and hmac.compare_digest(value.strip().encode(), self.token)
        ):
            return Check(Verdict.ACCEPTED)
        if SIGNATURE_HEADER in headers:
            return Check(Verdict.NEEDS_BODY)
        if has_token:
            return Check(Verdict.REFUSED, "the bearer token is not valid")
        return Check(Verdict.MISSING, "no credential: send Authorization: Bearer or a signature")

    def with_body(self, headers: Mapping[str, str], body: bytes, now_s: float) -> Check:
        """Check the signature of ``body`` (after :meth:`before_body` said NEEDS_BODY)."""
        if self.hmac_secret is None:
            return Check(Verdict.REFUSED, "this server takes no signature")
        given = headers.get(SIGNATURE_HEADER, "").strip()
        if not given.lower().startswith(SIGNATURE_PREFIX):
            return Check(Verdict.REFUSED, f"{SIGNATURE_HEADER} must be sha256=<hex>")
        timestamp: int | None = None
        raw_timestamp = headers.get(TIMESTAMP_HEADER)
        if raw_timestamp is not None:
            digits = raw_timestamp.strip()
            if not (digits.isascii() and digits.isdigit() and len(digits) <= 12):
                return Check(Verdict.REFUSED, f"{TIMESTAMP_HEADER} must be whole unix seconds")
            timestamp = int(digits)
        expected = sign(self.hmac_secret, body, timestamp)
        given = SIGNATURE_PREFIX + given[len(SIGNATURE_PREFIX) :].lower()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Check(Verdict.REFUSED, "the signature does not match the body")
        if timestamp is not None and abs(int(now_s) - timestamp) > self.max_age_s:
            return Check(
                Verdict.REFUSED,
                f"{TIMESTAMP_HEADER} is {abs(int(now_s) - timestamp)}s from the server's clock; "
                f"at most {self.max_age_s:.0f}s is accepted",
            )
        return Check(Verdict.ACCEPTED)


def _secret(settings: Settings, name: str) -> bytes | None:
    value = str(getattr(settings, name))
    path = getattr(settings, name + "_file")
    if not path:
        return value.encode() if value else None
    try:
        return first_line(Path(path)).encode()
    except OSError as exc:
        raise SlawatchError(
            f"{ENV_PREFIX}{name.upper()}_FILE: cannot read {path}: {exc.strerror}"
        ) from None
    except ValueError as exc:
        raise SlawatchError(f"{ENV_PREFIX}{name.upper()}_FILE: {exc}") from None


def credentials_from(settings: Settings) -> Credentials:
    """The server's credentials, the files read now. Raises :class:`SlawatchError` naming
    the setting for a file gone since the settings were checked, or no credential at all."""
    credentials = Credentials(
        token=_secret(settings, "http_ingest_token"),
        hmac_secret=_secret(settings, "http_ingest_hmac_secret"),
        max_age_s=settings.http_ingest_signature_max_age_s,
    )
    if credentials.token is None and credentials.hmac_secret is None:
        raise SlawatchError(
            "HTTP ingest needs a credential: set SLAWATCH_HTTP_INGEST_TOKEN or "
            "SLAWATCH_HTTP_INGEST_HMAC_SECRET (or their _FILE)"
        )
    return credentials
