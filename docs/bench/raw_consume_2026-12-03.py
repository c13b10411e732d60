"""How fast one process reads and decodes `cart-events` with aiokafka alone, no Faust: the room for a query side
whose agents drive their own consumer (docs/benchmarks.md, 2026-12-03). Reads the topic from the start once,
decodes each value with orjson and keeps each member's highest seq_nr (the duplicate filter's work, in a dict).

.venv/bin/python docs/bench/raw_consume_2026-12-03.py   (from the checkout's root, with the services up)
"""

import asyncio
import resource
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.settings import get_settings
from app.streams.kafka_clients import kafka_options


async def main() -> None:
    settings = get_settings()
    consumer = AIOKafkaConsumer(**kafka_options(settings), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topic_events, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        total = sum((await consumer.end_offsets(partitions)).values())
        for tp in partitions:
            consumer.seek(tp, 0)
        highest: dict[str, int] = {}
        read = 0
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        while read < total:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    value = orjson.loads(record.value)
                    member, seq_nr = value["member_id"], value["seq_nr"]
                    if seq_nr > highest.get(member, 0):
                        highest[member] = seq_nr
                    read += 1
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        print(f"{read} messages in {seconds:.2f} s = {read / seconds:,.0f}/s; CPU {cpu_s * 1e6 / read:.1f} us each")
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
