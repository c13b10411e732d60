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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from app.settings import Settings
from app.streams.batches import Delivered, wait_for_company
from app.streams.kafka_clients import kafka_options

log = logging.getLogger(__name__)
T = TypeVar("T")
A = TypeVar("A", bound="ConsumingAgent[Any]")


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


def decoded_all(
    name: str, tp: Any, messages: Sequence[Any], decode: Callable[[bytes | None], T]
) -> list[tuple[int, T | None]]:
    """(offset, content) of each message of `tp`, content None (logged) when the message is malformed: nothing can
    ever process it, so it is skipped rather than crash-looping the worker. (A loop here, and the message named only
    when it is malformed: an f-string and a partial per message were 3% of the projection worker's samples.)"""
    out: list[tuple[int, T | None]] = []
    for m in messages:
        try:
            out.append((m.offset, decode(m.value)))
        except (KeyError, TypeError, ValueError) as error:
            log.error("skipping malformed %s input at %s[%s]@%s: %s", name, tp.topic, tp.partition, m.offset, error)
            out.append((m.offset, None))
    return out


class ConsumingAgent(Generic[T]):
    """What an agent that drives its own consumer does, whoever decides its partitions: fetch a batch (waiting for
    company, `_wait`), keep what is of its partitions, decode it, process it reliably under `_processing` (which a
    rebalance waits for), and commit what was processed every `commit_every_s`, when partitions go (`_let_go`) and
    when it stops. Subclasses say how the consumer is made and owns partitions, and how a batch is processed."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        topic: str,
        decode: Callable[[bytes | None], T],
        max_batch: int,
        commit_every_s: float = 1.0,
    ) -> None:
        self.name, self.settings, self.topic, self.decode = name, settings, topic, decode
        self.max_batch, self.commit_every_s = max_batch, commit_every_s
        self.partitions: frozenset[int] = frozenset()
        self._consumer: AIOKafkaConsumer | None = None
        self._processing = asyncio.Lock()  # held while a batch is processed; a rebalance waits for it
        self._processed: dict[TopicPartition, int] = {}  # the next offset to commit, per partition
        self._committed: dict[TopicPartition, int] = {}
        self._stopping = False
        self._running: asyncio.Future[None] | None = None
        self._last = 0  # messages in the batch before

    def _new_consumer(self) -> AIOKafkaConsumer:
        raise NotImplementedError

    async def _ready(self, consumer: AIOKafkaConsumer) -> bool:
        """Before each fetch: whether there is anything to read now."""
        return True

    def _wait(self) -> float:
        """How long the next batch waits for company."""
        raise NotImplementedError

    def _took(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """What a batch says about the next one's wait."""
        self._last = sum(len(messages) for messages in fetched.values())

    async def _process_batch(self, batch: Mapping[int, Delivered[T]]) -> None:
        raise NotImplementedError

    async def settle(self) -> None:
        """Finish what the agent holds for its partitions (before they go, or it stops)."""

    async def run(self) -> None:
        """Consume until `stop`: the body of the app's task. A consumer that fails ends the process, as a failed
        batch does (`process_reliably`): a worker whose agent has stopped must not go on looking alive, and its
        restart (by `cart run`'s supervisor, or whatever runs the worker) starts the agent again."""
        try:
            await self._consume()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: its consumer failed; exiting so that the worker is started again", self.name)
            logging.shutdown()
            os._exit(1)

    async def _consume(self) -> None:
        consumer = self._consumer = self._new_consumer()
        self._running = asyncio.get_running_loop().create_future()
        committed_at = time.monotonic()
        try:
            await consumer.start()
            while not self._stopping:
                idle = True
                if await self._ready(consumer):
                    fetched = await fetch_batch(consumer, self.max_batch, self._wait())
                    if fetched:
                        idle = False
                        self._took(fetched)
                        await self._process(fetched)
                # Every `commit_every_s`, and as soon as there is nothing to read (so that the lag shows 0 when the
                # agent has caught up, not up to `commit_every_s` later).
                if time.monotonic() - committed_at >= self.commit_every_s or (idle and self._uncommitted()):
                    await self._commit()
                    committed_at = time.monotonic()
        finally:
            self._running.set_result(None)

    async def _process(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        from app.streams.faust_app import process_reliably

        async with self._processing:
            # Fetched before a rebalance took a partition: its new owner reads it.
            owned = {tp: messages for tp, messages in fetched.items() if tp.partition in self.partitions}
            if not owned:
                return
            batch = {tp.partition: decoded_all(self.name, tp, messages, self.decode) for tp, messages in owned.items()}
            count = sum(len(messages) for messages in batch.values())
            await process_reliably(f"{self.name} batch of {count}", partial(self._process_batch, batch))
            for tp, messages in owned.items():
                self._processed[tp] = messages[-1].offset + 1

    def _uncommitted(self) -> bool:
        return any(self._committed.get(tp) != offset for tp, offset in self._processed.items())

    async def _durable(self) -> None:
        """Before a commit: make durable what the processed batches wrote that is not yet."""

    async def _commit(self) -> None:
        """Commit what has been processed and not committed yet (made durable first: `_durable`)."""
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in self._processed.items() if tp in assigned and self._committed.get(tp) != o}
        if not offsets:
            return
        await self._durable()
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as error:
            # A rebalance under way (the revoke commits), or Kafka away: the next commit carries these offsets.
            log.warning("%s: committing offsets failed: %s", self.name, error)
            return
        self._committed.update(offsets)

    async def _let_go(self, revoked: Iterable[TopicPartition]) -> None:
        """Partitions are going (the caller holds `_processing`): finish, commit, forget them."""
        await self.settle()
        await self._commit()
        for tp in revoked:
            self._processed.pop(tp, None)
            self._committed.pop(tp, None)

    async def stop(self) -> None:
        """Stop taking batches, finish what is held, commit, and close the consumer (its partitions move at once)."""
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


class DrivenAgent(ConsumingAgent[T]):
    """The command agent's kind: a consumer in a group of its own, its partitions the group's assignment."""

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
        super().__init__(name, settings, topic, decode, max_batch, commit_every_s)
        self.group, self.process, self._settle, self.within = group, process, settle, within
        self.generation = 0

    def assignment(self) -> tuple[int, frozenset[int]]:
        """This worker's generation of assignments and the partitions it owns in it."""
        return self.generation, self.partitions

    def _new_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        consumer = AIOKafkaConsumer(
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
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        return consumer

    def _wait(self) -> float:
        return wait_for_company(self._last, False, self.within)

    async def _process_batch(self, batch: Mapping[int, Delivered[T]]) -> None:
        await self.process(batch)

    async def settle(self) -> None:
        await self._settle()

    async def on_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        async with self._processing:
            await self._let_go(revoked)

    def on_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self.generation += 1
        self.partitions = frozenset(tp.partition for tp in assigned if tp.topic == self.topic)
        log.info("%s: assigned partitions %s (generation %d)", self.name, sorted(self.partitions), self.generation)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, agent: DrivenAgent[Any]) -> None:
        self.agent = agent

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.agent.on_revoked(frozenset(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.agent.on_assigned(frozenset(assigned))


def driven_agent(app: Any, agent: A, task_name: str | None = None) -> A:
    """Run `agent` in the Faust worker of `app` (a task of the app; stopped first by `CartApp.on_stop`)."""
    app.driven.append(agent)

    async def consume() -> None:
        await agent.run()

    consume.__name__ = consume.__qualname__ = task_name or agent.name
    app.task(consume)
    return agent
