"""Slack-compatible incoming webhooks: one message, or one digest of several.

The body is :func:`slawatch.alerting.channels.slack.message` for one notification and
:func:`~slawatch.alerting.channels.slack.digest` for several (when the channel's rate
limit is reached). It is posted to the receiver's ``webhook_url``, a secret: the URL
holds the token, so a detail names it ``the webhook URL (env:VAR)`` and any part of it a
server echoes is redacted. Slack answers 200 ``ok``; 429 with ``Retry-After``; 400, 403,
404 or 410 with a reason (``invalid_payload``, ``no_service``, ``channel_not_found``,
``channel_is_archived``), which the detail quotes.
"""

from __future__ import annotations

from collections.abc import Sequence

from slawatch.alerting.channels import slack
from slawatch.alerting.channels.common import secret_field
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver, Secret
from slawatch.alerting.senders.base import Outcome
from slawatch.alerting.senders.http import HttpSender, json_body


class SlackSender(HttpSender):
    digests = True

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        super().__init__(receiver, link_template=link_template)
        webhook = secret_field(receiver, "webhook_url")
        if webhook is None:
            raise ValueError(f"receiver {receiver.name!r} has no webhook_url")
        self._webhook: Secret = webhook
        self.shown_url = f"the webhook URL ({webhook.source})"

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        if not notes:
            raise ValueError("no notifications to send")
        if len(notes) == 1:
            body = slack.message(notes[0], self.receiver, now_ms, link_template=self.link_template)
        else:
            body = slack.digest(notes, self.receiver, now_ms, link_template=self.link_template)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        return await self._post(
            self._webhook.reveal(), json_body(body), headers, shown_url=self.shown_url
        )
