"""PagerDuty Events API v2: one event per ``POST`` (to the receiver's ``url``, or
PagerDuty's ``https://events.pagerduty.com/v2/enqueue``).

PagerDuty answers 202 to an event it queued, 400 to an invalid one (its ``message`` and
``errors`` go in the detail: an unknown routing key is said so, the key itself never
shows), 429 when the routing key sends too fast, 5xx when it cannot take events now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slawatch.alerting.channels import pagerduty
from slawatch.alerting.channels.common import text_field
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders.base import Outcome
from slawatch.alerting.senders.detail import shown_url
from slawatch.alerting.senders.http import HttpSender, json_body


def explain(body: bytes) -> str:
    """``Event object is invalid: Length of 'routing_key' is incorrect`` from PagerDuty's
    JSON answer; ValueError when it is not one."""
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    message = doc.get("message")
    errors = doc.get("errors")
    parts = [str(message)] if message else []
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors))
    if not parts:
        raise ValueError("no message")
    return ": ".join(parts)


class PagerDutySender(HttpSender):
    """One event per notification; several at once make one digest trigger
    (:func:`~slawatch.alerting.channels.pagerduty.digest_event`)."""

    batch_size = 1
    digests = True

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        super().__init__(receiver, link_template=link_template)
        self.url = text_field(receiver, "url") or pagerduty.DEFAULT_URL

    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        if not notes:
            raise ValueError("no notification for a PagerDuty event")
        if len(notes) == 1:
            body = pagerduty.event(
                notes[0], self.receiver, now_ms, link_template=self.link_template
            )
        else:
            body = pagerduty.digest_event(
                notes, self.receiver, now_ms, link_template=self.link_template
            )
        return await self._send(body)

    async def resolve(self, key: str) -> Outcome:
        """Resolve the incident ``key`` (a digest's)."""
        return await self._send(pagerduty.resolve_event(self.receiver, key))

    async def _send(self, body: dict[str, Any]) -> Outcome:
        headers = {"Content-Type": "application/json"}
        return await self._post(
            self.url, json_body(body), headers, shown_url=shown_url(self.url), explain=explain
        )
