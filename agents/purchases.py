"""Agent `purchases`: reads `cart-events` and turns each new `ItemPurchased` into one row update per read model.

Duplicates (the same member_id and seq_nr again, which at-least-once emission can bring) are dropped with the
`absorbed_events` table; events that never arrived (the member's seq_nr skips ahead) are read from the journal.
Updates are sent, keyed by the read-model row, to the topics the row owners read (a repartition, so each row has
one owner), and delivered before the event counts as absorbed. Each partition is processed in offset order with
no gap, whatever Faust delivers (app/streams/in_order.py); the row owners' marks rely on it.
"""

from __future__ import annotations

import faust

from app.cart.stored_event import StoredEvent
from app.query_side.projections import popular_items_update, vendor_billing_update
from app.runtime import process_runtime
from app.streams.faust_app import (
    app,
    cart_events_topic,
    flush_changelogs,
    guarded,
    popular_items_updates_topic,
    stored_event,
    through_guard,
    vendor_billing_updates_topic,
)
from app.streams.in_order import TablePositions
from schemas.records import CartEventRecord
from tables.hydrators import absorbed_events

ROUTES = [(popular_items_update, popular_items_updates_topic), (vendor_billing_update, vendor_billing_updates_topic)]
positions = TablePositions(absorbed_events)


async def forward_purchases(partition: int, offset: int, stored: StoredEvent | None) -> None:
    if stored is not None:
        await forward_event(stored, partition, offset)
    positions.record(partition, offset)
    await flush_changelogs()


async def forward_event(stored: StoredEvent, partition: int, offset: int) -> None:
    member = str(stored.member_id)
    absorbed = absorbed_events.get(member) or 0
    if stored.seq_nr <= absorbed:
        # Seen before: a duplicate emission. Written again all the same: after a crash mid-flush the local store
        # can be ahead of the changelog, from which the next owner of the partition restores.
        absorbed_events[member] = absorbed
        return
    events = [stored]
    if stored.seq_nr > absorbed + 1:
        # Earlier events of this member never reached us (a late emission, or an emission lost in a crash): the
        # journal has them. A replay reads the same range, so their indexes are the same every time.
        journal = await process_runtime().journal()
        events = await journal.read(stored.member_id, absorbed + 1, stored.seq_nr)
    for index, event in enumerate(events):
        for project, topic in ROUTES:
            update = project(event, partition, offset, index)
            if update is not None:
                await (await topic.send(key=update.key, value=update.to_dict()))
    absorbed_events[member] = stored.seq_nr


guard = guarded("purchases", cart_events_topic, positions, stored_event, forward_purchases)


@app.agent(cart_events_topic, concurrency=1)
async def purchases(stream: faust.StreamT[CartEventRecord]) -> None:
    async for event in stream.events():
        await through_guard(guard, stored_event, event)
