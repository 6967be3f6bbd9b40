"""Alertmanager: up to 100 notifications in one ``POST /api/v2/alerts``.

The receiver's ``url`` is Alertmanager's base URL (``http://alertmanager:9093``, or
with its route prefix); ``/api/v2/alerts`` is added unless the URL already ends with
it. The body is the alerts of every notification, in order
(:func:`slawatch.alerting.channels.alertmanager.alerts`; identity labels when the
receiver says ``identity_labels: true``); when that is no alert at all (only resolves of
alerts that never started), nothing is posted. Alertmanager answers 200, or 400 to a body
it cannot read.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from slawatch.alerting.channels import alertmanager
from slawatch.alerting.channels.common import text_field
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.base import Outcome
from slawatch.alerting.senders.detail import shown_url
from slawatch.alerting.senders.http import HttpSender, json_body

API_PATH = "/api/v2/alerts"


def alerts_url(base: str) -> str:
    """``base`` with ``/api/v2/alerts`` added (once: a URL that ends with it is kept)."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if not path.endswith(API_PATH):
        path += API_PATH
    return urlunsplit(parts._replace(path=path))


class AlertmanagerSender(HttpSender):
    batch_size = 100

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        super().__init__(receiver, link_template=link_template)
        base = text_field(receiver, "url")
        if base is None:
            raise ValueError(f"receiver {receiver.name!r} has no url")
        self.url = alerts_url(base)
        self.identity_labels = text_field(receiver, "identity_labels") == "true"

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        if not 1 <= len(notes) <= self.batch_size:
            raise ValueError(f"{len(notes)} notifications for one send (1 to {self.batch_size})")
        body = [
            alert
            for note in notes
            for alert in alertmanager.alerts(
                note,
                self.receiver,
                now_ms,
                link_template=self.link_template,
                identity_labels=self.identity_labels,
            )
        ]
        if not body:  # resolves of alerts that never started (a cycle met before at risk)
            return Outcome("delivered", f"no alert to send to {self.who}")
        headers = {"Content-Type": "application/json"}
        return await self._post(self.url, json_body(body), headers, shown_url=shown_url(self.url))
