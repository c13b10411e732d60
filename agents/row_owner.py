"""What the owners of Cassandra read-model rows (`popular_items`, `vendor_billing`) share: one function per batch.

For a run of one partition's messages (each holds updates, in source order): apply each update to its row as kept
in the agent's table (an update already in the row's marks changes nothing), keep every touched row in the table,
write each row's absolute value once with `write` (one write per row per batch, many rows per request), then record
the offset, in the same changelog partition as the rows and after them: what a crash leaves of that partition is a
prefix of its writes, so the offset durable is as of the rows durable (the changelogs are flushed before the reader
group's offsets are committed and before partitions go, not after each batch: app/streams/following.py). A crash
repeats the updates from the offset last made durable, which the marks absorb, and the writes, which are harmless:
replaying the same updates onto the state restored from the changelog gives the same values and versions again,
and a row and its tracking row (marks) are written `USING TIMESTAMP <version>`, so a replay's intermediate states
never overwrite what a reader saw: Cassandra being ahead of the changelog for a while changes nothing anyone reads.
(A flush of its own per partition, before the write, cost 5% of the query worker's CPU, bench 2026-12-02.) Each
partition is read in offset order with no gap, from the offset the table records (app/streams/following.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

from app.query_side.projections import Row, RowState, RowUpdate, updates_of
from app.streams.batches import Delivered, TablePositions
from app.streams.faust_app import cart_events_owners_topic
from app.streams.following import following_agent

Write = Callable[[list[tuple[Row, RowState]]], Awaitable[None]]


def row_owner(name: str, topic: faust.TopicT, rows: Any, write: Callable[[], Awaitable[Write]]) -> Any:
    """The agent `name` that owns the rows of one read model (kept in table `rows`, written with `write`)."""
    positions = TablePositions(rows)

    async def process(partition: int, messages: Delivered[list[RowUpdate]]) -> None:
        await apply_updates(rows, positions, await write(), partition, messages)

    return following_agent(name, topic.get_topic_name(), cart_events_owners_topic, positions, updates_of, process)


async def apply_updates(
    rows: Any, positions: TablePositions, write: Write, partition: int, messages: Delivered[list[RowUpdate]]
) -> None:
    """One partition's run of updates, as the module's docstring says."""
    touched: dict[str, tuple[Row, RowState]] = {}
    for _, updates in messages:
        for update in updates or ():
            state = touched[update.key][1] if update.key in touched else RowState.from_dict(rows.get(update.key))
            touched[update.key] = (update.row, state.apply(update))
    # Written even when an update was in the row already (a replay): the local store can be ahead of the
    # changelog after a crash mid-flush, and the next owner of the partition restores from the changelog.
    for key, (_, state) in touched.items():
        rows[key] = state.to_dict()
    if touched:
        await write(list(touched.values()))
    positions.record(partition, messages[-1][0])
