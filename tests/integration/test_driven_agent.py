"""An agent that drives its own consumer (app/streams/driven.py), against the real Kafka: each partition in offset
order, in batches; a rebalance waits for the batch being processed, settles and commits before partitions move;
nothing is committed past a message not processed, so a second owner takes over exactly where the first stopped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings
from app.streams.batches import Delivered
from app.streams.driven import DrivenAgent
from tests.integration.topics import throwaway_topic

PARTITIONS = 4


@pytest.fixture()
async def topic(settings: Settings) -> AsyncIterator[str]:
    async with throwaway_topic(settings, "driven", PARTITIONS) as name:
        yield name


class Owner:
    """What an agent saw: per partition the offsets processed in order, the generations, when it was settled."""

    def __init__(self, settings: Settings, topic: str, group: str, name: str, slow_s: float = 0.0) -> None:
        self.processed: dict[int, list[int]] = {}
        self.values: list[str] = []
        self.settled = 0
        self.slow_s = slow_s
        self.agent: DrivenAgent[str] = DrivenAgent(
            name, settings, topic, group, self.decode, self.process, self.settle, max_batch=50, within=0.003
        )
        self.task: asyncio.Task[None] | None = None

    @staticmethod
    def decode(raw: bytes | None) -> str:
        if raw is None or raw == b"poison":
            raise ValueError("not a value")
        return raw.decode()

    async def process(self, batch: Mapping[int, Delivered[str]]) -> None:
        _, owned = self.agent.assignment()
        assert set(batch) <= owned, (set(batch), owned)  # never a partition it does not own
        for partition, messages in batch.items():
            offsets = [offset for offset, _ in messages]
            assert offsets == sorted(offsets)
            self.processed.setdefault(partition, []).extend(offsets)
            self.values += [value for _, value in messages if value is not None]
        await asyncio.sleep(self.slow_s)

    async def settle(self) -> None:
        self.settled += 1

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.agent.run())


async def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send(topic, value, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


async def until(check: Callable[[], object]) -> None:
    async with asyncio.timeout(60):
        while not check():  # noqa: ASYNC110 (polling what another task builds up)
            await asyncio.sleep(0.1)


async def committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def test_two_owners_share_the_partitions_and_every_message_is_processed_in_order_once_committed(
    settings: Settings, topic: str
) -> None:
    group = f"driven-{uuid.uuid4().hex[:8]}"
    first_half = [f"a{i}".encode() for i in range(200)]
    await produce(settings, topic, [*first_half, b"poison"])
    first = Owner(settings, topic, group, "first", slow_s=0.01)
    first.start()
    await until(lambda: len(first.values) == 200)
    assert first.agent.assignment()[1] == frozenset(range(PARTITIONS))

    second = Owner(settings, topic, group, "second")
    second.start()  # a rebalance: the first waits for its batch, settles and commits, then gives up partitions
    await until(lambda: first.agent.generation >= 2 and second.agent.generation >= 1 and second.agent.partitions)
    assert first.settled >= 1
    assert first.agent.partitions | second.agent.partitions == frozenset(range(PARTITIONS))
    assert not first.agent.partitions & second.agent.partitions

    rest = [f"b{i}".encode() for i in range(200)]
    await produce(settings, topic, rest)
    await until(lambda: len([v for v in first.values + second.values if v.startswith("b")]) == 200)
    for owner in (first, second):
        await owner.agent.stop()
        assert owner.task is not None
        await owner.task

    # Every value once (the poison message skipped), and the second owner started where the first had committed.
    assert sorted(first.values + second.values) == sorted(v.decode() for v in first_half + rest)
    for owner in (first, second):
        for partition, offsets in owner.processed.items():
            assert offsets == sorted(set(offsets)), (owner.agent.name, partition)
    ends = {p: 50 + 50 + (1 if p == 0 else 0) for p in range(PARTITIONS)}  # 100 of each half; poison on p0
    assert await committed(settings, group, topic) == ends
