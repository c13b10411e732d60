"""What handing messages to aiokafka costs the client, per message: one `send` each, against a record batch per
partition handed over whole (`create_batch` / `send_batch`, as app/streams/outbox.py does), with the producer's
batches up to MAX_BATCH bytes (docs/benchmarks.md, 2026-12-06, late night). 30,000 messages of 300 bytes to a throwaway
topic of 12 partitions, acks=all, idempotent, 10 ms linger (a query-side worker's producer); each mode twice.

MAX_BATCH=262144 .venv/bin/python docs/bench/batch_send_probe.py   (with the system's Kafka running)
"""

import asyncio
import os
import resource
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.settings import get_settings
from app.streams.kafka_clients import kafka_options

N = 30_000
PARTITIONS = 12


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    options = kafka_options(get_settings())
    topic = f"batch-send-probe-{os.getpid()}"
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    producer = AIOKafkaProducer(
        **options,
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        max_batch_size=int(os.environ.get("MAX_BATCH", 16384)),
    )
    await producer.start()
    await producer.partitions_for(topic)
    value = b"x" * 300
    try:
        for mode in ["one send each", "a batch per partition"] * 2:
            cpu, start = cpu_s(), time.monotonic()
            if mode == "one send each":
                sent = [await producer.send(topic, value, key=b"%d" % n, partition=n % PARTITIONS) for n in range(N)]
            else:
                sent = []
                for partition in range(PARTITIONS):
                    batch = producer.create_batch()
                    for n in range(partition, N, PARTITIONS):
                        if batch.append(key=b"%d" % n, value=value, timestamp=None) is None:
                            batch.close()
                            sent.append(await producer.send_batch(batch, topic, partition=partition))
                            batch = producer.create_batch()
                            batch.append(key=b"%d" % n, value=value, timestamp=None)
                    batch.close()
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*sent)
            elapsed = time.monotonic() - start
            print(f"{mode}: {(cpu_s() - cpu) / N * 1e6:.1f} us of CPU a message, {N / elapsed:,.0f} messages/s")
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


asyncio.run(main())
