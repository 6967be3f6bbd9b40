"""Generic webhooks: one signed request per notification.

:func:`slawatch.alerting.channels.webhook.request` gives the exact body bytes and the
headers (timestamp, signature, ``Idempotency-Key``); they are posted unchanged to the
receiver's ``url``, signed at the wall clock's time (not the notifier's ``now_ms``: the
receiver checks the timestamp against its own clock). The secret signs and never leaves
the process. Any 2xx is delivered; a receiver that already has the notification (a retry
after a lost answer) should tell by the ``Idempotency-Key`` and answer 2xx again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from slawatch.alerting.channels import webhook
from slawatch.alerting.channels.common import text_field
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.base import Outcome
from slawatch.alerting.senders.detail import shown_url
from slawatch.alerting.senders.http import HttpSender


class WebhookSender(HttpSender):
    batch_size = 1

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        super().__init__(receiver, link_template=link_template)
        url = text_field(receiver, "url")
        if url is None:
            raise ValueError(f"receiver {receiver.name!r} has no url")
        self.url = url

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        if len(notes) != 1:
            raise ValueError(f"{len(notes)} notifications for one webhook request")
        # Signed at the wall clock's time, whatever clock the notifier plans on: the
        # receiver checks the timestamp against its own clock.
        sent_ms = time.time_ns() // 1_000_000
        req = webhook.request(notes[0], self.receiver, sent_ms, link_template=self.link_template)
        return await self._post(self.url, req.body, req.headers, shown_url=shown_url(self.url))
