"""What `Outbox` uses of aiokafka's producer (`create_batch`, `send_batch`), for unit tests of what is handed over in
which order: a future per batch, answered when the test says (Kafka's acknowledgement). Real Kafka:
tests/integration/test_outbox.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaTimeoutError


@dataclass
class Batch:
    capacity: int
    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    closed: bool = False

    def append(self, *, key: bytes | None, value: bytes, timestamp: Any) -> object | None:
        if self.closed or (self.messages and len(self.messages) >= self.capacity):
            return None  # full: as aiokafka's, which takes a first message whatever its size
        self.messages.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


@dataclass
class Sent:
    topic: str
    partition: int
    messages: list[tuple[bytes | None, bytes]]
    acknowledged: asyncio.Future[Any]

    def acknowledge(self, first_offset: int) -> None:
        self.acknowledged.set_result(RecordMetadata(self.topic, self.partition, first_offset))


@dataclass(frozen=True)
class RecordMetadata:  # the fields of aiokafka's that are read
    topic: str
    partition: int
    offset: int


class Producer:
    def __init__(self, capacity: int = 1000, refuse_after: int | None = None) -> None:
        self.capacity = capacity
        self.refuse_after = refuse_after  # batches taken before it refuses one (its queue full past the timeout)
        self.sent: list[Sent] = []

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert batch.closed, "handed over open: the producer's sender would let it linger"
        if self.refuse_after is not None and len(self.sent) >= self.refuse_after:
            raise KafkaTimeoutError()
        sent = Sent(topic, partition, batch.messages, asyncio.get_running_loop().create_future())
        self.sent.append(sent)
        return sent.acknowledged

    def messages(self) -> list[tuple[str, int, bytes | None, bytes]]:
        return [(s.topic, s.partition, key, value) for s in self.sent for key, value in s.messages]
