"""Agent `item_purchased`: publishes every `ItemPurchased` to the public topic `item-purchased`, at least once.

The message is the versioned JSON document of `schemas/item_purchased.v1.json`, keyed by member id; `eventId`
identifies it, so a consumer drops the duplicates that at-least-once delivery can bring.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import faust

from app.cart import ItemPurchased
from app.cart_state import StoredEvent
from app.faust_app import app, cart_events_topic, decoded, item_purchased_topic, process_reliably
from schemas.records import CartEventRecord

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


@app.agent(cart_events_topic, concurrency=1)
async def item_purchased(stream: faust.StreamT[CartEventRecord]) -> None:
    async for record in stream:
        stored = decoded("cart event", partial(StoredEvent.from_dict, record.asdict()))
        document = item_purchased_document(stored) if stored is not None else None
        if document is not None:
            await process_reliably(f"publish {document['eventId']}", partial(publish, document))


async def publish(document: dict[str, Any]) -> None:
    await (await item_purchased_topic.send(key=document["memberId"], value=document))
