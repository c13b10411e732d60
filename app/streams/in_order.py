"""Every message of a partition processed in offset order and never skipped, whatever Faust delivers.

Faust-streaming does not guarantee that around rebalances: it acknowledges messages a stream skips (fetched in an
older consumer generation, or while flow control was suspended), counts jumps in fetched offsets as processed,
and has delivered a prefetched message ahead of the committed position (faust-streaming issues #216, #221, #312).
Any of these commits past a message no agent processed. The projections' bookkeeping (marks per source partition,
positions in PostgreSQL) is only sound if each partition is processed in order with no gaps, so the query-side
agents do not trust the delivery order; each keeps the last offset it has processed per partition, durable with
its effects (`Positions`), and runs what is delivered through `InOrder.deliver`:

- a message at or below that offset was processed before: it is ignored;
- a message beyond the next expected offset means some were never processed: they are read from Kafka directly
  (`KafkaLog.read`) and processed first, in order.
Messages arrive in batches (app/streams/batches.py); the guard hands the agent runs of consecutive offsets.

That catches a skip as soon as a later message of the partition arrives. A skip of a partition's last message
(nothing arrives after it) is caught by `stalled`, which a worker timer runs: the group's committed offset beyond
an agent's next expected offset means Faust committed past something the agent never processed, and seeking the
partition back makes Faust deliver it again.

A message is processed again only after a crash before its offset was durable; each agent's own bookkeeping
absorbs that (seq_nr per member, marks per row, the offset in PostgreSQL's transaction), except the public topic
`item-purchased`, which is at least once by contract (consumers drop duplicates by `eventId`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)
T = TypeVar("T")


class Positions(Protocol):
    """Where an agent keeps, per partition of its input topic, the last offset it has processed."""

    async def last(self, partition: int) -> int | None: ...


class TablePositions:
    """Positions kept in the agent's own changelog-backed table, under `@offset/<partition>`.

    Faust keeps a table's keys per partition (the partition of the message being processed), so the key is read
    and written while processing a message of that partition, and its changelog entry goes to that partition: it
    moves with the partition to whichever worker owns it next, and is restored with the rest of the table.
    `record` is made durable by the agent's next changelog flush; a crash before that makes the agent process the
    message again (see the module's docstring for what absorbs that)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @staticmethod
    def key(partition: int) -> str:
        return f"@offset/{partition}"

    async def last(self, partition: int) -> int | None:
        value = self.table.get(self.key(partition))
        return None if value is None else int(value)

    def record(self, partition: int, offset: int) -> None:
        self.table[self.key(partition)] = offset


class KafkaLog:
    """Reads a partition's messages directly, with a consumer of its own (no group, no commits), and the group's
    committed offsets: what `in_order` and `stalled` need from Kafka, and nothing else."""

    def __init__(self, kafka: dict[str, Any], stall_timeout_s: float = 30.0) -> None:
        self.kafka = kafka  # kafka_options(settings)
        self.stall_timeout_s = stall_timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # `earliest`: a read that starts below the log's start (retention) begins at the start, not at the end.
            consumer = AIOKafkaConsumer(**self.kafka, enable_auto_commit=False, auto_offset_reset="earliest")
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def beginning(self, topic: str, partition: int) -> int:
        async with self._lock:
            tp = TopicPartition(topic, partition)
            return int((await (await self._started()).beginning_offsets([tp]))[tp])

    async def ends(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The end offsets (the offset the next message will get) of these partitions."""
        if not partitions:
            return {}
        async with self._lock:
            tps = [TopicPartition(t, p) for t, p in partitions]
            found = await (await self._started()).end_offsets(tps)
            return {(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}

    async def read(self, topic: str, partition: int, start: int, end: int) -> AsyncGenerator[tuple[int, bytes | None]]:
        """The messages at offsets [start, end) as (offset, value), in order. Raises TimeoutError (transient) when
        Kafka stops returning them."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            position, progress_at = start, time.monotonic()
            while position < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        return
                    position, progress_at = record.offset + 1, time.monotonic()
                    yield record.offset, record.value
                # Offsets can jump (compaction, transaction markers): the consumer's position says where it is.
                position = max(position, await consumer.position(tp))
                if time.monotonic() - progress_at > self.stall_timeout_s:
                    raise TimeoutError(f"{topic}[{partition}]: no message at {position} (reading up to {end})")

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        """The group's committed offsets: (topic, partition) -> the next offset the group will read."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self.kafka, request_timeout_ms=10000)
            await admin.start()
            self._admin = admin
        offsets = await self._admin.list_consumer_group_offsets(group)
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()


Delivered = Sequence[tuple[int, T | None]]
"""A partition's messages as (offset, value), value None for a malformed one."""


@dataclass(frozen=True)
class InOrder(Generic[T]):
    """One agent's guard over one input topic.

    `process(partition, messages)` does the agent's work for a run of one partition's messages, in offset order with
    no gap, and must record the last offset in `positions` with (or after) its effects. `decode` turns a message
    read directly from Kafka into the same value Faust would have delivered (or None when malformed).

    `drop_first_delivery_every` is fault injection for tests: the first delivery of every n-th offset is dropped
    (acknowledged, unprocessed), which is what Faust does to a message it skips."""

    agent: str
    topic: str
    positions: Positions
    decode: Callable[[bytes | None], T | None]
    process: Callable[[int, Delivered[T]], Awaitable[None]]
    kafka: Callable[[], KafkaLog]
    drop_first_delivery_every: int = 0
    max_run: int = 2000
    _dropped: set[tuple[int, int]] = field(default_factory=set)

    async def deliver(self, partition: int, delivered: Delivered[T]) -> None:
        """Process what Faust delivered of one partition (in offset order): what was processed before is ignored,
        what was never delivered is read from Kafka, and everything is processed in offset order, once."""
        every = self.drop_first_delivery_every
        if every:
            delivered = [m for m in delivered if not self._dropped_now(partition, m[0])]
        last = await self.positions.last(partition)
        expected = last + 1 if last is not None else await self.kafka().beginning(self.topic, partition)
        run: list[tuple[int, T | None]] = []
        for offset, value in delivered:
            if offset < expected:
                log.debug("%s: %s[%d]@%d was processed before; ignored", self.agent, self.topic, partition, offset)
                continue
            if offset > expected:
                await self._flush(partition, run)
                await self._read_gap(partition, expected, offset)
            run.append((offset, value))
            expected = offset + 1
            if len(run) >= self.max_run:
                await self._flush(partition, run)
        await self._flush(partition, run)

    def _dropped_now(self, partition: int, offset: int) -> bool:
        if offset % self.drop_first_delivery_every or (partition, offset) in self._dropped:
            return False
        self._dropped.add((partition, offset))
        log.warning("fault injection: %s drops %s[%d]@%d", self.agent, self.topic, partition, offset)
        return True

    async def _flush(self, partition: int, run: list[tuple[int, T | None]]) -> None:
        if run:
            await self.process(partition, list(run))
            run.clear()

    async def _read_gap(self, partition: int, start: int, end: int) -> None:
        log.warning(
            "%s: %s[%d] offsets %d..%d were never delivered to this agent; reading them from Kafka",
            self.agent, self.topic, partition, start, end - 1,
        )  # fmt: skip
        run: list[tuple[int, T | None]] = []
        async with contextlib.aclosing(self.kafka().read(self.topic, partition, start, end)) as missed:
            async for missed_offset, raw in missed:
                run.append((missed_offset, self.decode(raw)))
                if len(run) >= self.max_run:
                    await self._flush(partition, run)
        await self._flush(partition, run)


async def stalled(
    guards: list[InOrder[Any]],
    assigned: list[tuple[str, int]],
    committed: Mapping[tuple[str, int], int],
    ends: Mapping[tuple[str, int], int],
) -> dict[tuple[str, int], int]:
    """The assigned partitions whose committed offset is beyond what a guarded agent has processed, with the offset
    to seek back to (the lowest any agent on the partition expects next). A committed offset beyond the partition's
    end is from an earlier topic of the same name (deleted and created again): only the end counts then, or the
    partition would be sought back forever, since Faust never commits below what is committed."""
    found: dict[tuple[str, int], int] = {}
    for guard in guards:
        for topic, partition in assigned:
            if topic != guard.topic or (topic, partition) not in committed:
                continue
            done = min(committed[(topic, partition)], ends.get((topic, partition), committed[(topic, partition)]))
            last = await guard.positions.last(partition)
            expected = last + 1 if last is not None else await guard.kafka().beginning(topic, partition)
            if done > expected:
                log.warning(
                    "%s: %s[%d] is committed up to %d but processed only up to %d; seeking back",
                    guard.agent, topic, partition, done, expected - 1,
                )  # fmt: skip
                found[(topic, partition)] = min(expected, found.get((topic, partition), expected))
    return found
