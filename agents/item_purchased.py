"""Agent `item_purchased`: publishes every `ItemPurchased` to the public topic `item-purchased`, at least once.

The message is the versioned JSON document of `schemas/item_purchased.v1.json`, keyed by member id; `eventId`
identifies it, so a consumer drops the duplicates that at-least-once delivery can bring. Each partition of
`cart-events` is published in offset order with no gap, whatever Faust delivers (app/streams/in_order.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.cart.rules import ItemPurchased
from app.cart.stored_event import StoredEvent
from app.streams.batches import query_agent
from app.streams.faust_app import cart_events_topic, item_purchased_topic, stored_event
from app.streams.in_order import Delivered, TablePositions
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


async def publish(partition: int, messages: Delivered[StoredEvent]) -> None:
    documents = [d for _, stored in messages if stored is not None and (d := item_purchased_document(stored))]
    await asyncio.gather(*[await item_purchased_topic.send(key=d["memberId"], value=d) for d in documents])
    # Durable with the table's next changelog flush; a crash before that publishes again (at least once).
    positions.record(partition, messages[-1][0])


positions = TablePositions(item_purchased_positions)
item_purchased = query_agent(cart_events_topic, "item_purchased", stored_event, positions, publish)
