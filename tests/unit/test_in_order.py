"""The in-order guard's decisions (app/streams/in_order.py), over a log held in memory. Against real Kafka, the log
reader is tested in tests/integration/test_kafka_log.py and the whole guard, with Faust skipping messages, in
tests/e2e/test_read_models.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from app.streams.in_order import InOrder, stalled

TOPIC = "t"


class MemoryLog:
    """A topic partition's messages from `start` on: what KafkaLog reads from Kafka."""

    def __init__(self, values: list[str], start: int = 0) -> None:
        self.values, self.start = values, start
        self.reads: list[tuple[int, int]] = []

    async def beginning(self, topic: str, partition: int) -> int:
        return self.start

    async def read(self, topic: str, partition: int, start: int, end: int) -> AsyncGenerator[tuple[int, bytes]]:
        self.reads.append((start, end))
        for offset in range(max(start, self.start), end):
            yield offset, self.values[offset - self.start].encode()


class Agent:
    """Processes values into a list and records offsets, as an agent records them with its effects."""

    def __init__(self, log: MemoryLog, drop_every: int = 0) -> None:
        self.log = log
        self.offsets: dict[int, int] = {}
        self.processed: list[tuple[int, str | None]] = []
        self.runs: list[int] = []
        self.guard: InOrder[str] = InOrder(
            "agent",
            TOPIC,
            self,
            lambda raw: raw.decode() if raw else None,
            self.process,
            lambda: log,
            drop_every,  # type: ignore[arg-type,return-value]
        )

    async def last(self, partition: int) -> int | None:
        return self.offsets.get(partition)

    async def process(self, partition: int, messages: Sequence[tuple[int, str | None]]) -> None:
        assert [o for o, _ in messages] == list(range(messages[0][0], messages[0][0] + len(messages))), messages
        self.processed.extend(messages)
        self.runs.append(len(messages))
        self.offsets[partition] = messages[-1][0]

    async def deliver(self, *offsets: int) -> None:
        """Each offset as a batch of its own."""
        for offset in offsets:
            await self.deliver_batch(offset)

    async def deliver_batch(self, *offsets: int) -> None:
        await self.guard.deliver(0, [(o, self.log.values[o - self.log.start]) for o in offsets])


async def test_messages_delivered_in_order_are_processed_once_each() -> None:
    agent = Agent(MemoryLog(["a", "b", "c"]))
    await agent.deliver(0, 1, 2)
    assert agent.processed == [(0, "a"), (1, "b"), (2, "c")]
    assert agent.log.reads == []


async def test_a_message_delivered_again_is_ignored() -> None:
    agent = Agent(MemoryLog(["a", "b", "c"]))
    await agent.deliver(0, 1, 2, 1, 0, 2)  # Faust seeking back to the committed offset after a rebalance
    assert agent.processed == [(0, "a"), (1, "b"), (2, "c")]


async def test_offsets_never_delivered_are_read_from_the_log_and_processed_first_in_order() -> None:
    agent = Agent(MemoryLog(["a", "b", "c", "d", "e", "f"]))
    await agent.deliver(0, 4)  # 1..3 skipped by the consumer (and acknowledged: Faust will not send them)
    assert agent.processed == [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")]
    assert agent.log.reads == [(1, 4)]
    await agent.deliver(1, 2, 3, 5)  # delivered late after all: already processed
    assert [o for o, _ in agent.processed] == [0, 1, 2, 3, 4, 5]


async def test_an_agent_with_no_position_starts_at_the_beginning_of_the_log() -> None:
    agent = Agent(MemoryLog(["x", "y", "z"], start=10))  # older messages deleted by retention
    await agent.deliver(12)  # e.g. Faust started at a committed offset the agent's state never reached
    assert agent.processed == [(10, "x"), (11, "y"), (12, "z")]


async def test_a_dropped_first_delivery_is_processed_when_a_later_message_or_a_redelivery_comes() -> None:
    agent = Agent(MemoryLog(["a", "b", "c", "d"]), drop_every=2)
    await agent.deliver(0)  # dropped: first delivery of an even offset
    assert agent.processed == []
    await agent.deliver(1)  # the gap is read from the log
    await agent.deliver(2)  # dropped
    await agent.deliver(2)  # a redelivery (after a seek back) goes through
    assert agent.processed == [(0, "a"), (1, "b"), (2, "c")]


async def test_a_batch_is_processed_as_one_run_in_offset_order() -> None:
    agent = Agent(MemoryLog(["a", "b", "c", "d"]))
    await agent.deliver_batch(0, 1, 2, 3)
    assert agent.processed == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]
    assert agent.runs == [4]


async def test_a_batch_with_holes_and_repeats_is_processed_once_each_with_the_holes_read_from_the_log() -> None:
    agent = Agent(MemoryLog(["a", "b", "c", "d", "e", "f", "g"]))
    await agent.deliver_batch(0, 1)
    await agent.deliver_batch(1, 3, 3, 6)  # 1 again, 2 and 4..5 never delivered, 3 twice
    assert agent.processed == [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e"), (5, "f"), (6, "g")]
    assert agent.log.reads == [(2, 3), (4, 6)]


async def test_a_long_run_is_handed_over_in_parts_of_at_most_max_run() -> None:
    agent = Agent(MemoryLog([str(n) for n in range(10)]))
    object.__setattr__(agent.guard, "max_run", 4)
    await agent.deliver_batch(9)  # 0..8 read from the log
    assert [o for o, _ in agent.processed] == list(range(10))
    assert max(agent.runs) <= 4


@pytest.mark.parametrize(
    ("last", "committed", "seek"),
    [
        (None, 0, None),  # nothing committed, nothing processed: nothing to do
        (4, 5, None),  # committed right after the last processed offset: normal
        (5, 5, None),  # processed beyond what is committed: normal (commits lag)
        (4, 7, 5),  # committed past 5 and 6, which the agent never processed: seek back to 5
        (None, 3, 0),  # committed, yet the agent has processed nothing: from the beginning
    ],
)
async def test_a_partition_committed_beyond_what_an_agent_processed_is_stalled(
    last: int | None, committed: int, seek: int | None
) -> None:
    agent = Agent(MemoryLog(["a"] * 10))
    if last is not None:
        agent.offsets[0] = last
    committed_offsets = {(TOPIC, 0): committed, ("other", 0): 99}
    found = await stalled([agent.guard], [(TOPIC, 0), ("other", 0)], committed_offsets, {(TOPIC, 0): 10})
    assert found == ({} if seek is None else {(TOPIC, 0): seek})


async def test_a_committed_offset_beyond_the_end_of_the_partition_counts_as_the_end() -> None:
    """The group committed 500 on a topic since deleted and created again with 10 messages: Faust will not commit
    below 500, so only the end (10) can tell whether the agent is behind."""
    agent = Agent(MemoryLog(["a"] * 10))
    agent.offsets[0] = 9
    assert await stalled([agent.guard], [(TOPIC, 0)], {(TOPIC, 0): 500}, {(TOPIC, 0): 10}) == {}
    agent.offsets[0] = 6
    assert await stalled([agent.guard], [(TOPIC, 0)], {(TOPIC, 0): 500}, {(TOPIC, 0): 10}) == {(TOPIC, 0): 7}


async def test_two_agents_on_one_partition_seek_back_to_the_one_furthest_behind() -> None:
    log = MemoryLog(["a"] * 10)
    ahead, behind = Agent(log), Agent(log)
    ahead.offsets[0], behind.offsets[0] = 6, 2
    guards: list[InOrder[Any]] = [ahead.guard, behind.guard]
    assert await stalled(guards, [(TOPIC, 0)], {(TOPIC, 0): 9}, {(TOPIC, 0): 10}) == {(TOPIC, 0): 3}
