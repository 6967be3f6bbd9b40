"""How a sender words an :class:`~slawatch.alerting.senders.base.Outcome`'s ``detail``.

One line, cut short, and never a secret: every secret of the receiver (a routing key, a
webhook URL or secret, an SMTP password, the password in a URL's ``user:password@``) is
replaced by its name (``env:SLACK_WEBHOOK_URL``) wherever it shows, in a response body
or a server's message. The client libraries' exception messages are never used: they
name the URL (aiohttp) or the server, so each failure is described from its type and
``errno`` alone.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from slawatch.alerting.receivers import RECEIVER_TYPES, SECRET_URL, URL, Receiver, Secret

#: The longest response body (or server message) quoted in a detail.
MAX_QUOTE = 200
#: A path segment of a secret URL this long is redacted on its own (a token).
MIN_TOKEN = 16

Redactions = Sequence[tuple[str, str]]
"""(value, what shows instead) pairs, longest value first."""


def who(receiver: Receiver) -> str:
    """``slack receiver 'team'``."""
    return f"{receiver.type} receiver {receiver.name!r}"


def shown_url(url: str) -> str:
    """``url`` without the password of a ``user:password@`` (the rest may be shown)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "(an invalid URL)"


def redactions(receiver: Receiver) -> Redactions:
    """What to hide in any text about ``receiver``: each secret, by its name, and the
    path of a secret URL and its long segments (a server may echo them)."""
    specs = RECEIVER_TYPES.get(receiver.type, {})
    pairs: dict[str, str] = {}
    for name, value in receiver.fields.items():
        kind = specs[name].kind if name in specs else None
        if isinstance(value, Secret):
            secret = value.reveal()
            pairs[secret] = value.source
            if kind == SECRET_URL:
                _url_parts(secret, value.source, pairs)
        elif isinstance(value, str) and kind == URL:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                pairs[password] = "***"
    return sorted(((v, s) for v, s in pairs.items() if v), key=lambda p: -len(p[0]))


def _url_parts(url: str, source: str, pairs: dict[str, str]) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    tail = urlunsplit(("", "", parts.path, parts.query, ""))
    if len(tail) >= 8:
        pairs.setdefault(tail, f"({source})")
    for segment in parts.path.split("/"):
        if len(segment) >= MIN_TOKEN:
            pairs.setdefault(segment, f"({source})")
    if parts.password:
        pairs.setdefault(parts.password, "***")


def redact(text: str, hidden: Redactions) -> str:
    for value, shown in hidden:
        text = text.replace(value, shown)
    return text


def one_line(text: str, limit: int = MAX_QUOTE) -> str:
    """``text`` on one line (runs of white space and control characters made one space),
    cut to ``limit`` characters."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quote(text: str, hidden: Redactions, limit: int = MAX_QUOTE) -> str:
    """A body or a server's message as a detail may quote it: redacted, then cut."""
    return one_line(redact(text, hidden), limit)


def seconds(value: float) -> str:
    """``10s``, ``0.2s``."""
    return f"{value:g}s"


def os_error(exc: BaseException) -> str:
    """``connection refused (ECONNREFUSED)``, ``cannot resolve the host name``, ... from
    the type and errno of ``exc`` (or what it wraps), never its message."""
    inner: BaseException = exc
    for _ in range(4):  # aiohttp and aiosmtplib wrap the OSError
        wrapped = getattr(inner, "os_error", None) or inner.__cause__
        if not isinstance(wrapped, BaseException) or not isinstance(wrapped, OSError):
            break
        inner = wrapped
    if isinstance(inner, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(inner, ssl.SSLError):  # its errno is OpenSSL's, not the system's
        why = getattr(inner, "verify_message", None)
        return f"TLS failure ({type(inner).__name__}{': ' + one_line(why, 100) if why else ''})"
    code = getattr(inner, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        return f"{os.strerror(code).lower()} ({errno.errorcode[code]})"
    return f"network error ({type(inner).__name__})"
