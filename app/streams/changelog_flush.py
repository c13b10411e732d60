"""Waiting until Faust's producer buffer has handed everything put into it to the Kafka client.

Table writes reach Kafka through Faust's `ProducerBuffer`: a queue and one sender task that takes a message, hands it
to the Kafka client (which may wait for room in its accumulator) and takes the next. The queue is empty as soon as
the sender has *taken* the last message, before it has handed it over, so waiting for an empty queue (what Faust's
own `flush()` does) can end with one message still outside the client, and the client's flush then misses it: a
batch acknowledged with one of its table changes not yet produced.

So `handed_over` puts a marker behind what is queued and waits until the sender reaches it: the sender is one task
taking the queue in order, so everything put before the marker has been handed over by then.
"""

from __future__ import annotations

import asyncio
from typing import Any

# How often a wait looks at the buffer's state: a buffer that stops (a worker stopping) never reaches the marker.
STATE_CHECK_S = 0.1


class _Marker:
    """Looks like the `FutureMessage` the sender takes (`fut.message.channel.publish_message(fut, wait=False)`), and
    is its own message and channel: publishing it produces nothing and only says the sender got this far."""

    def __init__(self) -> None:
        self.message = self
        self.channel = self
        self.reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        if not self.reached.done():
            self.reached.set_result(None)


class BufferStopped(RuntimeError):
    """The buffer stopped with messages not handed over: they never will be, so what they belong to is unfinished."""


async def handed_over(buffer: Any) -> None:
    """Return once the sender of `buffer` (Faust's `ProducerBuffer`, not threaded) has handed every message put
    before this call to the Kafka client; raise BufferStopped if the buffer stops first with any still queued."""
    if buffer.state != "running":
        if buffer.size:
            raise BufferStopped(f"the producer's buffer is {buffer.state} with {buffer.size} messages not sent")
        # A stopping buffer's sender may be handing over the last message it took: nothing tells when it is done,
        # but Faust stops the buffer only after the agents, so no batch of theirs is waiting on it.
        return
    marker = _Marker()
    buffer.put(marker)
    # A timeout per batch rather than per message: the loop turns only while a batch's hand-over takes longer.
    while not marker.reached.done():
        await asyncio.wait({marker.reached}, timeout=STATE_CHECK_S)
        if not marker.reached.done() and buffer.state != "running":
            raise BufferStopped(f"the producer's buffer is {buffer.state} before sending a batch's messages")
