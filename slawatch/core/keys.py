"""Conversation identity: what one SLA state record is kept for."""

from __future__ import annotations

from enum import StrEnum


class ConversationKind(StrEnum):
    """The three kinds of conversation slawatch watches."""

    TICKET = "ticket"
    CHAT = "chat"
    CALL = "call"


def conversation_key(kind: ConversationKind, conversation_id: str, tenant: str | None) -> str:
    """Return the key that partitions and identifies one conversation's state.

    A ticket, a chat and a call may share an id in the source systems, and so may two
    tenants; the key keeps them apart. Tenants cannot contain ``:`` (the contract forbids
    it), and the id comes last, so the key is unambiguous whatever the id holds.
    """
    return f"{kind.value}:{tenant or ''}:{conversation_id}"
