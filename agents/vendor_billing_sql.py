"""Agent `vendor_billing_sql`: vendor billing in PostgreSQL (the original's vendor-billing-jdbc).

PostgreSQL has transactions, so a batch's balance changes and the consumed positions commit together, one
transaction per partition and batch (app.query_side.read_models.PostgresVendorBilling.apply_batch), and no table is
needed. Each partition is processed in offset order with no gap, whatever Faust delivers (app/streams/in_order.py);
the last offset applied is read back from PostgreSQL.
"""

from __future__ import annotations

from app.query_side.projections import RowUpdate, updates_of
from app.runtime import process_runtime
from app.streams.batches import query_agent
from app.streams.faust_app import vendor_billing_updates_topic
from app.streams.in_order import Delivered


class SqlPositions:
    async def last(self, partition: int) -> int | None:
        return await (await process_runtime().vendor_billing_sql()).last_offset(partition)


async def apply_updates(partition: int, messages: Delivered[list[RowUpdate]]) -> None:
    await (await process_runtime().vendor_billing_sql()).apply_batch(partition, messages)


vendor_billing_sql = query_agent(
    vendor_billing_updates_topic, "vendor_billing_sql", updates_of, SqlPositions(), apply_updates
)
