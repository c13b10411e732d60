"""Agent `popular_items`: the owner of `item_quantity_by_day` rows (and `popular_items_by_day`).

Keeps each row's quantity and marks in table `popular_items_rows`, then writes the row's absolute value to
Cassandra. A replayed update changes nothing but the write is repeated, which is harmless (see app.read_models).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faust

from app.faust_app import app, decoded, flush_changelogs, popular_items_updates_topic, process_reliably
from app.projections import RowState, RowUpdate
from app.runtime import process_runtime
from tables.projections import popular_items_rows


@app.agent(popular_items_updates_topic, concurrency=1)
async def popular_items(stream: faust.StreamT[dict[str, Any]]) -> None:
    async for value in stream:
        update = decoded("row update", partial(RowUpdate.from_dict, value))
        if update is not None:
            await process_reliably(f"update of {update.key}", partial(project, update))


async def project(update: RowUpdate) -> None:
    state = RowState.from_dict(popular_items_rows.get(update.key))
    new_state = state.apply(update)
    if new_state is not state:
        popular_items_rows[update.key] = new_state.to_dict()
        await flush_changelogs()
    await (await process_runtime().read_models()).write_popular_item(update.row, new_state)
