"""One HTTP POST and what came of it, for the Alertmanager, PagerDuty, Slack and webhook
senders.

:func:`post` makes one request (no retry, no redirect followed: a ``POST`` redirected
would become a ``GET``) within the receiver's timeout and classifies the answer:

- 2xx: ``delivered``;
- 408, 425, 429, 5xx: ``retry``, with ``Retry-After`` (seconds or an HTTP date) as
  ``retry_after_s``, at most an hour;
- any other status: ``failed`` (the request is wrong; sending it again will not help);
- a timeout, a refused or reset connection, a name that does not resolve, a TLS
  failure: ``retry``.

The detail is one line: ``HTTP 503 from slack receiver 'team': <the body's first 200
characters>``, ``timeout after 10s posting to webhook receiver 'hook' (https://...)``,
``connection refused (ECONNREFUSED) by ...``. It is written from the status, the body
and the exception's type and errno, never from aiohttp's exception messages (they hold
the URL, and a Slack webhook URL is a secret: it shows as ``the webhook URL
(env:VAR)``); every secret of the receiver is redacted from the body quoted.

:class:`HttpSender` is the base of the HTTP senders: one ``aiohttp`` session each,
opened at the first send and closed by :meth:`~HttpSender.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.base import Outcome, Sender
from slawatch.alerting.senders.detail import (
    Redactions,
    os_error,
    quote,
    redactions,
    seconds,
    who,
)

#: The longest ``Retry-After`` honoured.
MAX_RETRY_AFTER_S = 3600.0
#: Statuses worth another attempt besides 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})
#: The most of a response body read (a detail quotes its start).
MAX_BODY = 64 * 1024
USER_AGENT = "slawatch"

#: Turns a response body into the text a detail quotes (PagerDuty's ``message`` and
#: ``errors``); the raw body when None.
Explain = Callable[[bytes], str]


def json_body(doc: Any) -> bytes:
    """The UTF-8 JSON of ``doc``, compact."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), between
    0 and :data:`MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        wait = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when.timestamp() - (time.time() if now_s is None else now_s)
    if not math.isfinite(wait):
        return None
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S)


def classify(
    status: int,
    body: bytes,
    retry_after_header: str | None,
    *,
    who: str,
    hidden: Redactions = (),
    explain: Explain | None = None,
) -> Outcome:
    """The outcome of an HTTP answer (see the module's table)."""
    head = f"HTTP {status} from {who}"
    if 200 <= status < 300:
        return Outcome("delivered", head)
    if 300 <= status < 400:
        return Outcome("failed", f"{head}: a redirect (not followed: give the final URL)")
    text = ""
    if body:
        raw = body.decode("utf-8", errors="replace")
        if explain is not None:
            try:
                text = explain(body)
            except ValueError:
                text = raw
        else:
            text = raw
    said = quote(text, hidden)
    detail = f"{head}: {said}" if said else head
    if status in RETRY_STATUSES or 500 <= status < 600:
        return Outcome("retry", detail, retry_after(retry_after_header))
    return Outcome("failed", detail)


async def _read(response: aiohttp.ClientResponse, into: bytearray, limit: int) -> None:
    """The body into ``into``, up to ``limit`` bytes (what came survives a timeout)."""
    while len(into) < limit:
        chunk = await response.content.read(limit - len(into))
        if not chunk:
            return
        into += chunk


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    who: str,
    shown_url: str,
    hidden: Redactions = (),
    explain: Explain | None = None,
) -> Outcome:
    """One ``POST`` of ``data`` to ``url`` within ``timeout_s`` (connect, send, answer and
    body), classified. ``who`` (``slack receiver 'team'``) and ``shown_url`` (never a
    secret) name the receiver in the detail; ``hidden`` is redacted from any body quoted.
    Raises only on a bug (and on cancellation)."""
    where = f"{who} ({shown_url})"
    status: int | None = None
    header: str | None = None
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(
                url,
                data=data,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                status = response.status
                header = response.headers.get("Retry-After")
                # The status says what happened; the body is only quoted.
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    await _read(response, body, MAX_BODY)
    except TimeoutError:  # asyncio's, and aiohttp's Server/Connection/SocketTimeoutError
        if status is None:  # else the answer came, and only its body was slow
            return Outcome("retry", f"timeout after {seconds(timeout_s)} posting to {where}")
    except aiohttp.ClientConnectorError as exc:  # refused, unresolved, TLS, ...
        return Outcome("retry", f"{os_error(exc)} connecting to {where}")
    except aiohttp.ServerDisconnectedError:
        return Outcome("retry", f"the server closed the connection: {where}")
    except aiohttp.InvalidURL:
        return Outcome("failed", f"not a URL aiohttp can post to: {where}")
    except OSError as exc:  # aiohttp's ClientOSError, a reset connection
        return Outcome("retry", f"{os_error(exc)} posting to {where}")
    except aiohttp.ClientError as exc:  # a malformed answer, a fingerprint mismatch, ...
        return Outcome("retry", f"{type(exc).__name__} posting to {where}")
    assert status is not None
    return classify(status, bytes(body), header, who=who, hidden=hidden, explain=explain)


class HttpSender(Sender):
    """A sender that posts: one ``aiohttp`` session, opened at the first send."""

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        super().__init__(receiver, link_template=link_template)
        self._session: aiohttp.ClientSession | None = None
        self._hidden = redactions(receiver)

    @property
    def who(self) -> str:
        return who(self.receiver)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return self._session

    async def _post(
        self,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        *,
        shown_url: str,
        explain: Explain | None = None,
    ) -> Outcome:
        return await post(
            self._client(),
            url,
            data=data,
            headers=headers,
            timeout_s=self.receiver.delivery.timeout_s,
            who=self.who,
            shown_url=shown_url,
            hidden=self._hidden,
            explain=explain,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
