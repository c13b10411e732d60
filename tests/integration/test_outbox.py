"""Messages handed to the real Kafka a record batch at a time (app/streams/outbox.py), with a producer configured as
a worker's (acks=all, idempotent, `producer_batch_bytes`): every message arrives, each partition's in the order
added, across sends and across batches, at the offsets the deliveries say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.settings import Settings
from app.streams.kafka_clients import kafka_options
from app.streams.outbox import Outbox
from tests.integration.topics import throwaway_topic

PARTITIONS = 3


@pytest.fixture()
async def topic(settings: Settings) -> AsyncIterator[str]:
    async with throwaway_topic(settings, "outbox", PARTITIONS) as name:
        yield name


async def read_all(settings: Settings, topic: str, counts: dict[int, int]) -> dict[int, list[tuple[int, bytes]]]:
    consumer = AIOKafkaConsumer(**kafka_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        read: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTITIONS)}
        async with asyncio.timeout(60):
            while any(len(read[p]) < counts.get(p, 0) for p in range(PARTITIONS)):
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    read[tp.partition] += [(r.offset, r.value) for r in records if r.value is not None]
        return read
    finally:
        await consumer.stop()


async def test_each_partition_arrives_whole_in_the_order_added_at_the_offsets_delivered(
    settings: Settings, topic: str
) -> None:
    producer = AIOKafkaProducer(
        **kafka_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        max_batch_size=settings.producer_batch_bytes,
    )
    await producer.start()
    outbox = Outbox()
    added: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    deliveries = []
    try:
        for round_ in range(3):
            # Partition 0 gets more than a record batch holds each round: it goes in several.
            for n in range(2000 if round_ != 1 else 10):
                partition = 0 if n % 4 else 1 + n % 8 // 4
                value = f"{round_}-{n}-".encode() + b"x" * 300
                outbox.add(topic, partition, f"{n}".encode(), value)
                added[partition].append(value)
            deliveries += await outbox.send(producer)
        # Partition 0's two long rounds (about 480 KB each) took more than one batch each.
        assert sum(delivery.partition == 0 for delivery in deliveries) >= 5
        offsets: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
        for delivery in deliveries:
            await delivery.acknowledged
            offsets[delivery.partition] += list(delivery.offsets())
    finally:
        await producer.stop()

    read = await read_all(settings, topic, {p: len(values) for p, values in added.items()})
    for partition in range(PARTITIONS):
        assert [value for _, value in read[partition]] == added[partition]
        assert [offset for offset, _ in read[partition]] == offsets[partition]
