"""Agent `vendor_billing_sql`: vendor billing in PostgreSQL (the original's vendor-billing-jdbc).

PostgreSQL has transactions, so a batch's balance changes and the consumed positions commit together, one
transaction per partition and batch (app.query_side.read_models.PostgresVendorBilling.apply_batch), and no table is
needed. Each partition is read in offset order with no gap, from the offset after the last one applied, which is
read back from PostgreSQL (app/streams/following.py).
"""

from __future__ import annotations

from app.query_side.projections import RowUpdate, updates_of
from app.runtime import process_runtime
from app.streams.batches import Delivered
from app.streams.faust_app import cart_events_owners_topic, settings
from app.streams.following import following_agent


class SqlPositions:
    async def last(self, partition: int) -> int | None:
        return await (await process_runtime().vendor_billing_sql()).last_offset(partition)


async def apply_updates(partition: int, messages: Delivered[list[RowUpdate]]) -> None:
    await (await process_runtime().vendor_billing_sql()).apply_batch(partition, messages)


vendor_billing_sql = following_agent(
    "vendor_billing_sql",
    settings.topic_vendor_billing_updates,
    cart_events_owners_topic,
    SqlPositions(),
    updates_of,
    apply_updates,
)
