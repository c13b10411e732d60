"""The three real services answer the way the system uses them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.settings import Settings
from app.stores.cassandra import connect_async, execute
from app.tools.services import CASSANDRA_GC_FLAGS, KAFKA_GC_FLAGS, Cassandra, Kafka, read_pid


async def test_a_message_produced_to_kafka_is_consumed_back(settings: Settings) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"calvin")
        message = await asyncio.wait_for(consumer.getone(), 30)
        assert (message.key, message.value) == (b"calvin", b"hello")
    finally:
        await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


async def test_a_row_written_to_cassandra_is_read_back(settings: Settings) -> None:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        await execute(session, "CREATE TABLE IF NOT EXISTS smoke (id uuid PRIMARY KEY, name text)", timeout_s=30)
        row_id = uuid.uuid4()
        await execute(session, "INSERT INTO smoke (id, name) VALUES (%s, %s)", (row_id, "orange"))
        rows = list(await execute(session, "SELECT name FROM smoke WHERE id = %s", (row_id,)))
        assert [r.name for r in rows] == ["orange"]
    finally:
        cluster.shutdown()


async def test_a_row_written_to_postgres_is_read_back(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS smoke (id UUID PRIMARY KEY, name TEXT)")
        row_id = uuid.uuid4()
        await conn.execute("INSERT INTO smoke (id, name) VALUES ($1, $2)", row_id, "orange")
        assert await conn.fetchval("SELECT name FROM smoke WHERE id = $1", row_id) == "orange"
    finally:
        await conn.close()


async def test_the_local_cassandra_compacts_at_the_pace_of_the_settings(settings: Settings) -> None:
    """A compaction at Cassandra's default pace took a core for seconds and stalled the commands (Settings.
    cassandra_compaction_mib_s): the running Cassandra says which pace it has (system_views.settings)."""
    cluster, session = await connect_async(settings)
    try:
        rows = await execute(session, "SELECT value FROM system_views.settings WHERE name = 'compaction_throughput'")
        assert [r.value for r in rows] == [f"{settings.cassandra_compaction_mib_s}MiB/s"]
    finally:
        cluster.shutdown()


async def test_the_local_cassandra_syncs_its_commit_log_before_it_acknowledges(settings: Settings) -> None:
    """Acknowledged means on disk on one node too: the running Cassandra says so itself (system_views.settings)."""
    cluster, session = await connect_async(settings)
    try:
        rows = await execute(session, "SELECT name, value FROM system_views.settings WHERE name = 'commitlog_sync'")
        assert {r.name: r.value for r in rows} == {"commitlog_sync": settings.cassandra_commitlog_sync}
        assert settings.cassandra_commitlog_sync in ("batch", "group")
    finally:
        cluster.shutdown()


def test_the_local_cassandra_runs_with_the_timer_slack_of_the_settings(settings: Settings) -> None:
    """Every thread of the Cassandra `cart services up` started (those started later too) sleeps with the slack that
    keeps its request pools' polling cheap (Settings.cassandra_timer_slack_ns)."""
    pid = read_pid(Cassandra(settings).pid_file)
    if pid is None:
        pytest.skip("this checkout did not start the Cassandra it uses")
    threads = [p.name for p in Path(f"/proc/{pid}/task").iterdir()]
    assert len(threads) > 20  # the JVM's and Cassandra's own, started after the process
    slack = {int(Path(f"/proc/{tid}/timerslack_ns").read_text()) for tid in threads}
    assert slack == {settings.cassandra_timer_slack_ns or 50_000}


async def test_the_local_cassandra_keeps_its_memtables_off_the_heap(settings: Settings) -> None:
    """Memtables on the heap made the collector copy them at every young pause (60-110 ms) and their 1 MiB slabs
    started concurrent cycles (docs/benchmarks.md, 2026-12-07, midday): the running Cassandra says where they are."""
    cluster, session = await connect_async(settings)
    try:
        rows = await execute(session, "SELECT value FROM system_views.settings WHERE name = 'memtable_allocation_type'")
        assert [r.value for r in rows] == ["offheap_objects"]
    finally:
        cluster.shutdown()


@pytest.mark.parametrize("service, flags", [(Cassandra, CASSANDRA_GC_FLAGS), (Kafka, KAFKA_GC_FLAGS)])
def test_the_local_jvms_run_with_their_collector_flags(settings: Settings, service: type, flags: list[str]) -> None:
    """The pause targets that keep the collectors' pauses short (docs/benchmarks.md, 2026-12-07, midday) are the
    ones the running JVMs were started with."""
    pid = read_pid(service(settings).pid_file)
    if pid is None:
        pytest.skip("this checkout did not start the service it uses")
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert flags and all(flag in arguments for flag in flags)
