"""What the owners of Cassandra read-model rows (`popular_items`, `vendor_billing`) share: one loop.

For each update: apply it to the row kept in the agent's table (a replay changes nothing), make the table durable,
then write the row's absolute value with `write`. A replayed update repeats the write, which is harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import faust

from app.faust_app import decoded, flush_changelogs, process_reliably
from app.projections import RowState, RowUpdate

Write = Callable[[tuple[str, ...], RowState], Awaitable[None]]


async def own_rows(stream: faust.StreamT[dict[str, Any]], rows: Any, write: Callable[[], Awaitable[Write]]) -> None:
    async for value in stream:
        update = decoded("row update", partial(RowUpdate.from_dict, value))
        if update is not None:
            await process_reliably(f"update of {update.key}", partial(absorb, rows, update, write))


async def absorb(rows: Any, update: RowUpdate, write: Callable[[], Awaitable[Write]]) -> None:
    state = RowState.from_dict(rows.get(update.key))
    new_state = state.apply(update)
    if new_state is not state:
        rows[update.key] = new_state.to_dict()
        await flush_changelogs()
    await (await write())(update.row, new_state)
