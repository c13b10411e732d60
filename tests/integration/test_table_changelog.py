"""A query-side table's writes reach its changelog (which the next owner of a partition restores from) whole and in
the order they were made, and its RocksDB store knows how far the changelog is in it (`JsonTable` queues the writes
and sends them itself, tables/hydrators.py): a real worker of `purchases`, a real backlog, the real topic."""

from __future__ import annotations

import asyncio
import io
import random
import time

import orjson
import rocksdict
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.settings import Settings
from app.streams.lag import consumer_lag
from app.tools.bench.projections import plan_backlog, produce_backlog
from app.tools.progress import Progress
from tests.e2e.system import RUN_DIR, delete_topics, isolated_env, start_worker, wait_worker_ready

OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps how far the changelog is in it


async def read_whole(settings: Settings, topic: str) -> dict[int, list[tuple[int, bytes, bytes]]]:
    """Every message of `topic`, per partition: (offset, key, value) in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        read: dict[int, list[tuple[int, bytes, bytes]]] = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + 60
        while any((read[tp.partition][-1][0] + 1 if read[tp.partition] else 0) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "the changelog was not read to its end"
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                read[tp.partition].extend((m.offset, m.key, m.value) for m in messages)
        return read
    finally:
        await consumer.stop()


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a topic the consumer has not looked at yet
    return consumer.partitions_for_topic(topic) or set()


async def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions(consumer, topic))]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


def test_purchases_table_reaches_its_changelog_whole_in_order_and_its_store_knows_how_far() -> None:
    env = isolated_env("changelog", 19095)
    own = Settings(app_id=env["CART_APP_ID"], agents="purchases", topic_events=env["CART_TOPIC_EVENTS"])
    # Bookkeeping written with every batch: many writes of the same keys, whose order the changelog must keep.
    worker = start_worker(**env, CART_AGENTS="purchases", CART_PROJECTION_CHECKPOINT_S="0")
    try:
        wait_worker_ready(worker)
        members = plan_backlog(1200, random.Random(11), max_members=60)
        asyncio.run(produce_backlog(own, members, Progress(io.StringIO())))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lags = [row for row in asyncio.run(consumer_lag(own)) if row.topic == own.topic_events]
            if lags and all(row.lag == 0 for row in lags):
                break
            assert worker.alive(), worker.tail()
            time.sleep(0.5)
        assert lags and all(row.lag == 0 for row in lags), lags
        assert worker.stop(timeout=60) == 0, worker.tail()  # a clean stop: what it holds is written and flushed

        changelog = asyncio.run(read_whole(own, f"{own.consumer_group}-absorbed_events-changelog"))
        events_ends = asyncio.run(end_offsets(own, own.topic_events))
    finally:
        if worker.alive():
            worker.kill()
        asyncio.run(delete_topics(env))

    last_seq_nr = {str(m.state.member_id): m.sessions[-1][-1].seq_nr for m in members}
    restored: dict[str, int] = {}
    for partition, messages in changelog.items():
        for _, key, value in messages:
            name, number = orjson.loads(key), orjson.loads(value)
            # In the order written: a member's seq_nr and the partition's offset only ever go up.
            assert number >= restored.get(name, -1), (partition, name, number, restored.get(name))
            restored[name] = number
    assert {k: v for k, v in restored.items() if not k.startswith("@")} == last_seq_nr
    assert {k: v for k, v in restored.items() if k.startswith("@")} == {
        f"@offset/{p}": end - 1 for p, end in events_ends.items() if end > 0
    }

    # The store's record of how far the changelog is in it: its last message, in every partition that has any.
    stores = {p.name: p for p in (RUN_DIR / worker.name).rglob("absorbed_events-*.db")}
    for partition, messages in changelog.items():
        if not messages:
            continue
        db = rocksdict.Rdict(str(stores[f"absorbed_events-{partition}.db"]), rocksdict.Options(raw_mode=True))
        try:
            assert int(db[OFFSET_KEY]) == messages[-1][0], partition
        finally:
            db.close()
