"""What the owners of Cassandra read-model rows (`popular_items`, `vendor_billing`) share: one loop.

For each update: apply it to the row kept in the agent's table (an update already in the row's marks changes
nothing), make the table durable, then write the row's absolute value with `write`, then record the offset
(durable with the next flush). A crash before that repeats the update, which the marks absorb, and the write,
which is harmless. Each partition is processed in offset
order with no gap, whatever Faust delivers (app/streams/in_order.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

from app.query_side.projections import RowState, RowUpdate
from app.streams.faust_app import flush_changelogs, guarded, through_guard
from app.streams.in_order import InOrder, TablePositions

Write = Callable[[tuple[str, ...], RowState], Awaitable[None]]


def row_owner(agent: str, topic: faust.TopicT, rows: Any, write: Callable[[], Awaitable[Write]]) -> InOrder[RowUpdate]:
    positions = TablePositions(rows)

    async def apply_update(partition: int, offset: int, update: RowUpdate | None) -> None:
        if update is not None:
            new_state = RowState.from_dict(rows.get(update.key)).apply(update)
            # Written even when the update was in the row already (a replay): the local store can be ahead of the
            # changelog after a crash mid-flush, and the next owner of the partition restores from the changelog.
            rows[update.key] = new_state.to_dict()
            await flush_changelogs()
            await (await write())(update.row, new_state)
        positions.record(partition, offset)

    return guarded(agent, topic, positions, RowUpdate.from_dict, apply_update)


async def own_rows(stream: faust.StreamT[dict[str, Any]], guard: InOrder[RowUpdate]) -> None:
    async for event in stream.events():
        await through_guard(guard, RowUpdate.from_dict, event)
