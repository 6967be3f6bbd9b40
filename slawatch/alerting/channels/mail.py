"""E-mail: an :class:`email.message.EmailMessage` ready for SMTP.

From and To come from the receiver; the Subject says what happened to which
conversation; the Message-ID is stable (from the notification id: a message sent twice
is one message to a mail client), and every message of a cycle to a receiver refers to
one thread id, so a client groups the trigger, repeats and resolve. A plain-text part
and an HTML part; every value in the HTML is escaped. The SMTP password is not used
here (the sender logs in with it).

When more messages would go to a mailbox than its rate limit allows, :func:`digest`
makes one of many: a count by what happened in the Subject, then a line (a table row in
the HTML) per notification with its link; its Message-ID is stable for the set of
notification ids.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from slawatch.alerting.channels.common import (
    facts,
    link,
    short_hash,
    subject_of,
    text_field,
    timing,
)
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver

#: The most notifications a digest lists (the rest are counted in a last line).
MAX_DIGEST_ROWS = 500


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] or "slawatch.invalid"


def message_id(note_id: str, domain: str) -> str:
    """``<hash@domain>``: stable for a notification id."""
    return f"<{short_hash(note_id)[:40]}@{domain}>"


def _addresses(receiver: Receiver) -> tuple[str, tuple[str, ...]]:
    if receiver.type != "email":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")
    sender = text_field(receiver, "from")
    to = receiver.fields.get("to")
    if sender is None or not isinstance(to, tuple) or not to:
        raise ValueError(f"receiver {receiver.name!r} needs from and to")
    return sender, to


def email(
    note: Notification, receiver: Receiver, now_ms: int, *, link_template: str | None = None
) -> EmailMessage:
    """The message for ``note`` to ``receiver`` (an email receiver)."""
    sender, to = _addresses(receiver)
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


def digest(
    notes: Sequence[Notification],
    receiver: Receiver,
    now_ms: int,
    *,
    link_template: str | None = None,
) -> EmailMessage:
    """One message for many notifications to ``receiver`` (an email receiver), in order:
    ``[slawatch] 37 SLA notifications: 30 breached, 7 at risk``, then a line each."""
    sender, to = _addresses(receiver)
    if not notes:
        raise ValueError("a digest of no notifications")
    domain = _domain(sender)
    counts = Counter(subject_of(n).split(":", 1)[0].lower() for n in notes)
    summary = ", ".join(f"{n} {word}" for word, n in counts.most_common())
    title = f"{len(notes)} SLA notifications: {summary}"
    shown = notes[:MAX_DIGEST_ROWS]
    more = len(notes) - len(shown)

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"[slawatch] {title}"
    msg["Message-ID"] = message_id("digest\n" + "\n".join(sorted(n.id for n in notes)), domain)
    msg["Date"] = format_datetime(datetime.fromtimestamp(now_ms / 1000, tz=UTC))
    msg["X-Slawatch-Notification"] = "digest"

    e = html.escape
    text = [title, ""]
    rows = []
    for note in shown:
        r = note.record
        url = link(link_template, r)
        late = timing(r, now_ms)
        who = r.assignee or "nobody"
        subject = subject_of(note)
        text.append(f"- {subject}, {late}, {who}" + (f": {url}" if url else ""))
        name = e(f"{r.conversation_kind} {r.conversation_id}")
        if url:
            name = f'<a href="{e(url)}">{name}</a>'
        rows.append(
            f"<tr><td>{e(subject.split(':', 1)[0])}</td><td>{name}</td>"
            f"<td>{e(r.metric.replace('_', ' '))}</td><td>{e(r.level)}</td>"
            f"<td>{e(late)}</td><td>{e(who)}</td></tr>"
        )
    if more:
        text.append(f"... and {more} more")
    text += ["", f"-- slawatch, a digest of {len(notes)} notifications"]
    msg.set_content("\n".join(text) + "\n")

    head = "".join(
        f'<th align="left">{label}</th>'
        for label in ("What", "Conversation", "Metric", "Level", "How late", "Assignee")
    )
    tail = f"<p>... and {more} more</p>\n" if more else ""
    page = (
        f"<!DOCTYPE html>\n<html><body>\n<h2>{e(title)}</h2>\n<table>\n"
        f"<tr>{head}</tr>\n" + "\n".join(rows) + f"\n</table>\n{tail}"
        f"<p><small>slawatch, a digest of {len(notes)} notifications</small></p>\n"
        "</body></html>\n"
    )
    msg.add_alternative(page, subtype="html")
    return msg
