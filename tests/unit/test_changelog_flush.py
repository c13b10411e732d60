"""`handed_over` against Faust's real ProducerBuffer and its sender task, with a channel that records what it is
handed (no Kafka: what is tested is the buffer's queue and sender, not a store)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from app.streams.changelog_flush import BufferStopped, handed_over


class SlowChannel:
    """Hands each message over after a millisecond, as a Kafka client waiting for room in its accumulator does."""

    def __init__(self) -> None:
        self.handed: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.001)
        self.handed.append(fut.number)


async def started_buffer() -> ProducerBuffer:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    return buffer


def put(buffer: ProducerBuffer, channel: SlowChannel, count: int) -> None:
    for number in range(count):
        buffer.put(SimpleNamespace(number=number, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]


async def wait_for_empty_queue(buffer: Any) -> None:
    """What waiting on the queue's size did (Faust's flush, and this project's until the marker)."""
    while buffer.size:
        buffer.message_sent.clear()
        await buffer.message_sent.wait()


@pytest.mark.asyncio
async def test_an_empty_queue_is_not_everything_handed_over() -> None:
    # The gap itself: this is why waiting for the queue to empty is not enough.
    buffer = await started_buffer()
    channel = SlowChannel()
    put(buffer, channel, 5)
    await wait_for_empty_queue(buffer)
    assert channel.handed == [0, 1, 2, 3]
    await buffer.stop()


@pytest.mark.asyncio
async def test_handed_over_returns_after_the_last_message_is_handed_over() -> None:
    buffer = await started_buffer()
    channel = SlowChannel()
    put(buffer, channel, 5)
    await handed_over(buffer)
    assert channel.handed == [0, 1, 2, 3, 4]
    put(buffer, channel, 2)
    await handed_over(buffer)
    assert channel.handed == [0, 1, 2, 3, 4, 0, 1]
    await buffer.stop()


@pytest.mark.asyncio
async def test_handed_over_on_an_idle_buffer_returns_at_once() -> None:
    buffer = await started_buffer()
    await asyncio.wait_for(handed_over(buffer), timeout=1)
    await buffer.stop()


@pytest.mark.asyncio
async def test_a_buffer_stopping_before_the_marker_raises_instead_of_waiting_forever() -> None:
    buffer = await started_buffer()
    channel = SlowChannel()
    put(buffer, channel, 50)
    waiting = asyncio.ensure_future(handed_over(buffer))
    await asyncio.sleep(0.005)
    # What a stop does first (mode's Service.stop): the sender ends after the message it is handing over.
    buffer._stopped.set()
    with pytest.raises(BufferStopped):
        await asyncio.wait_for(waiting, timeout=2)
    assert len(channel.handed) < 50


@pytest.mark.asyncio
async def test_a_stopped_buffer_with_messages_queued_raises() -> None:
    buffer = await started_buffer()
    buffer._stopped.set()
    await asyncio.sleep(0.01)  # the sender, waiting on the queue, takes the next message and then ends
    channel = SlowChannel()
    put(buffer, channel, 3)
    await asyncio.sleep(0.01)
    with pytest.raises(BufferStopped):
        await handed_over(buffer)
