"""Taking a topic's messages in batches, per partition in offset order, and acknowledging nothing not processed.

Every agent is a short function over a batch. `batched_agent` registers the Faust agent: Faust delivers the
agent's input into a queue all the time, and the agent takes what has arrived (`Batches`: at most `max_batch`
messages; with `within` > 0 it waits that long for more once one is there, if the batch before had more than one,
and `within_behind` if the batch before was of a backlog),
decodes each message (None for a malformed one: nothing could ever process it, so it is skipped, not retried),
groups the batch by partition and hands the agent's function

- `process(batch)`: the whole batch at once, `{partition: [(offset, value), ...]}` (the command side, which writes
  a batch with one fenced write), or
- `process_partition(partition, messages)`: each partition's run of messages, every partition of the batch
  concurrently (the query side), through the agent's in-order guard when it has one (app/streams/in_order.py):
  messages processed before are dropped, messages never delivered are read from Kafka first.

Then it flushes the producer once (everything the batch sent, table changelogs included), and only then does it
acknowledge the batch's messages to Faust, in the order they came, so Faust never commits past one not processed.
A store that does not answer is retried until it does; anything else ends the process without acknowledging
(`process_reliably`), so the batch is delivered again after a restart.

After taking a batch, the agent tells the worker's fetch pacing whether it is behind (a full batch, or more
waiting): app/streams/fetch_pacing.py.

Faust tables assign a key to the partition of the message being processed (its `current_event`); a batch spans
partitions, so each partition's work runs with one of its own events as the current event (`attributed_to`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Generic, TypeVar

import faust
from faust.streams import _current_event

from app.streams.in_order import Delivered, InOrder, Positions

log = logging.getLogger(__name__)
T = TypeVar("T")

Batch = Mapping[int, Delivered[T]]
"""A batch by partition: each partition's messages as (offset, value), in offset order."""


@contextmanager
def attributed_to(event: faust.EventT[Any]) -> Any:
    """Table writes in this block go to the partition of `event` (Faust reads it from a context variable, which
    asyncio copies into each task, so concurrent partitions do not see each other's)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def by_partition(
    what: str, events: Sequence[faust.EventT[Any]], decode: Callable[[Any], T]
) -> dict[int, list[tuple[faust.EventT[Any], int, T | None]]]:
    from app.streams.faust_app import decoded

    grouped: dict[int, list[tuple[faust.EventT[Any], int, T | None]]] = defaultdict(list)
    for event in events:
        message = event.message
        where = f"{what} at {message.topic}[{message.partition}]@{message.offset}"
        value = decoded(where, partial(decode, event.value))
        grouped[message.partition].append((event, message.offset, value))
    for messages in grouped.values():
        messages.sort(key=lambda m: m[1])
    return grouped


async def next_batch(arrived: asyncio.Queue[T], max_batch: int, within: float) -> list[T]:
    """Wait for a message, then take every message that has arrived, at most `max_batch`; with `within` > 0, wait
    that long for more if fewer than `max_batch` have (fewer, larger batches at the price of latency).

    The wait looks at the queue every eighth of `within` (at least every millisecond) rather than waiting for each
    message with `asyncio.wait_for`, which makes a task and a timer per message."""
    batch = [await arrived.get()]
    deadline = time.monotonic() + within
    step = max(within / 8, 0.001)
    while True:
        while len(batch) < max_batch and not arrived.empty():
            batch.append(arrived.get_nowait())
        left = deadline - time.monotonic()
        if len(batch) >= max_batch or left <= 0:
            return batch
        await asyncio.sleep(min(left, step))


class Batches(Generic[T]):
    """The batches of an agent's input: `next()` takes what has arrived (`next_batch`), waiting up to `within` for
    more only when the batch before had company (more than one message), and up to `within_behind` (if longer)
    when the batch before was `behind` (its newest message old: the agent is working through a backlog).

    Under load the wait makes fewer, larger batches (on the command side, fewer conditional writes per command);
    at a light load, where a batch is one message and waiting would add nothing to it, a message is taken at once:
    with the command agent's 3 ms wait always on, a command at 20/s was answered 6-7 ms later (p50,
    docs/benchmarks.md, 2026-12-03). Behind, nobody waits on a message that is old already, and the larger
    batches cost less per message (a query worker's catch-up, docs/benchmarks.md 2026-12-03)."""

    def __init__(
        self,
        arrived: asyncio.Queue[T],
        max_batch: int,
        within: float,
        within_behind: float = 0.0,
        behind: Callable[[Sequence[T]], bool] = lambda _: False,
    ) -> None:
        self.arrived, self.max_batch, self.within = arrived, max_batch, within
        self.within_behind, self.behind = within_behind, behind
        self.last, self.was_behind = 0, False

    def wait(self) -> float:
        """How long the next batch waits for more, from the batch before."""
        if self.was_behind:
            return max(self.within, self.within_behind)
        if self.last > 1:
            return self.within
        return 0.0

    async def next(self) -> list[T]:
        batch = await next_batch(self.arrived, self.max_batch, self.wait())
        self.last, self.was_behind = len(batch), self.behind(batch)
        return batch


BEHIND_S = 1.0  # a batch whose newest message is older than this is part of a backlog


def behind_by_age(events: Sequence[faust.EventT[Any]]) -> bool:
    """The batch's newest message was produced more than BEHIND_S ago (by its Kafka timestamp)."""
    timestamp = events[-1].message.timestamp
    return timestamp is not None and time.time() - timestamp > BEHIND_S


def batched_agent(
    app: faust.App,
    topic: faust.TopicT,
    name: str,
    decode: Callable[[Any], T],
    *,
    process: Callable[[Batch[T]], Awaitable[None]] | None = None,
    process_partition: Callable[[int, Delivered[T]], Awaitable[None]] | None = None,
    guard: InOrder[T] | None = None,
    max_batch: int = 1000,
    within: float = 0.005,
    within_behind: float = 0.0,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """Register agent `name` on `topic`; exactly one of `process` (the whole batch) and `process_partition` (each
    partition's messages, concurrently; through `guard` if given, whose `process` must be `process_partition`).
    `on_stop` is awaited when the agent stops (work a `process` left running)."""
    from app.streams.faust_app import flush_changelogs, process_reliably, report_backlog

    if (process is None) == (process_partition is None):
        raise ValueError("give exactly one of process and process_partition")

    async def one_partition(partition: int, messages: list[tuple[faust.EventT[Any], int, T | None]]) -> None:
        run = [(offset, value) for _, offset, value in messages]
        with attributed_to(messages[-1][0]):
            if guard is not None:
                await guard.deliver(partition, run)
            else:
                assert process_partition is not None
                await process_partition(partition, run)

    async def run_batch(events: Sequence[faust.EventT[Any]]) -> None:
        grouped = by_partition(f"{name} input", events, decode)
        if process is not None:
            await process({p: [(offset, value) for _, offset, value in messages] for p, messages in grouped.items()})
        else:
            # Every partition finishes (or fails) before the batch is retried: never two runs of one partition.
            outcomes = await asyncio.gather(
                *(one_partition(p, messages) for p, messages in grouped.items()), return_exceptions=True
            )
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                raise failed[0]
        await flush_changelogs()

    async def agent(stream: faust.StreamT[Any]) -> None:
        # Acknowledged here, after each batch, in the order delivered (each partition's in offset order).
        stream.enable_acks = False
        arrived: asyncio.Queue[faust.EventT[Any]] = asyncio.Queue(maxsize=max_batch * 4)

        async def take_in() -> None:
            # Faust delivers into the queue while a batch is processed, so the next batch is ready when this one
            # is done: the batch grows with the load (Faust's `take_events` stops delivering while a batch runs).
            async for event in stream.events():
                await arrived.put(event)

        taking = asyncio.ensure_future(take_in())
        batches = Batches(arrived, max_batch, within, within_behind, behind_by_age)
        try:
            while True:
                events = await batches.next()
                report_backlog(name, len(events) >= max_batch or not arrived.empty())
                await process_reliably(f"{name} batch of {len(events)}", partial(run_batch, events))
                for event in events:
                    await stream.ack(event)
        finally:
            taking.cancel()
            if on_stop is not None:
                await on_stop()

    agent.__name__ = name
    agent.__qualname__ = name
    return app.agent(topic, name=name, concurrency=1)(agent)


def query_agent(
    topic: faust.TopicT,
    name: str,
    decode: Callable[[Any], T],
    positions: Positions,
    process: Callable[[int, Delivered[T]], Awaitable[None]],
) -> Any:
    """A query-side agent: each partition's messages, in batches, through an in-order guard over `positions`."""
    from app.streams.faust_app import app, guarded, settings

    guard = guarded(name, topic, positions, decode, process)
    return batched_agent(
        app,
        topic,
        name,
        decode,
        process_partition=process,
        guard=guard,
        max_batch=settings.projection_batch_max,
        within=settings.projection_batch_within_s,
        within_behind=settings.projection_batch_within_behind_s,
    )
