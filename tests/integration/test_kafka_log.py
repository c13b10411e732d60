"""`KafkaLog` against the real Kafka: what the in-order guard reads when Faust skipped messages."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.structs import OffsetAndMetadata

from app.settings import Settings
from app.streams.in_order import KafkaLog
from app.streams.kafka_clients import kafka_options


@pytest.fixture()
async def topic(settings: Settings) -> AsyncIterator[str]:
    """A topic of two partitions with ten messages on partition 1 (values "m0".."m9")."""
    name = f"test-kafka-log-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, 2, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(10):
            await producer.send_and_wait(name, f"m{n}".encode(), partition=1)
        yield name
    finally:
        await producer.stop()
        with contextlib.suppress(Exception):
            await admin.delete_topics([name])
        await admin.close()


async def test_reads_exactly_the_offsets_asked_for_in_order(settings: Settings, topic: str) -> None:
    log = KafkaLog(kafka_options(settings))
    try:
        assert await log.beginning(topic, 1) == 0
        assert [(o, v) async for o, v in log.read(topic, 1, 3, 7)] == [(3, b"m3"), (4, b"m4"), (5, b"m5"), (6, b"m6")]
        assert [o async for o, _ in log.read(topic, 1, 8, 10)] == [8, 9]  # again, elsewhere: each read seeks
        assert await log.ends([(topic, 0), (topic, 1)]) == {(topic, 0): 0, (topic, 1): 10}
    finally:
        await log.close()


async def test_reading_past_the_end_of_the_partition_times_out_instead_of_hanging(
    settings: Settings, topic: str
) -> None:
    log = KafkaLog(kafka_options(settings), stall_timeout_s=2)
    try:
        with pytest.raises(TimeoutError):
            _ = [o async for o, _ in log.read(topic, 1, 8, 12)]  # 10 and 11 do not exist (yet)
    finally:
        await log.close()


async def test_a_read_that_starts_below_the_log_start_begins_at_the_start(settings: Settings, topic: str) -> None:
    """Retention (here: records deleted) moved partition 1's start to 6 while an agent's position was lower."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 1): RecordsToDelete(6)})
    finally:
        await admin.close()
    log = KafkaLog(kafka_options(settings))
    try:
        assert await log.beginning(topic, 1) == 6
        assert [o async for o, _ in log.read(topic, 1, 2, 9)] == [6, 7, 8]  # not nothing (a reset to the end)
    finally:
        await log.close()


async def test_committed_offsets_are_the_groups(settings: Settings, topic: str) -> None:
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    log = KafkaLog(kafka_options(settings))
    try:
        consumer.assign([TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 1): OffsetAndMetadata(7, "")})
        assert await log.committed(group) == {(topic, 1): 7}
    finally:
        await consumer.stop()
        await log.close()
