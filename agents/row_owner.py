"""What the owners of Cassandra read-model rows (`popular_items`, `vendor_billing`) share: one function per batch.

For a run of one partition's updates: apply each to its row as kept in the agent's table (an update already in the
row's marks changes nothing), keep every touched row in the table and make the table durable, then write each
row's absolute value once with `write` (one write per row per batch, many rows per request), then record the offset
(durable with the next flush). A crash before that repeats the updates, which the marks absorb, and the writes,
which are harmless. Each partition is processed in offset order with no gap, whatever Faust delivers
(app/streams/in_order.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

from app.query_side.projections import Row, RowState, RowUpdate
from app.streams.batches import query_agent
from app.streams.faust_app import flush_changelogs
from app.streams.in_order import Delivered, TablePositions

Write = Callable[[list[tuple[Row, RowState]]], Awaitable[None]]


def row_owner(name: str, topic: faust.TopicT, rows: Any, write: Callable[[], Awaitable[Write]]) -> Any:
    """The agent `name` that owns the rows of one read model (kept in table `rows`, written with `write`)."""
    positions = TablePositions(rows)

    async def apply_updates(partition: int, messages: Delivered[RowUpdate]) -> None:
        touched: dict[str, tuple[Row, RowState]] = {}
        for _, update in messages:
            if update is not None:
                state = touched[update.key][1] if update.key in touched else RowState.from_dict(rows.get(update.key))
                touched[update.key] = (update.row, state.apply(update))
        # Written even when an update was in the row already (a replay): the local store can be ahead of the
        # changelog after a crash mid-flush, and the next owner of the partition restores from the changelog.
        for key, (_, state) in touched.items():
            rows[key] = state.to_dict()
        if touched:
            await flush_changelogs()
            await (await write())(list(touched.values()))
        positions.record(partition, messages[-1][0])

    return query_agent(topic, name, RowUpdate.from_dict, positions, apply_updates)
