"""What the parts of the stack can do on this machine by themselves, measured the way the system uses them, so
that each figure of the system reads as a fraction of its ceiling.

- `append_ceiling`: conditional appends/s to a journal-shaped table with the project's Cassandra driver and its
  asyncio bridge, one single-partition `INSERT ... IF NOT EXISTS` per append, at a few concurrencies (the best
  is the ceiling); and a per-partition fence: one conditional batch that moves a static `next_seq` `IF next_seq =
  ?` and inserts K events, reported per event. In a keyspace of its own, dropped afterwards.
- `kafka_ceiling`: command-sized messages produced and consumed at once with aiokafka, on a topic of its own,
  deleted afterwards; then one message at a time, produced and consumed before the next (a lone command's hop):
  what one request each way costs the client and Kafka, which a batch of one pays whole.
- `http_ceiling`: closed-loop GETs of the running API's `/health` (no store, no Kafka: the HTTP stack alone).

The generator runs on the same machine and uses CPU too: each part says how much (`cpu`), so a ceiling that is
the generator's own limit shows as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from app.settings import Settings
from app.stores.cassandra import applied, connect_async, execute
from app.streams.kafka_clients import kafka_options
from app.tools.bench.cpu import CpuMeter, Watched
from app.tools.progress import Progress

# About what the journal stores per event (an ItemAdded's payload) and what the API puts on cart-commands.
EVENT_PAYLOAD = json.dumps(
    {
        "cart_id": str(uuid.UUID(int=1)),
        "item": {
            "product_id": str(uuid.UUID(int=2)),
            "vendor_id": str(uuid.UUID(int=3)),
            "name": "bench-0123abcd",
            "price": "123.45",
            "quantity": 3,
        },
    }
)
ROUND_TRIPS = 500  # lone messages, produced then consumed before the next (`one_at_a_time`)
COMMAND_BYTES = 300


def throwaway_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{int(time.time())}"


async def append_ceiling(
    settings: Settings,
    concurrencies: Sequence[int],
    fence_concurrencies: Sequence[int],
    fence_events: int,
    seconds: float,
    progress: Progress,
    watched: Sequence[Watched],
) -> dict[str, Any]:
    keyspace = throwaway_name("bench_ceiling")
    cluster, session = await connect_async(settings)
    try:
        await create_ceiling_tables(session, keyspace)
        single = await asyncio.to_thread(
            session.prepare,
            f"INSERT INTO {keyspace}.appends (member_id, bucket, seq_nr, event_id, type, occurred_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
        )
        by_concurrency = []
        for concurrency in concurrencies:
            label = f"conditional appends, concurrency {concurrency}"
            count = await timed_loops(progress, label, seconds, concurrency, watched, single_appender(session, single))
            by_concurrency.append({"concurrency": concurrency, **count})
        fence = await fence_ceiling(session, keyspace, fence_concurrencies, fence_events, seconds, progress, watched)
    finally:
        with contextlib.suppress(Exception):
            await execute(session, f"DROP KEYSPACE IF EXISTS {keyspace}", timeout_s=60)
        await asyncio.to_thread(cluster.shutdown)
    best = max(by_concurrency, key=lambda r: r["per_s"])
    return {
        "append_ceiling_per_s": best["per_s"],
        "best_concurrency": best["concurrency"],
        "by_concurrency": by_concurrency,
        **fence,
    }


async def create_ceiling_tables(session: Session, keyspace: str) -> None:
    statements = [
        f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
        f"""CREATE TABLE {keyspace}.appends (
            member_id uuid, bucket bigint, seq_nr bigint, event_id uuid, type text, occurred_at timestamp,
            payload text, PRIMARY KEY ((member_id, bucket), seq_nr))""",
        f"""CREATE TABLE {keyspace}.fenced (
            member_id uuid, bucket bigint, next_seq bigint static, seq_nr bigint, event_id uuid, type text,
            occurred_at timestamp, payload text, PRIMARY KEY ((member_id, bucket), seq_nr))""",
    ]
    for statement in statements:
        await execute(session, statement, timeout_s=60)


Loop = Callable[[float], Awaitable[int]]  # runs until the deadline (monotonic); how many it did


def single_appender(session: Session, insert: PreparedStatement) -> Callable[[], Loop]:
    """Each loop is one member appending one event at a time, conditionally, as the journal does per command."""

    def new_loop() -> Loop:
        member = uuid.uuid4()

        async def loop(deadline: float) -> int:
            done = 0
            while time.monotonic() < deadline:
                params = (member, 0, done + 1, uuid.uuid4(), "ItemAdded", datetime.now(UTC), EVENT_PAYLOAD)
                result = await execute(session, insert, params, timeout_s=10)
                if not applied(result):
                    raise RuntimeError("a conditional append of the ceiling lost to nobody: the table is not fresh")
                done += 1
            return done

        return loop

    return new_loop


async def fence_ceiling(
    session: Session,
    keyspace: str,
    concurrencies: Sequence[int],
    events_per_batch: int,
    seconds: float,
    progress: Progress,
    watched: Sequence[Watched],
) -> dict[str, Any]:
    start = await asyncio.to_thread(
        session.prepare, f"INSERT INTO {keyspace}.fenced (member_id, bucket, next_seq) VALUES (?, ?, 0)"
    )
    move = await asyncio.to_thread(
        session.prepare,
        f"UPDATE {keyspace}.fenced SET next_seq = ? WHERE member_id = ? AND bucket = ? IF next_seq = ?",
    )
    insert = await asyncio.to_thread(
        session.prepare,
        f"INSERT INTO {keyspace}.fenced (member_id, bucket, seq_nr, event_id, type, occurred_at, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
    )

    def new_loop() -> Loop:
        partition = uuid.uuid4()

        async def loop(deadline: float) -> int:
            await execute(session, start, (partition, 0), timeout_s=10)
            next_seq = 0
            while time.monotonic() < deadline:
                batch = BatchStatement(batch_type=BatchType.LOGGED)
                batch.add(move, (next_seq + events_per_batch, partition, 0, next_seq))
                now = datetime.now(UTC)
                for seq in range(next_seq + 1, next_seq + events_per_batch + 1):
                    batch.add(insert, (partition, 0, seq, uuid.uuid4(), "ItemAdded", now, EVENT_PAYLOAD))
                if not applied(await execute(session, batch, timeout_s=10)):
                    raise RuntimeError("a fenced batch of the ceiling lost to nobody: the table is not fresh")
                next_seq += events_per_batch
            return next_seq

        return loop

    by_concurrency = []
    for concurrency in concurrencies:
        label = f"fenced batches of {events_per_batch}, {concurrency} partitions"
        count = await timed_loops(progress, label, seconds, concurrency, watched, new_loop, unit="events")
        by_concurrency.append({"partitions": concurrency, **count})
    best = max(by_concurrency, key=lambda r: r["per_s"])
    return {
        "fence_ceiling_events_per_s": best["per_s"],
        "fence_events_per_batch": events_per_batch,
        "fence_best_partitions": best["partitions"],
        "fence_by_partitions": by_concurrency,
    }


async def timed_loops(
    progress: Progress,
    label: str,
    seconds: float,
    concurrency: int,
    watched: Sequence[Watched],
    new_loop: Callable[[], Loop],
    unit: str = "appends",
) -> dict[str, Any]:
    """Run `concurrency` loops for `seconds`; how many they did per second, and the CPU used meanwhile."""
    loops = [new_loop() for _ in range(concurrency)]
    meter = CpuMeter(watched)
    meter.start()
    started = time.monotonic()
    progress.update(f"{label}: {seconds:g} s", force=True)
    counts = await asyncio.gather(*(loop(started + seconds) for loop in loops))
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    per_s = round(sum(counts) / elapsed, 1)
    progress.note(f"  {label}: {per_s:,.0f} {unit}/s")
    return {"per_s": per_s, "count": sum(counts), "cpu": cpu.to_json()}


async def kafka_ceiling(
    settings: Settings, seconds: float, progress: Progress, watched: Sequence[Watched], window: int = 5000
) -> dict[str, Any]:
    """Produce command-sized messages (keyed like commands, acks=all) for `seconds` while consuming them from the
    same topic; messages/s from the first send to the last message consumed."""
    topic = throwaway_name("bench-ceiling").replace("_", "-")
    admin = AIOKafkaAdminClient(**kafka_options(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, settings.partitions, 1)])
        return await produce_and_consume(settings, topic, seconds, progress, watched, window)
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()


async def produce_and_consume(
    settings: Settings, topic: str, seconds: float, progress: Progress, watched: Sequence[Watched], window: int
) -> dict[str, Any]:
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(**kafka_options(settings), enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        await warm_up(producer, topic, settings.partitions)
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolved (after the warm-up messages) before the first send
        value = (b'{"command":' + b"x" * COMMAND_BYTES)[:COMMAND_BYTES]
        keys = [str(uuid.uuid4()).encode() for _ in range(1000)]
        meter = CpuMeter(watched)
        meter.start()
        started = time.monotonic()
        produced = 0
        done = asyncio.Event()
        consuming = asyncio.create_task(consume(consumer, done, lambda: produced, started + seconds + 30))
        in_flight: deque[asyncio.Future[Any]] = deque()
        while time.monotonic() < started + seconds:
            in_flight.append(await producer.send(topic, value, key=keys[produced % len(keys)]))
            produced += 1
            if len(in_flight) >= window:
                await in_flight.popleft()
            if produced % 20_000 == 0:
                progress.update(f"kafka: {produced:,} produced", force=True)
        await asyncio.gather(*in_flight)
        done.set()
        consumed, last = await consuming
        cpu = meter.stop()
        lone = await one_at_a_time(producer, consumer, topic, value, ROUND_TRIPS, watched)
    finally:
        await consumer.stop()
        await producer.stop()
    per_s = round(consumed / max(last - started, 1e-9), 1)
    progress.note(f"  kafka produce+consume: {per_s:,.0f} messages/s ({COMMAND_BYTES} bytes)")
    return {
        "kafka_ceiling_msgs_per_s": per_s,
        "message_bytes": COMMAND_BYTES,
        "produced": produced,
        "consumed": consumed,
        "cpu": cpu.to_json(),
        "one_at_a_time": lone,
    }


async def one_at_a_time(
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    topic: str,
    value: bytes,
    count: int,
    watched: Sequence[Watched],
) -> dict[str, Any]:
    """`count` round trips of one message: produced (acks=all), then consumed, before the next is sent. A command
    answered alone makes several such hops (API -> command worker, its events, its reply -> API), each a request
    of its own: what one costs the client (this process) and Kafka is the floor of a batch of one."""
    key = str(uuid.uuid4()).encode()
    times: list[float] = []
    meter = CpuMeter(watched)
    meter.start()
    for _ in range(count):
        sent = time.monotonic()
        await (await producer.send(topic, value, key=key))
        while not any((await consumer.getmany(timeout_ms=1000, max_records=1)).values()):
            if time.monotonic() - sent > 30:
                raise RuntimeError(f"a message produced to {topic} was not consumed within 30 s")
        times.append(time.monotonic() - sent)
    used = meter.stop()
    times.sort()
    return {
        "round_trips": count,
        "p50_us": round(1e6 * times[len(times) // 2]),
        "client_cpu_us_per_round_trip": round(1000 * used.bench_ms / count),
        "kafka_cpu_us_per_round_trip": round(1000 * used.processes_ms["kafka"] / count)
        if "kafka" in used.processes_ms
        else None,
        "cpu": used.to_json(count, per="round_trip"),
    }


async def warm_up(producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
    """One message to each partition of the topic just created, acknowledged: then every partition has a leader
    that serves before the measurement starts. For a moment after its creation a topic's partitions answer
    NotLeaderForPartition, which aiokafka retries and logs as if it mattered: quiet here, where it is expected."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        await asyncio.gather(*[await producer.send(topic, b"warm-up", partition=p) for p in range(partitions)])
    finally:
        logger.setLevel(level)


async def consume(
    consumer: AIOKafkaConsumer, produced_all: asyncio.Event, produced: Callable[[], int], give_up_at: float
) -> tuple[int, float]:
    """(messages consumed, monotonic time of the last one) once every produced message is in, or at give_up_at."""
    consumed, last = 0, time.monotonic()
    while time.monotonic() < give_up_at and not (produced_all.is_set() and consumed >= produced()):
        batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
        got = sum(len(messages) for messages in batches.values())
        if got:
            consumed += got
            last = time.monotonic()
    return consumed, last


async def http_ceiling(
    api: str, concurrency: int, seconds: float, progress: Progress, watched: Sequence[Watched]
) -> dict[str, Any]:
    """Closed-loop GET /health from `concurrency` clients for `seconds`."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    errors = 0
    async with aiohttp.ClientSession(base_url=api, connector=connector) as http:
        meter = CpuMeter(watched)
        meter.start()
        started = time.monotonic()
        deadline = started + seconds

        async def client() -> int:
            nonlocal errors
            done = 0
            while time.monotonic() < deadline:
                try:
                    async with http.get("/health") as response:
                        await response.read()
                        if response.status == 200:
                            done += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
            return done

        progress.update(f"http /health: {concurrency} clients, {seconds:g} s", force=True)
        counts = await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
        cpu = meter.stop()
    per_s = round(sum(counts) / elapsed, 1)
    progress.note(f"  http /health: {per_s:,.0f} requests/s at concurrency {concurrency}")
    return {"http_ceiling_per_s": per_s, "concurrency": concurrency, "errors": errors, "cpu": cpu.to_json()}
