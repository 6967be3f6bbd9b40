"""Slack-compatible incoming webhooks: the JSON body, one notification or a digest.

A message has ``text`` (the fallback notifications and old clients show) and ``blocks``:
what happened, which ticket/chat/call, how late, who is assigned, the level and a link.
When more than about one message a second would go to one channel (Slack's limit for
incoming webhooks), :func:`digest` makes one message of many. Text from the record is
escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so it cannot form a link or a mention.
The webhook URL (a secret) is where the sender posts; it is never in the body.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from slawatch.alerting.channels.common import clip, facts, link, subject_of, text_field, timing
from slawatch.alerting.escalation import Notification
from slawatch.alerting.receivers import Receiver

#: Slack's limits: characters in a section's text, blocks in a message.
MAX_SECTION = 3000
MAX_BLOCKS = 50
#: A digest is suggested above this many messages a second to one channel.
MAX_PER_SECOND = 1
_EMOJI = {
    "trigger": ":rotating_light:",
    "repeat": ":rotating_light:",
    "resolve": ":white_check_mark:",
    "notice": ":information_source:",
}


def escape(text: str) -> str:
    """``text`` safe in mrkdwn: no link, mention or formatting can be made from it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _emoji(note: Notification) -> str:
    if note.kind == "trigger" and note.record.kind == "at_risk":
        return ":warning:"
    return _EMOJI[note.kind]


def _check(receiver: Receiver) -> None:
    if receiver.type != "slack":
        raise ValueError(f"receiver {receiver.name!r} is a {receiver.type} receiver")


def _base(receiver: Receiver, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, "blocks": blocks}
    channel = text_field(receiver, "channel")
    if channel:
        body["channel"] = channel
    return body


def message(
    note: Notification, receiver: Receiver, now_ms: int, *, link_template: str | None = None
) -> dict[str, Any]:
    """The webhook body for one notification."""
    _check(receiver)
    r = note.record
    url = link(link_template, r)
    subject = subject_of(note)
    text = escape(f"{subject}, {timing(r, now_ms)}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": clip(f"{_emoji(note)} *{escape(subject)}*", MAX_SECTION),
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(f"*{escape(label)}*\n{escape(value)}", 2000)}
                for label, value in facts(note, now_ms)[1:10]  # Slack takes 10 fields
            ],
        },
    ]
    if url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {
                            "type": "plain_text",
                            "text": clip(f"Open {r.conversation_kind}", 75),
                        },
                        "url": url,
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": escape(f"slawatch · {note.id}")[:MAX_SECTION]}],
        }
    )
    return _base(receiver, text, blocks)


def _line(note: Notification, now_ms: int, link_template: str | None) -> str:
    r = note.record
    name = escape(f"{r.conversation_kind} {r.conversation_id}")
    url = link(link_template, r)
    if url:
        name = f"<{url}|{name}>"
    who = escape(r.assignee or "nobody")
    return (
        f"{_emoji(note)} {name}: {escape(r.metric.replace('_', ' '))} "
        f"{escape(subject_of(note).split(':', 1)[0].lower())}, {escape(timing(r, now_ms))}, "
        f"{who}, level {escape(r.level)}"
    )


def digest(
    notes: Sequence[Notification],
    receiver: Receiver,
    now_ms: int,
    *,
    link_template: str | None = None,
) -> dict[str, Any]:
    """One message for many notifications to one channel: a count by what happened,
    then a line each, in order (sections filled up to Slack's limits; what does not fit
    is counted in a last line)."""
    _check(receiver)
    if not notes:
        raise ValueError("a digest of no notifications")
    counts = Counter(subject_of(n).split(":", 1)[0].lower() for n in notes)
    summary = ", ".join(f"{n} {word}" for word, n in counts.most_common())
    text = f"{len(notes)} SLA notifications: {summary}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(text)}*"}}
    ]
    lines: list[str] = []
    shown = 0

    def flush() -> None:
        if lines:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
            lines.clear()

    for note in notes:
        line = clip(_line(note, now_ms, link_template), MAX_SECTION)
        if sum(len(x) + 1 for x in lines) + len(line) > MAX_SECTION:
            flush()
        if len(blocks) >= MAX_BLOCKS - 1:  # one block left for the "more" line
            break
        lines.append(line)
        shown += 1
    flush()
    if shown < len(notes):
        more = f"… and {len(notes) - shown} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return _base(receiver, escape(text), blocks)
