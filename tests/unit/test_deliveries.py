"""A send the broker never acknowledged stops the next commit (streams/deliveries.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError

from slawatch.streams.deliveries import Deliveries, DeliveryFailed


class Producer:
    """What the guard wraps: a producer whose flush waits for the sends."""

    def __init__(self) -> None:
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1


async def _flush_after(outcome: str) -> Producer:
    deliveries = Deliveries()
    producer = Producer()
    deliveries.guard(producer)
    loop = asyncio.get_running_loop()
    acknowledged, other = loop.create_future(), loop.create_future()
    deliveries.watch(acknowledged, "a record of sla-state-changelog[0]")
    deliveries.watch(other, "a record of sla-state-changelog[1]")
    acknowledged.set_result(None)
    if outcome == "refused":
        other.set_exception(KafkaTimeoutError())
    elif outcome == "cancelled":
        other.cancel()
    else:
        other.set_result(None)
    await asyncio.sleep(0)  # the futures' callbacks run
    await producer.flush()
    return producer


def test_a_flush_after_acknowledged_sends_passes() -> None:
    assert asyncio.run(_flush_after("acknowledged")).flushes == 1


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("refused", "the broker did not acknowledge a record of sla-state-changelog[1]: "
                    "KafkaTimeoutError"),
        ("cancelled", "the send of a record of sla-state-changelog[1] was cancelled"),
    ],
)  # fmt: skip
def test_a_flush_after_a_failed_send_raises_after_waiting(outcome: str, message: str) -> None:
    with pytest.raises(DeliveryFailed, match=message.replace("[", r"\[").replace("]", r"\]")):
        asyncio.run(_flush_after(outcome))


def test_every_later_flush_raises_too() -> None:
    async def run() -> None:
        deliveries = Deliveries()
        producer = Producer()
        deliveries.guard(producer)
        failed = asyncio.get_running_loop().create_future()
        deliveries.watch(failed, "SLA event e-1")
        failed.set_exception(KafkaTimeoutError())
        await asyncio.sleep(0)
        for _ in range(2):
            with pytest.raises(DeliveryFailed, match="SLA event e-1"):
                await producer.flush()
        assert producer.flushes == 2  # it waited each time before refusing

    asyncio.run(run())
