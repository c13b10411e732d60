"""An agent that drives its own consumer: a partition's messages in offset order, in batches, reliably, read by an
aiokafka consumer on the worker's event loop instead of through Faust's stream.

The command agent reads cart-commands this way. Through Faust, each command crossed Faust's consumer thread, its
conductor and stream, and an acknowledgement: about a quarter of the command worker's CPU, and a thread hop of
latency on every command (docs/benchmarks.md, 2026-12-05). The agent needs none of what Faust adds there (it keeps
no table: its state is the journal), so it reads with a plain consumer in a group of its own
(`Settings.command_group`) and lives in the Faust worker as one of the app's tasks (`faust -A app.worker worker`
still runs it), stopped before Faust stops its producer (`CartApp.on_stop`), which it sends with.

What it guarantees:
- a batch is what the consumer has fetched (at most `max_batch`; with `within` > 0, after a batch that had company,
  it waits that long for more: app/streams/batches.py), grouped by partition in offset order, and handed to
  `process` whole; a message that cannot be decoded is skipped (None), since nothing could ever process it;
- `process_reliably`: a store that does not answer is retried, anything else ends the process without committing;
- offsets are committed only after the batch that holds them is processed, never past a message not processed:
  every `commit_every_s`, when partitions are revoked and when the agent stops;
- a rebalance waits for the batch being processed; revoked partitions are `settle`d (what the agent holds for them
  is finished) and committed before they go, and messages fetched for a partition no longer assigned are dropped
  (its new owner reads them from the committed offset);
- `generation` counts assignments, so the agent can tell a new one (the command side claims its partitions anew).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from app.settings import Settings
from app.streams.batches import Delivered, wait_for_company
from app.streams.kafka_clients import kafka_options

log = logging.getLogger(__name__)
T = TypeVar("T")


async def consume_or_exit(name: str, consume: Callable[[], Awaitable[None]]) -> None:
    """Run an agent's consumer loop; if it fails, end the process (see `DrivenAgent.run`)."""
    try:
        await consume()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s: its consumer failed; exiting so that the worker is started again", name)
        logging.shutdown()
        os._exit(1)


async def fetch_batch(consumer: AIOKafkaConsumer, max_batch: int, wait: float) -> dict[TopicPartition, list[Any]]:
    """What the consumer has fetched (at most `max_batch`; waiting up to 200 ms for a first message), and with
    `wait` > 0, if that is not a full batch, what else has come after waiting that long."""
    fetched: dict[TopicPartition, list[Any]] = await consumer.getmany(timeout_ms=200, max_records=max_batch)
    count = sum(len(messages) for messages in fetched.values())
    if count and wait > 0 and count < max_batch:
        await asyncio.sleep(wait)
        more = await consumer.getmany(timeout_ms=0, max_records=max_batch - count)
        for tp, messages in more.items():
            fetched.setdefault(tp, []).extend(messages)
    return {tp: messages for tp, messages in fetched.items() if messages}


class DrivenAgent(Generic[T]):
    def __init__(
        self,
        name: str,
        settings: Settings,
        topic: str,
        group: str,
        decode: Callable[[bytes | None], T],
        process: Callable[[Mapping[int, Delivered[T]]], Awaitable[None]],
        settle: Callable[[], Awaitable[None]],
        max_batch: int,
        within: float,
        commit_every_s: float = 1.0,
    ) -> None:
        self.name, self.settings, self.topic, self.group = name, settings, topic, group
        self.decode, self.process, self.settle = decode, process, settle
        self.max_batch, self.within, self.commit_every_s = max_batch, within, commit_every_s
        self.generation = 0
        self.partitions: frozenset[int] = frozenset()
        self._consumer: AIOKafkaConsumer | None = None
        self._processing = asyncio.Lock()  # held while a batch is processed; a rebalance waits for it
        self._processed: dict[TopicPartition, int] = {}  # the next offset to commit, per partition
        self._committed: dict[TopicPartition, int] = {}
        self._stopping = False
        self._running: asyncio.Future[None] | None = None

    def assignment(self) -> tuple[int, frozenset[int]]:
        """This worker's generation of assignments and the partitions it owns in it."""
        return self.generation, self.partitions

    def _new_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            **kafka_options(s),
            group_id=self.group,
            client_id=f"{self.group}-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.session_timeout_s * 1000 / 5),
            rebalance_timeout_ms=int(s.session_timeout_s * 3000),
            # A batch is processed between two polls: it may wait for a store that is down (process_reliably).
            max_poll_interval_ms=int(max(300.0, s.command_timeout_s * 30) * 1000),
        )

    async def run(self) -> None:
        """Consume until `stop`: the body of the app's task. A consumer that fails ends the process, as a failed
        batch does (`process_reliably`): a worker whose agent has stopped must not go on looking alive, and its
        restart (by `cart run`'s supervisor, or whatever runs the worker) starts the agent again."""
        await consume_or_exit(self.name, self._consume)

    async def _consume(self) -> None:
        consumer = self._consumer = self._new_consumer()
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._running = asyncio.get_running_loop().create_future()
        last, committed_at = 0, time.monotonic()
        try:
            await consumer.start()
            while not self._stopping:
                fetched = await fetch_batch(consumer, self.max_batch, wait_for_company(last, False, self.within))
                if fetched:
                    last = sum(len(messages) for messages in fetched.values())
                    await self._process(fetched)
                if time.monotonic() - committed_at >= self.commit_every_s:
                    await self._commit()
                    committed_at = time.monotonic()
        finally:
            self._running.set_result(None)

    async def _process(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        from app.streams.faust_app import decoded, process_reliably

        async with self._processing:
            owned = {tp: messages for tp, messages in fetched.items() if tp.partition in self.partitions}
            if not owned:
                return  # fetched before a rebalance took these partitions: their new owner reads them
            batch = {
                tp.partition: [(m.offset, self._decoded(decoded, tp, m)) for m in messages]
                for tp, messages in owned.items()
            }
            count = sum(len(messages) for messages in batch.values())
            await process_reliably(f"{self.name} batch of {count}", partial(self.process, batch))
            for tp, messages in owned.items():
                self._processed[tp] = messages[-1].offset + 1

    def _decoded(self, decoded: Callable[..., T | None], tp: TopicPartition, message: Any) -> T | None:
        where = f"{self.name} input at {tp.topic}[{tp.partition}]@{message.offset}"
        return decoded(where, partial(self.decode, message.value))

    async def _commit(self, only: frozenset[TopicPartition] | None = None) -> None:
        """Commit what has been processed (of `only`, if given) and not committed yet."""
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self._processed.items()
            if tp in assigned and (only is None or tp in only) and self._committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as error:
            # A rebalance under way (the revoke commits), or Kafka away: the next commit carries these offsets.
            log.warning("%s: committing offsets failed: %s", self.name, error)
            return
        self._committed.update(offsets)

    async def on_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        async with self._processing:
            await self.settle()
            await self._commit()
            for tp in revoked:
                self._processed.pop(tp, None)
                self._committed.pop(tp, None)

    def on_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self.generation += 1
        self.partitions = frozenset(tp.partition for tp in assigned if tp.topic == self.topic)
        log.info("%s: assigned partitions %s (generation %d)", self.name, sorted(self.partitions), self.generation)

    async def stop(self) -> None:
        """Stop taking batches, finish what is held, commit, and leave the group (its partitions move at once)."""
        self._stopping = True
        if self._running is not None:
            await self._running
        consumer = self._consumer
        if consumer is None:
            return
        async with self._processing:
            await self.settle()
            await self._commit()
        with contextlib.suppress(Exception):
            await consumer.stop()
        self._consumer = None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, agent: DrivenAgent[Any]) -> None:
        self.agent = agent

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.agent.on_revoked(frozenset(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.agent.on_assigned(frozenset(assigned))


def driven_agent(app: Any, agent: DrivenAgent[T]) -> DrivenAgent[T]:
    """Run `agent` in the Faust worker of `app` (a task of the app; stopped first by `CartApp.on_stop`)."""
    app.driven.append(agent)

    async def consume() -> None:
        await agent.run()

    consume.__name__ = consume.__qualname__ = agent.name
    app.task(consume)
    return agent
