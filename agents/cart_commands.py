"""Agent `cart_commands`: owns the partitions of `cart-commands`, and so those members' carts.

One command at a time per partition (concurrency 1: more could commit past an unprocessed command), in order;
`app.command_side.handler` does the work, this loop only wires it to the topic, the table and the replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from uuid import UUID

import faust

from app.cart.codec import member_cart_from_dict, member_cart_to_dict
from app.cart.member_cart import MemberCart
from app.cart.stored_event import StoredEvent
from app.command_side.handler import CommandHandler
from app.runtime import process_runtime
from app.streams.faust_app import (
    app,
    cart_commands_topic,
    cart_events_topic,
    cart_replies_topic,
    flush_changelogs,
    process_reliably,
    settings,
)
from schemas.records import CartEventRecord, CommandEnvelope
from tables.carts import carts


class TableCartStore:
    def get(self, member_id: UUID) -> MemberCart | None:
        value = carts.get(str(member_id))
        return member_cart_from_dict(value) if value else None

    def put(self, state: MemberCart) -> None:
        carts[str(state.member_id)] = member_cart_to_dict(state)


async def emit(events: Sequence[StoredEvent]) -> list[tuple[int, int]]:
    pending = [await cart_events_topic.send(key=str(e.member_id), value=CartEventRecord.of_event(e)) for e in events]
    # Delivered (acks=all) before the command is answered; the positions let a client read its own writes.
    positions = []
    for delivery in pending:
        metadata = await delivery
        positions.append((metadata.partition, metadata.offset))
    return positions


_handler: CommandHandler | None = None


async def handler() -> CommandHandler:
    global _handler
    if _handler is None:
        _handler = CommandHandler(
            journal=await process_runtime().journal(),
            carts=TableCartStore(),
            emit=emit,
            snapshot_every=settings.snapshot_every,
            crash_after_append=settings.crash_after_append,
        )
    return _handler


@app.agent(cart_commands_topic, concurrency=1)
async def cart_commands(envelopes: faust.StreamT[CommandEnvelope]) -> None:
    async for envelope in envelopes:
        await process_reliably(f"command {envelope.command_id}", partial(answer, envelope))


async def answer(envelope: CommandEnvelope) -> None:
    reply = await (await handler()).handle(envelope)
    # The table is a cache of the journal, but keeping it durable before the answer (and the commit) means a
    # restarted owner rarely has to find out from the journal that it is behind.
    await flush_changelogs()
    await cart_replies_topic.send(
        key=envelope.correlation_id,
        value=reply,
        partition=envelope.reply_partition,
    )
