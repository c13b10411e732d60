"""A query-side agent's batch after a retry (app/streams/following.py): what the first try recorded as processed is
not processed again, and table reads and writes go to the partition being processed."""

from __future__ import annotations

from typing import Any

from faust.streams import current_event

from app.settings import Settings
from app.streams.batches import Delivered, TablePositions
from app.streams.following import FollowingAgent


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
