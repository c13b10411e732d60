"""Agent `item_purchased`: publishes every `ItemPurchased` to the public topic `item-purchased`, at least once.

The message is the versioned JSON document of `schemas/item_purchased.v1.json`, keyed by member id; `eventId`
identifies it, so a consumer drops the duplicates that at-least-once delivery can bring. Each partition of
`cart-events` is published in offset order with no gap, whatever Faust delivers (app/streams/in_order.py).
"""

from __future__ import annotations

from typing import Any

import faust

from app.cart.rules import ItemPurchased
from app.cart.stored_event import StoredEvent
from app.streams.faust_app import app, cart_events_topic, guarded, item_purchased_topic, stored_event, through_guard
from app.streams.in_order import TablePositions
from schemas.records import CartEventRecord
from tables.hydrators import item_purchased_positions

SCHEMA_VERSION = 1


def item_purchased_document(stored: StoredEvent) -> dict[str, Any] | None:
    if not isinstance(stored.event, ItemPurchased):
        return None
    item = stored.event.item
    return {
        "schemaVersion": SCHEMA_VERSION,
        "eventId": str(stored.event_id),
        "memberId": str(stored.member_id),
        "cartId": str(stored.cart_id),
        "productId": str(item.product_id),
        "vendorId": str(item.vendor_id),
        "name": item.name,
        "price": str(item.price),
        "quantity": item.quantity,
        "purchasedAt": stored.event.purchased_at.isoformat(),
    }


async def publish(partition: int, offset: int, stored: StoredEvent | None) -> None:
    document = item_purchased_document(stored) if stored is not None else None
    if document is not None:
        await (await item_purchased_topic.send(key=document["memberId"], value=document))
    # Durable with the table's next changelog flush; a crash before that publishes again (at least once).
    positions.record(partition, offset)


positions = TablePositions(item_purchased_positions)
guard = guarded("item_purchased", cart_events_topic, positions, stored_event, publish)


@app.agent(cart_events_topic, concurrency=1)
async def item_purchased(stream: faust.StreamT[CartEventRecord]) -> None:
    async for event in stream.events():
        await through_guard(guard, stored_event, event)
