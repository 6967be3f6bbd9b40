"""E-mail: an :class:`email.message.EmailMessage` ready for SMTP.

From and To come from the receiver; the Subject says what happened to which
conversation; the Message-ID is stable (from the notification id: a message sent twice
is one message to a mail client), and every message of a cycle to a receiver refers to
one thread id, so a client groups the trigger, repeats and resolve. A plain-text part
and an HTML part; every value in the HTML is escaped. The SMTP password is not used
here (the sender logs in with it).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from slawatch.alerting.channels.common import facts, link, short_hash, subject_of, text_field
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] or "slawatch.invalid"


def message_id(note_id: str, domain: str) -> str:
    """``<hash@domain>``: stable for a notification id."""
    return f"<{short_hash(note_id)[:40]}@{domain}>"


def email(
    note: Notification, receiver: Receiver, now_ms: int, *, link_template: str | None = None
) -> EmailMessage:
    """The message for ``note`` to ``receiver`` (an email receiver)."""
    if receiver.type != "email":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")
    sender = text_field(receiver, "from")
    to = receiver.fields.get("to")
    if sender is None or not isinstance(to, tuple) or not to:
        raise ValueError(f"receiver {receiver.name!r} needs from and to")
    domain = _domain(sender)
    subject = subject_of(note)
    rows = facts(note, now_ms)
    url = link(link_template, note.record)

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"[slawatch] {subject}"
    msg["Message-ID"] = message_id(note.id, domain)
    thread = message_id(f"{note.cycle_id}|{note.receiver}", domain)
    msg["In-Reply-To"] = thread
    msg["References"] = thread
    msg["Date"] = format_datetime(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    msg["X-Slawatch-Notification"] = note.kind

    width = max(len(label) for label, _ in rows)
    text = [subject, ""]
    text += [f"{label + ':':<{width + 1}} {value}" for label, value in rows]
    if url:
        text += ["", f"Open: {url}"]
    text += ["", f"-- slawatch, notification {note.id}"]
    msg.set_content("\n".join(text) + "\n")

    e = html.escape
    cells = "\n".join(
        f'<tr><th align="left">{e(label)}</th><td>{e(value)}</td></tr>' for label, value in rows
    )
    opener = f'<p><a href="{e(url)}">Open {e(note.record.conversation_kind)}</a></p>' if url else ""
    page = (
        f"<!DOCTYPE html>\n<html><body>\n<h2>{e(subject)}</h2>\n<table>\n{cells}\n</table>\n"
        f"{opener}\n<p><small>slawatch, notification {e(note.id)}</small></p>\n</body></html>\n"
    )
    msg.add_alternative(page, subtype="html")
    return msg
