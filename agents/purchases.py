"""Agent `purchases`: reads `cart-events` once for the whole query side. Each new `ItemPurchased` becomes one row
update per read model and one public message on `item-purchased` (schemas/item_purchased.v1.json, keyed by
member id, at least once: `eventId` lets a consumer drop what a crash repeats).

Duplicates (the same member_id and seq_nr again, which at-least-once emission can bring) are dropped with the
`absorbed_events` table; events that never arrived (the member's seq_nr skips ahead) are read from the journal.
Updates go to the topics the row owners read, to the partition of their read-model row (a repartition, so each
row has one owner), many to a message: per batch, one message per partition of each update topic
(app/query_side/projections.py). Updates and public messages are delivered before the events count as absorbed;
what is absorbed (and the offset processed) is written to the table every few seconds per partition (`Checkpointed`).
Each partition is processed in offset order with no gap: the agent reads cart-events with a consumer of its own,
from the offset its table records, at the partitions Faust assigns it (app/streams/following.py); the row
owners' marks rely on it.

One agent rather than one per output: every event crosses Kafka to the query side once, not once per consumer,
and the public topic inherits the duplicate filter (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any
from uuid import UUID

from app.command_side.command_bus import CartServiceUnavailable
from app.command_side.journal import NotIndexedYet
from app.query_side.projections import (
    PassingEvent,
    Purchase,
    RowUpdate,
    item_purchased_message,
    popular_items_update,
    projected_event_of_message,
    purchase_of,
    update_messages,
    vendor_billing_update,
)
from app.runtime import process_runtime
from app.streams.batches import Checkpointed, Delivered, TablePositions
from app.streams.faust_app import (
    cart_events_owners_topic,
    item_purchased_topic,
    kafka_producer,
    popular_items_updates_topic,
    settings,
    vendor_billing_updates_topic,
)
from app.streams.following import following_agent
from app.streams.outbox import Outbox
from app.streams.partitioning import partition_of
from tables.hydrators import absorbed_events

ROUTES = [(popular_items_update, popular_items_updates_topic), (vendor_billing_update, vendor_billing_updates_topic)]
# Each member's highest seq_nr absorbed and the offset processed (the agent's positions), written to the table every
# `projection_checkpoint_s` per partition (app/streams/batches.py, `Checkpointed`: why that is enough).
bookkeeping = Checkpointed(absorbed_events, TablePositions(absorbed_events), settings.projection_checkpoint_s)
public = item_purchased_topic.get_topic_name()


async def journal_range(member_id: UUID, first: int, last: int) -> list[Purchase | PassingEvent]:
    """The member's events first..last from the journal, as the cart-events messages would have given them. Its
    owner writes the member-keyed journal behind its answers (app/command_side/indexer.py), so if they are not all
    there yet, it is asked to index what it holds, and then they are; if it does not answer (it died, and its
    partition is not claimed yet), NotIndexedYet: the batch is taken again (process_reliably) until the next
    owner's claim has indexed them."""
    runtime = process_runtime()
    journal = await runtime.journal()
    wanted = list(range(first, last + 1))
    events = list(await journal.read(member_id, first, last))
    if [e.seq_nr for e in events] != wanted:
        try:
            await (await runtime.command_bus()).index_now(member_id)
        except CartServiceUnavailable as error:
            raise NotIndexedYet(f"events {first}..{last} of {member_id} are not in the journal yet: {error}") from error
        events = list(await journal.read(member_id, first, last))
        if [e.seq_nr for e in events] != wanted:
            raise NotIndexedYet(f"events {first}..{last} of {member_id} are not in the journal yet")
    member = str(member_id)
    return [PassingEvent(member, e.seq_nr) if (p := purchase_of(e)) is None else p for e in events]


async def forward_purchases(partition: int, messages: Delivered[Purchase | PassingEvent]) -> None:
    absorbed: dict[str, int] = {}  # member -> highest seq_nr forwarded, as of this run
    outbox = Outbox()  # the public messages and the updates, handed to the producer a batch per partition
    producer = kafka_producer()
    public_partitions = len(await producer.partitions_for(public))
    updates: dict[Any, list[RowUpdate]] = {topic: [] for _, topic in ROUTES}  # per update topic, in source order
    for offset, event in messages:
        if event is None:
            continue
        member = event.member if isinstance(event, PassingEvent) else event.member_id
        last = absorbed[member] if member in absorbed else bookkeeping.get(partition, member) or 0
        # Seen before (a duplicate emission): the entry is written again all the same, since after a crash
        # mid-flush the local store can be ahead of the changelog, from which the next owner restores.
        absorbed[member] = max(last, event.seq_nr)
        if event.seq_nr <= last:
            continue
        events: list[Purchase | PassingEvent] = [event]
        if event.seq_nr > last + 1:
            # Earlier events of this member never reached us (a late emission, or an emission lost in a crash): the
            # journal has them. A replay reads the same range, so their indexes are the same every time.
            events = await journal_range(UUID(member), last + 1, event.seq_nr)
        for index, purchase in enumerate(events):
            if isinstance(purchase, PassingEvent):
                continue  # no projection takes it, nor the public topic
            for project, topic in ROUTES:
                updates[topic].append(project(purchase, partition, offset, index))
            # Keyed by member, to the partition Kafka's partitioner gives the key (a keyed Topic.send's).
            to = partition_of(member, public_partitions)
            outbox.add(public, to, member.encode(), item_purchased_message(purchase))
    for topic, run in updates.items():
        for to, message in update_messages(run, partial(partition_of, partitions=settings.partitions)):
            outbox.add(topic.get_topic_name(), to, None, message)
    # Delivered before they count as absorbed: a crash in between resends them, which the row owners' marks absorb
    # (and the public topic's consumers, by eventId).
    await asyncio.gather(*(delivery.acknowledged for delivery in await outbox.send(producer)))
    for member, seq_nr in absorbed.items():
        bookkeeping.set(partition, member, seq_nr)
    bookkeeping.processed(partition, messages[-1][0])


purchases = following_agent(
    "purchases",
    settings.topic_events,
    cart_events_owners_topic,
    bookkeeping,
    projected_event_of_message,
    forward_purchases,
    checkpointed=bookkeeping,
)
