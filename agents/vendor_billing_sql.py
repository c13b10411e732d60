"""Agent `vendor_billing_sql`: vendor billing in PostgreSQL (the original's vendor-billing-jdbc).

PostgreSQL has transactions, so the balance change and the consumed position commit together
(app.read_models.PostgresVendorBilling) and no table is needed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faust

from app.faust_app import app, decoded, process_reliably, vendor_billing_updates_topic
from app.projections import RowUpdate
from app.runtime import process_runtime


@app.agent(vendor_billing_updates_topic, concurrency=1)
async def vendor_billing_sql(stream: faust.StreamT[dict[str, Any]]) -> None:
    async for event in stream.events():
        update = decoded("row update", partial(RowUpdate.from_dict, event.value))
        if update is not None:
            await process_reliably(f"update of {update.key}", partial(apply, update, event.message.partition))


async def apply(update: RowUpdate, partition: int) -> None:
    await (await process_runtime().vendor_billing_sql()).apply(update, partition)
