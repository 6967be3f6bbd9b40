"""Senders: how each receiver type delivers, one attempt at a time.

:func:`sender_for` makes the sender of a receiver: ``alertmanager`` (batches of up to
100 alerts in one request), ``pagerduty`` (an event per request), ``slack`` (a message,
or a digest of several), ``webhook`` (a signed request per notification) and ``email``
(a message, or a digest, over SMTP). Each :meth:`~Sender.send` makes one attempt and
returns an :class:`Outcome`; retries, backoff, rate limits and dead letters are the
notifier's (slawatch/alerting/notifier.py).
"""

from __future__ import annotations

from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.alertmanager import AlertmanagerSender
from slawatch.alerting.senders.base import DELIVERED, Outcome, OutcomeStatus, Sender
from slawatch.alerting.senders.email import EmailSender
from slawatch.alerting.senders.pagerduty import PagerDutySender
from slawatch.alerting.senders.slack import SlackSender
from slawatch.alerting.senders.webhook import WebhookSender

__all__ = [
    "DELIVERED",
    "SENDERS",
    "AlertmanagerSender",
    "EmailSender",
    "Outcome",
    "OutcomeStatus",
    "PagerDutySender",
    "Sender",
    "SlackSender",
    "WebhookSender",
    "sender_for",
]

#: The sender class of each receiver type.
SENDERS: dict[str, type[Sender]] = {
    "alertmanager": AlertmanagerSender,
    "pagerduty": PagerDutySender,
    "slack": SlackSender,
    "webhook": WebhookSender,
    "email": EmailSender,
}


def sender_for(receiver: Receiver, *, link_template: str | None = None) -> Sender:
    """A new sender for ``receiver`` (nothing is opened until it sends)."""
    cls = SENDERS.get(receiver.type)
    if cls is None:
        raise ValueError(f"no sender for a {receiver.type} receiver ({receiver.name!r})")
    return cls(receiver, link_template=link_template)
