"""Agent `vendor_billing_sql`: vendor billing in PostgreSQL (the original's vendor-billing-jdbc).

PostgreSQL has transactions, so the balance change and the consumed positions commit together
(app.query_side.read_models.PostgresVendorBilling) and no table is needed. Each partition is processed in offset
order with no gap, whatever Faust delivers (app/streams/in_order.py); the last offset applied is read back from
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import faust

from app.query_side.projections import RowUpdate
from app.runtime import process_runtime
from app.streams.faust_app import app, guarded, through_guard, vendor_billing_updates_topic


class SqlPositions:
    async def last(self, partition: int) -> int | None:
        return await (await process_runtime().vendor_billing_sql()).last_offset(partition)


async def apply(partition: int, offset: int, update: RowUpdate | None) -> None:
    await (await process_runtime().vendor_billing_sql()).apply(update, partition, offset)


guard = guarded("vendor_billing_sql", vendor_billing_updates_topic, SqlPositions(), RowUpdate.from_dict, apply)


@app.agent(vendor_billing_updates_topic, concurrency=1)
async def vendor_billing_sql(stream: faust.StreamT[dict[str, Any]]) -> None:
    async for event in stream.events():
        await through_guard(guard, RowUpdate.from_dict, event)
