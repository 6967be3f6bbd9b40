"""What a sender is: one receiver's way of delivering notifications, and what came of it.

The notifier (slawatch/alerting/notifier.py) owns retries, backoff, rate limits, the
notification log and dead letters; a sender makes one attempt and says how it went:

- ``delivered``: the receiver accepted it (HTTP 2xx, SMTP 250);
- ``retry``: worth trying again (timeout, connection refused, HTTP 408, 429, 5xx, SMTP
  4xx), with the receiver's ``Retry-After`` when it gave one;
- ``failed``: trying again will not help (HTTP 4xx other than 408/429, a refused
  address, an unknown routing key): the notifier dead-letters it at once.

``detail`` is one line for logs, metrics and dead letters. It never holds a secret: a
Slack webhook URL, a routing key or an SMTP password is replaced by its name, and a
response body is cut to a few hundred characters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver

OutcomeStatus = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: OutcomeStatus
    detail: str = ""
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"


DELIVERED = Outcome("delivered")


class Sender(ABC):
    """Delivers to one receiver. ``batch_size``: how many notifications one
    :meth:`send` may carry as separate items (Alertmanager takes a list of alerts);
    ``digests``: whether :meth:`send` of several notifications makes one digest message
    (Slack, e-mail) when the receiver's rate limit is reached."""

    batch_size: int = 1
    digests: bool = False

    def __init__(self, receiver: Receiver, *, link_template: str | None = None) -> None:
        self.receiver = receiver
        self.link_template = link_template

    @abstractmethod
    async def send(self, notes: Sequence[Notification], now_ms: int) -> Outcome:
        """One attempt to deliver ``notes`` (1 to ``batch_size`` items, or any number as
        a digest when :attr:`digests`); all or nothing."""

    async def close(self) -> None:  # noqa: B027 - most senders hold nothing
        """Release connections."""
