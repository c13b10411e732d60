"""The seek Faust does after a rebalance, as patched in app/streams/faust_app.py, against the real Kafka: a partition
with no committed offset goes back to its beginning (aiokafka alone would leave it where the fetcher already was, and
the messages fetched before the rebalance would never be processed)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from app.settings import Settings
from app.streams.faust_app import _seek_to_committed_or_beginning


async def test_after_a_rebalance_a_partition_never_committed_is_read_again_from_its_beginning(
    settings: Settings,
) -> None:
    topic = f"test-seek-{uuid.uuid4().hex[:8]}"
    fresh, committed = TopicPartition(topic, 0), TopicPartition(topic, 1)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"test-seek-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    try:
        for n in range(6):
            for partition in (0, 1):
                await producer.send_and_wait(topic, f"m{n}".encode(), partition=partition)
        consumer.assign([fresh, committed])
        await consumer.commit({committed: OffsetAndMetadata(4, "")})
        # The fetcher reads ahead of what the agents processed (here: everything, and nothing was committed on 0).
        seen: dict[TopicPartition, int] = {}
        while seen.get(fresh, 0) < 6 or seen.get(committed, 4) < 6:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                seen[tp] = records[-1].offset + 1
        assert await consumer.position(fresh) == 6

        async def call_thread(method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
            return await method(*args)  # Faust runs these in its consumer thread; the calls are the same

        faust_consumer_thread = SimpleNamespace(_ensure_consumer=lambda: consumer, call_thread=call_thread)
        await _seek_to_committed_or_beginning(faust_consumer_thread)

        assert await consumer.position(fresh) == 0  # never committed: from the beginning, not from 6
        assert await consumer.position(committed) == 4  # committed: from the committed offset, as Faust does
    finally:
        await consumer.stop()
        await producer.stop()
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()
