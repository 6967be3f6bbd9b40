"""The framework-free domain core of slawatch.

Everything here imports only the standard library and msgspec (the input events are
msgspec Structs): no Faust, Kafka, Redis or I/O.
Anything time-dependent takes the time (or a :class:`~slawatch.core.clock.Clock`) as an
argument, so tests drive it with a manual clock instead of sleeping.
"""

from slawatch.core.clock import Clock, ManualClock, SystemClock
from slawatch.core.keys import ConversationKind, conversation_key
from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms

__all__ = [
    "Clock",
    "ConversationKind",
    "InvalidTimestamp",
    "ManualClock",
    "SystemClock",
    "conversation_key",
    "parse_timestamp_ms",
]
