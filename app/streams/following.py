"""The query-side agents: each keeps its state in a Faust table (or, `vendor_billing_sql`, in PostgreSQL) but reads
its input with a consumer it drives, at the partitions Faust assigns the worker.

Through Faust's stream a cart event cost the query worker about 0.3 ms in Faust's consume path alone (its consumer
thread, conductor, stream and acknowledgement), against 9 µs for aiokafka's `getmany` and a decode
(docs/benchmarks.md, 2026-12-03): a catch-up was one Python process busy in Faust, per message. And Faust's stream
needed a guard of its own around rebalances: it could skip a message and acknowledge it anyway, or commit past one
no agent processed (faust-streaming #216, #221, #312). But the agents keep changelog-backed tables, and only Faust
knows which of a table's partitions are this worker's and when they are restored. So Faust still decides who owns
what, and the agents follow it:

- for each agent, a Faust agent of the same name reads the query side's *owner topic*
  (`Settings.topic_events_owners`), co-partitioned with cart-events, the update topics and the tables, which nobody
  writes to: Faust assigns its partitions in its group as it would the inputs', restores the tables' partitions of
  the same numbers, and does the rest of what a rebalance needs;
- the agent's own consumer reads its input (`assign`, no group membership) at exactly the partitions Faust has
  assigned of the owner topic, once Faust says the rebalance is over (the tables restored), each from the offset
  after the last one the agent recorded as processed (`Positions`: durable with its effects);
- each partition's messages are processed with that partition as Faust's current event (`attributed_to`), so
  table reads and writes go to that partition, as if Faust had delivered them; the changelogs are flushed
  (`flush_changelogs`) before offsets are committed and before partitions go, not after each batch (`_durable`);
- when Faust revokes partitions (its `on_partitions_revoked` signal, which it awaits), the batch being processed
  finishes and is flushed before the agent lets the partitions go, and it reads nothing until Faust has finished the
  next rebalance;
- a message at or below the recorded offset (a batch retried after a store did not answer) is skipped, and since
  the consumer reads each partition from the recorded offset in order, nothing is ever skipped over.

The consumer also commits what it has processed to a group of its own (`Settings.reader_group`), which nothing
reads back: it is for the operators' lag (`cart status`, `/metrics`) and the bench, which read consumer groups.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.settings import Settings
from app.streams.batches import Checkpointed, Delivered, Positions, attributed_to, is_behind, wait_for_company
from app.streams.driven import ConsumingAgent, driven_agent
from app.streams.kafka_clients import kafka_options

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class OwnedPartition:
    """What Faust's tables read of the event being processed (`event.message.topic`, `.partition`): table keys
    read and written while it is current belong to that partition of the table."""

    topic: str
    partition: int

    @property
    def message(self) -> OwnedPartition:
        return self


class FollowingAgent(ConsumingAgent[T]):
    def __init__(
        self,
        app: Any,
        name: str,
        settings: Settings,
        topic: str,
        owner_topic: str,
        positions: Positions,
        decode: Callable[[bytes | None], T],
        process: Callable[[int, Delivered[T]], Awaitable[None]],
        commit_every_s: float = 1.0,
        checkpointed: Checkpointed | None = None,
    ) -> None:
        super().__init__(name, settings, topic, decode, settings.projection_batch_max, commit_every_s)
        self.app, self.owner_topic, self.positions, self.process = app, owner_topic, positions, process
        self.checkpointed = checkpointed  # bookkeeping the agent writes every few seconds, not every batch
        self._revoked = True  # nothing is read until Faust has finished a rebalance
        self._behind = False  # the batch before was of a backlog

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **kafka_options(self.settings),
            group_id=self.settings.reader_group(self.name),  # commits only: the consumer is assigned, not subscribed
            client_id=f"{self.settings.consumer_group}-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A catch-up reads what is there in large fetches; at a steady load Kafka answers with what has come
            # within the projections' fetch wait (they are not on any command's path).
            fetch_min_bytes=self.settings.projection_fetch_min_bytes,
            fetch_max_wait_ms=int(self.settings.projection_fetch_wait_s * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )

    def _faust_owned(self) -> frozenset[int] | None:
        """The partitions Faust has assigned this worker of the owner topic, or None while it is rebalancing (or
        restoring tables: Faust ends a rebalance only once they are restored)."""
        if self.app.rebalancing:
            return None
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # Faust's consumer not started yet (ConsumerNotStarted)
            return None
        return frozenset(tp.partition for tp in assigned if tp.topic == self.owner_topic)

    async def _ready(self, consumer: AIOKafkaConsumer) -> bool:
        owned = self._faust_owned()
        if owned is not None and (self._revoked or owned != self.partitions):
            await self._follow(consumer, owned)
        if self._revoked or not self.partitions:
            await asyncio.sleep(0.05)
            return False
        return True

    def _wait(self) -> float:
        s = self.settings
        return wait_for_company(
            self._last, self._behind, s.projection_batch_within_s, s.projection_batch_within_behind_s
        )

    def _took(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        super()._took(fetched)
        self._behind = is_behind(self._last, self.max_batch, max(m[-1].timestamp for m in fetched.values()))

    async def _follow(self, consumer: AIOKafkaConsumer, owned: frozenset[int]) -> None:
        """Read exactly `owned`, each partition from the offset after the last one the agent recorded."""
        from app.streams.faust_app import process_reliably

        async with self._processing:
            tps = [TopicPartition(self.topic, p) for p in sorted(owned)]
            recorded: dict[int, int | None] = {}

            async def read_positions() -> None:  # PostgreSQL's may not answer yet: retried, like a batch
                for tp in tps:
                    recorded[tp.partition] = await self._last_recorded(tp.partition)

            await process_reliably(f"{self.name} positions", read_positions)
            consumer.assign(tps)
            for tp in tps:
                last = recorded[tp.partition]
                if last is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, last + 1)
            self.partitions, self._revoked = owned, False
            log.info("%s: reading %s partitions %s (as Faust assigned)", self.name, self.topic, sorted(owned))

    async def _last_recorded(self, partition: int) -> int | None:
        with attributed_to(OwnedPartition(self.owner_topic, partition)):
            return await self.positions.last(partition)

    async def _process_batch(self, batch: Mapping[int, Delivered[T]]) -> None:
        from app.streams.faust_app import send_table_writes

        # Every partition finishes (or fails) before the batch is retried: never two runs of one partition.
        outcomes = await asyncio.gather(
            *(self._one_partition(p, messages) for p, messages in batch.items()), return_exceptions=True
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise failed[0]
        # The batch's table writes go to the producer now, but are not waited for here: see `_durable`.
        await send_table_writes()

    async def _durable(self) -> None:
        """The changelogs flushed before the reader group's offsets are committed (the lag operators read), and
        before partitions go (`settle`); not after each batch. Nothing resumes from the committed offsets: each
        partition resumes from the offset its table records, in the same changelog partition as the batch's table
        writes and after them, so whatever a crash leaves of a changelog partition is a prefix of its writes, whose
        recorded offset is as of its row states (and bookkeeping); the batches after it are processed again and
        their effects absorbed, as after a crash during a flush. Waiting for the whole producer after each batch
        (other agents' changelogs, `purchases`' public messages) was a quarter of each agent's batch time in a
        catch-up (docs/benchmarks.md, 2026-12-06, late evening). Kafka not answering is waited out, as for a batch;
        a changelog write it did not take ends the process (`process_reliably`)."""
        from app.streams.faust_app import flush_changelogs, process_reliably

        await process_reliably(f"{self.name} changelog flush", flush_changelogs)

    async def _one_partition(self, partition: int, messages: Delivered[T]) -> None:
        with attributed_to(OwnedPartition(self.owner_topic, partition)):
            last = await self.positions.last(partition)
            # A retried batch: what a first try recorded as processed is not processed again.
            run = [m for m in messages if last is None or m[0] > last]
            if run:
                await self.process(partition, run)

    async def settle(self) -> None:
        from app.streams.faust_app import flush_changelogs

        if self.checkpointed is not None:
            for partition in self.checkpointed.pending():
                with attributed_to(OwnedPartition(self.owner_topic, partition)):
                    self.checkpointed.checkpoint(partition)
        await flush_changelogs()

    async def on_revoked(self) -> None:
        """Faust is taking partitions away (its signal, awaited before anything moves): the batch being processed
        finishes and its changelog is flushed first; nothing more is read until the next rebalance is over."""
        async with self._processing:
            self._revoked = True
            await self._let_go(list(self._processed))
            if self.checkpointed is not None:
                self.checkpointed.forget()
            if self._consumer is not None:
                self._consumer.assign([])
            self.partitions = frozenset()


def following_agent(
    name: str,
    topic: str,
    owner_topic: Any,
    positions: Positions,
    decode: Callable[[bytes | None], T],
    process: Callable[[int, Delivered[T]], Awaitable[None]],
    checkpointed: Checkpointed | None = None,
) -> FollowingAgent[T]:
    """Register `name`: a Faust agent of that name over `owner_topic` (which only makes Faust assign and restore the
    partitions), and a task that reads `topic` following it (stopped first by `CartApp.on_stop`)."""
    from app.streams.faust_app import app, settings

    agent = FollowingAgent(
        app, name, settings, topic, owner_topic.get_topic_name(), positions, decode, process, checkpointed=checkpointed
    )

    async def owner(stream: Any) -> None:
        async for _ in stream:  # nobody writes to the owner topic
            pass

    owner.__name__ = owner.__qualname__ = name
    app.agent(owner_topic, name=name, concurrency=1)(owner)

    async def revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        await agent.on_revoked()

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]  # mode types it for positional senders
    return driven_agent(app, agent, task_name=f"{name}_reader")
