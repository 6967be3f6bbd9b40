"""E-mail over SMTP: one message, or one digest of several, per connection.

The message is :func:`slawatch.alerting.channels.mail.email` for one notification and
:func:`~slawatch.alerting.channels.mail.digest` for several (when the mailbox's rate
limit is reached), sent with ``aiosmtplib`` to the receiver's ``smtp`` (``host:port``):

- ``tls: auto`` (the default): implicit TLS on port 465, otherwise STARTTLS when the
  server offers it; ``starttls``: STARTTLS, required; ``implicit``: TLS from the first
  byte; ``none``: plain text (a relay on the same host or network);
- with ``password``, it logs in as ``username``, or as the ``from`` address when no
  ``username`` is given (what most providers expect);
- the whole attempt (connect, TLS, login, the message) within the receiver's timeout.

Classification: the server's 4xx (greylisting, a full mailbox, ``421`` closing), a
timeout, a refused or lost connection: ``retry``; its 5xx (a refused sender, recipient or
login; a message refused): ``failed``, as is a server that lacks what the receiver
asks for (STARTTLS, AUTH). Accepted for some recipients and refused for others: the
message is delivered (sending it again would repeat it to those who have it) and the
detail names the refusals. The detail quotes the server's own words, never the password.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import aiosmtplib

from slawatch.alerting.channels import mail
from slawatch.alerting.channels.common import secret_field, text_field
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.base import Outcome, OutcomeStatus, Sender
from slawatch.alerting.senders.detail import os_error, quote, redactions, seconds, who

IMPLICIT_TLS_PORT = 465
TLS_MODES = ("auto", "starttls", "implicit", "none")


def tls_options(mode: str, port: int) -> tuple[bool, bool | None]:
    """``(use_tls, start_tls)`` for ``aiosmtplib`` from the receiver's ``tls`` mode."""
    if mode == "implicit" or (mode == "auto" and port == IMPLICIT_TLS_PORT):
        return True, False
    if mode == "starttls":
        return False, True
    if mode == "none":
        return False, False
    if mode == "auto":
        return False, None  # STARTTLS if the server offers it
    raise ValueError(f"unknown tls mode {mode!r}; modes: {', '.join(TLS_MODES)}")


def _status(code: int) -> OutcomeStatus:
    """A 4xx is temporary, anything else final (RFC 5321)."""
    return "retry" if 400 <= code < 500 else "failed"


class EmailSender(Sender):
    digests = True

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        super().__init__(receiver, link_template=link_template)
        smtp = text_field(receiver, "smtp")
        sender = text_field(receiver, "from")
        if smtp is None or sender is None:
            raise ValueError(f"receiver {receiver.name!r} needs smtp and from")
        host, port = smtp.rsplit(":", 1)
        self.host = host
        self.port = int(port)
        self.use_tls, self.start_tls = tls_options(text_field(receiver, "tls") or "auto", self.port)
        self._password = secret_field(receiver, "password")
        self.username = text_field(receiver, "username") or (
            sender if self._password is not None else None
        )
        self._hidden = redactions(receiver)
        self._local_hostname: str | None = None
        self.where = f"{who(receiver)} (smtp {smtp})"

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        if not notes:
            raise ValueError("no notifications to send")
        if len(notes) == 1:
            msg = mail.email(notes[0], self.receiver, now_ms, link_template=self.link_template)
        else:
            msg = mail.digest(notes, self.receiver, now_ms, link_template=self.link_template)
        timeout_s = self.receiver.delivery.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                if self._local_hostname is None:  # EHLO's name; a DNS lookup, once
                    self._local_hostname = await asyncio.to_thread(socket.getfqdn)
                refused, answer = await aiosmtplib.send(
                    msg,
                    hostname=self.host,
                    port=self.port,
                    username=self.username,
                    password=None if self._password is None else self._password.reveal(),
                    local_hostname=self._local_hostname,
                    timeout=timeout_s,
                    use_tls=self.use_tls,
                    start_tls=self.start_tls,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient
            codes = [r.code for r in exc.recipients]
            status: OutcomeStatus = "retry" if any(400 <= c < 500 for c in codes) else "failed"
            said = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            return Outcome(status, f"recipients refused by {self.where}: {self._quote(said)}")
        except aiosmtplib.SMTPAuthenticationError as exc:
            said = self._quote(f"{exc.code} {exc.message}")
            detail = f"login as {self.username!r} refused by {self.where}: {said}"
            return Outcome(_status(exc.code), detail)
        except aiosmtplib.SMTPSenderRefused as exc:
            said = self._quote(f"{exc.code} {exc.message}")
            detail = f"sender {exc.sender!r} refused by {self.where}: {said}"
            return Outcome(_status(exc.code), detail)
        except aiosmtplib.SMTPResponseException as exc:  # HELO, DATA, the greeting, ...
            said = self._quote(f"{exc.code} {exc.message}")
            return Outcome(_status(exc.code), f"SMTP {said} from {self.where}")
        except TimeoutError:  # asyncio's and aiosmtplib's
            return Outcome("retry", f"timeout after {seconds(timeout_s)} sending to {self.where}")
        except aiosmtplib.SMTPServerDisconnected:
            return Outcome("retry", f"the server closed the connection: {self.where}")
        except aiosmtplib.SMTPConnectError as exc:
            return Outcome("retry", f"{os_error(exc)} connecting to {self.where}")
        except aiosmtplib.SMTPException as exc:
            # aiosmtplib's own words: STARTTLS or AUTH not offered, SMTPUTF8 missing, ...
            return Outcome("failed", f"{self._quote(exc.message)}: {self.where}")
        except OSError as exc:  # TLS failures (ssl.SSLError), a reset connection
            return Outcome("retry", f"{os_error(exc)} talking to {self.where}")
        if refused:
            said = self._quote(
                "; ".join(f"{to}: {r.code} {r.message}" for to, r in refused.items())
            )
            return Outcome("delivered", f"accepted by {self.where} but refused for {said}")
        return Outcome("delivered", f"accepted by {self.where}: {self._quote(answer, 100)}")

    def _quote(self, text: str, limit: int = 200) -> str:
        return quote(text, self._hidden, limit)
