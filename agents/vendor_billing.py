"""Agent `vendor_billing`: the owner of `balance_by_vendor` rows in Cassandra.

Keeps each row's balance and marks in table `vendor_balance_rows`, then writes the absolute balance.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faust

from app.faust_app import app, decoded, flush_changelogs, process_reliably, vendor_billing_updates_topic
from app.projections import RowState, RowUpdate
from app.runtime import process_runtime
from tables.projections import vendor_balance_rows


@app.agent(vendor_billing_updates_topic, concurrency=1)
async def vendor_billing(stream: faust.StreamT[dict[str, Any]]) -> None:
    async for value in stream:
        update = decoded("row update", partial(RowUpdate.from_dict, value))
        if update is not None:
            await process_reliably(f"update of {update.key}", partial(project, update))


async def project(update: RowUpdate) -> None:
    state = RowState.from_dict(vendor_balance_rows.get(update.key))
    new_state = state.apply(update)
    if new_state is not state:
        vendor_balance_rows[update.key] = new_state.to_dict()
        await flush_changelogs()
    await (await process_runtime().read_models()).write_vendor_balance(update.row, new_state)
