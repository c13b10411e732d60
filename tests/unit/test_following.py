"""A query-side agent's batch after a retry (app/streams/following.py): what the first try recorded as processed is
not processed again, and table reads and writes go to the partition being processed. Bookkeeping written once per
interval (`Checkpointed`): read back at once, written entries first, and all of it before partitions go."""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import patch

from faust.streams import current_event

from app.settings import Settings
from app.streams.batches import Checkpointed, Delivered, TablePositions, attributed_to
from app.streams.following import FollowingAgent, OwnedPartition


class PartitionedTable(dict[str, Any]):
    """Stands in for a Faust table's partitioned keys: keys live under the current event's partition."""

    def _partition(self) -> int:
        event = current_event()
        assert event is not None, "table used outside a partition's context"
        return int(event.message.partition)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(f"{self._partition()}:{key}", default)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(f"{self._partition()}:{key}", value)


async def test_a_retried_batch_skips_what_was_recorded_and_each_partition_sees_its_own_keys() -> None:
    table = PartitionedTable()
    positions = TablePositions(table)
    seen: list[tuple[int, list[int]]] = []

    async def process(partition: int, messages: Delivered[str]) -> None:
        seen.append((partition, [offset for offset, _ in messages]))
        positions.record(partition, messages[-1][0])

    agent = FollowingAgent(None, "purchases", Settings(), "t", "o", positions, bytes.decode, process)
    await agent._one_partition(0, [(3, "a"), (4, "b")])
    await agent._one_partition(1, [(3, "c")])
    # The same batch again (a store did not answer the first time), and one message more on partition 0.
    await agent._one_partition(0, [(3, "a"), (4, "b"), (5, "d")])
    await agent._one_partition(1, [(3, "c")])
    assert seen == [(0, [3, 4]), (1, [3]), (0, [5])]
    assert dict(table) == {"0:@offset/0": 5, "1:@offset/1": 3}


class WriteLog(PartitionedTable):
    """A partitioned table that also keeps the order of its writes (what its changelog would carry)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[int, str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((self._partition(), key, value))
        super().__setitem__(key, value)


def in_partition(partition: int) -> Any:
    return attributed_to(OwnedPartition("o", partition))


def test_checkpointed_bookkeeping_is_read_back_at_once_and_written_once_per_interval_entries_before_offset() -> None:
    table = WriteLog()
    book = Checkpointed(table, TablePositions(table), every_s=3600)
    with in_partition(0):
        book.set(0, "m1", 1)
        book.processed(0, 10)  # the partition's first: written at once
        assert table.writes == [(0, "m1", 1), (0, "@offset/0", 10)]
        book.set(0, "m1", 2)
        book.set(0, "m2", 1)
        book.processed(0, 11)  # within the interval: kept, and read back from here
        assert len(table.writes) == 2
        assert (book.get(0, "m1"), book.get(0, "m2"), table.get("m1")) == (2, 1, 1)
    with in_partition(1):
        assert book.get(1, "m1") is None  # another partition's keys are its own
    assert book.pending() == [0]
    with in_partition(0):
        book.checkpoint(0)
    # The entries, then the offset: once the offset is durable (the same changelog partition, in order), so are they.
    assert table.writes[2:] == [(0, "m1", 2), (0, "m2", 1), (0, "@offset/0", 11)]
    assert book.pending() == []


def test_checkpointed_bookkeeping_is_written_again_once_its_interval_has_passed() -> None:
    table = WriteLog()
    book = Checkpointed(table, TablePositions(table), every_s=0.05)
    with in_partition(0):
        book.processed(0, 1)
        book.set(0, "m", 5)
        book.processed(0, 2)
        assert table.writes == [(0, "@offset/0", 1)]
        time.sleep(0.06)
        book.processed(0, 3)
    assert table.writes[1:] == [(0, "m", 5), (0, "@offset/0", 3)]


async def test_a_following_agent_writes_its_pending_bookkeeping_before_partitions_go_and_forgets_it() -> None:
    table = WriteLog()
    positions = TablePositions(table)
    book = Checkpointed(table, positions, every_s=3600)

    async def process(partition: int, messages: Delivered[str]) -> None:
        for offset, value in messages:
            book.set(partition, str(value), offset)
        book.processed(partition, messages[-1][0])

    agent = FollowingAgent(None, "purchases", Settings(), "t", "o", positions, bytes.decode, process, checkpointed=book)
    flushed: list[list[tuple[int, str, Any]]] = []

    async def flush() -> None:
        flushed.append(list(table.writes))

    with patch("app.streams.faust_app.flush_changelogs", flush):
        for partition in (0, 1):
            await agent._one_partition(partition, [(3, "a")])  # each partition's first: written at once
        await agent._one_partition(0, [(4, "b"), (5, "c")])
        await agent._one_partition(1, [(4, "d")])
        assert len(table.writes) == 4 and book.pending() == [0, 1]
        await agent.on_revoked()
    # Written, each to its own partition, before the changelogs' flush; then nothing is held for partitions gone.
    assert flushed == [table.writes]
    assert table.writes[4:] == [(0, "b", 4), (0, "c", 5), (0, "@offset/0", 5), (1, "d", 4), (1, "@offset/1", 4)]
    assert book.pending() == []
    with in_partition(0):
        assert book.get(0, "c") == 5  # from the table now


async def test_a_retried_batch_skips_what_the_first_try_processed_before_its_checkpoint_is_written() -> None:
    """`Checkpointed` is the agent's positions: the offset processed is read from memory between checkpoints."""
    table = WriteLog()
    book = Checkpointed(table, TablePositions(table), every_s=3600)
    seen: list[list[int]] = []

    async def process(partition: int, messages: Delivered[str]) -> None:
        seen.append([offset for offset, _ in messages])
        book.processed(partition, messages[-1][0])

    agent = FollowingAgent(None, "purchases", Settings(), "t", "o", book, bytes.decode, process, checkpointed=book)
    await agent._one_partition(0, [(3, "a")])  # the partition's first: written at once
    await agent._one_partition(0, [(4, "b"), (5, "c")])  # kept in memory
    await agent._one_partition(0, [(4, "b"), (5, "c"), (6, "d")])  # the same again (a store failed), and one more
    assert seen == [[3], [4, 5], [6]]
    assert table.writes == [(0, "@offset/0", 3)]
