"""Messages handed to Kafka's client a record batch at a time, not one by one.

aiokafka's `send` does, for every message: the topic's metadata looked up (a set of its partitions built), the
partitioner asked, the message appended to the partition's pending batch, a future made for it, and, when Kafka
answers, a `RecordMetadata` made and the future answered. Measured with aiokafka 0.14 against the local broker
(acks=all, idempotent, 300-byte messages, 12 partitions; docs/benchmarks.md, 2026-12-06, late night): 12-20 us of
the client's CPU per message that way, against 2-3 us when a partition's messages are appended to one record batch
and the batch is handed over whole (`create_batch` and `send_batch`, aiokafka's public batch API) with batches of up
to `producer_batch_bytes` (Kafka's 16 KiB default made it 8 us: a produce request per 16 KiB).

An `Outbox` gathers messages per topic partition in the order they are added; `send` hands each partition's run
to the producer as one batch (more when it outgrows a batch), in that order, and returns one `Delivery` per batch:
Kafka acknowledges a batch as a whole, its messages at consecutive offsets. Per topic partition the order of the
messages is the order they were added, across calls too: a batch is queued behind the partition's batches not yet
taken by the producer's sender (aiokafka's accumulator is one queue per partition), and the idempotent producer
keeps that order through retries. A batch the producer refuses (`send_batch` raised: its queue stayed full past
the request timeout, or it is closed) stays in the outbox with every message after it, ahead of anything added
later, and the error is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Message = tuple[bytes | None, bytes]  # key, value


@dataclass(frozen=True)
class Delivery:
    """A batch handed to the producer: `count` messages of `topic`'s `partition`; `acknowledged` is answered with
    Kafka's record metadata of the batch (its `offset` is the first message's)."""

    topic: str
    partition: int
    count: int
    acknowledged: asyncio.Future[Any]

    def offsets(self) -> range:
        """The offsets Kafka gave the batch's messages, in order (once it has acknowledged the batch)."""
        first: int = self.acknowledged.result().offset
        return range(first, first + self.count)


class Outbox:
    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], list[Message]] = {}

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        self._pending.setdefault((topic, partition), []).append((key, value))

    def __bool__(self) -> bool:
        return bool(self._pending)

    async def send(self, producer: Any, handed_over: Callable[[Delivery], None] | None = None) -> list[Delivery]:
        """Hand everything added so far to `producer` (an aiokafka producer), a batch per topic partition (or more
        when it outgrows one); not waiting for Kafka. The deliveries are in the order the batches were handed over,
        each partition's in the order its messages were added; `handed_over` is called with each as it is handed
        over, so that a caller hears of every batch Kafka may write, even when a later one is refused (and `send`
        raises)."""
        pending, self._pending = self._pending, {}
        deliveries: list[Delivery] = []
        groups = list(pending.items())
        for n, ((topic, partition), messages) in enumerate(groups):
            start = 0
            while start < len(messages):
                batch = producer.create_batch()
                end = start
                while end < len(messages):
                    key, value = messages[end]
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        break  # the batch is full
                    end += 1
                if end == start:  # never so: a new batch takes its first message whatever its size
                    raise RuntimeError(f"the producer's new batch refused a message to {topic}")
                batch.close()  # nothing more goes in: the sender may take it at once, without lingering
                try:
                    acknowledged = await producer.send_batch(batch, topic, partition=partition)
                except BaseException:
                    # Not handed over: this batch's messages and every later one go first next time.
                    self._requeue([((topic, partition), messages[start:]), *groups[n + 1 :]])
                    raise
                delivery = Delivery(topic, partition, end - start, acknowledged)
                if handed_over is not None:
                    handed_over(delivery)
                deliveries.append(delivery)
                start = end
        return deliveries

    def _requeue(self, groups: list[tuple[tuple[str, int], list[Message]]]) -> None:
        added_since, self._pending = self._pending, {}
        for where, messages in groups:
            self._pending.setdefault(where, []).extend(messages)
        for where, messages in added_since.items():
            self._pending.setdefault(where, []).extend(messages)
