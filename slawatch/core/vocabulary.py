"""The closed vocabularies of the input events, each defined once, here.

Each is a ``Literal`` type (what the event fields are typed with) and the tuple of its
values in their published order (what the contracts list as a JSON Schema ``enum``, the
policy file checks statuses against, and the built-in policy makes one level per
priority of).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Channel = Literal["email", "web", "chat", "phone", "social", "api"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
AgentStatus = Literal["online", "away", "busy", "offline"]
#: Who opened a ticket, who wrote a chat message.
Party = Literal["customer", "agent"]
#: public: the customer sees the message (it stops reply timers); internal: a note.
Visibility = Literal["public", "internal"]
ChatEndedBy = Literal["customer", "agent", "system"]
CallEndedBy = Literal["caller", "agent", "system"]

CHANNELS: Final[tuple[Channel, ...]] = get_args(Channel)
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
AGENT_STATUSES: Final[tuple[AgentStatus, ...]] = get_args(AgentStatus)
PARTIES: Final[tuple[Party, ...]] = get_args(Party)
VISIBILITIES: Final[tuple[Visibility, ...]] = get_args(Visibility)
CHAT_ENDED_BY: Final[tuple[ChatEndedBy, ...]] = get_args(ChatEndedBy)
CALL_ENDED_BY: Final[tuple[CallEndedBy, ...]] = get_args(CallEndedBy)
