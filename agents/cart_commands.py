"""Agent `cart_commands`: owns the partitions of `cart-commands`, and so those members' carts.

Takes what has arrived, in batches, with a consumer of its own (app/streams/driven.py); `app.command_side.handler`
does the work, this module only wires it to the topics: events to `cart-events`, answers to the `cart-replies`
partition each API listens on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from app.cart.stored_event import StoredEvent
from app.command_side.handler import CommandHandler, Position
from app.command_side.member_carts import MemberCarts
from app.runtime import process_runtime
from app.streams.batches import Delivered
from app.streams.driven import DrivenAgent, driven_agent
from app.streams.faust_app import app, cart_events_topic, cart_replies_topic, settings
from schemas.records import CommandEnvelope, CommandReply, event_message, reply_message


async def emit(events: Sequence[StoredEvent]) -> list[Position]:
    """Send the events (keyed by member) and wait until Kafka has them all (acks=all); where each went."""
    if settings.unemitted_command:  # fault injection: an emission lost
        return await _emit_but_lose([e for e in events], settings.unemitted_command)
    return await emit_all(events)


async def _emit_but_lose(events: list[StoredEvent], command_id: str) -> list[Position]:
    kept = [e for e in events if e.command_id != command_id]
    where = dict(zip((e.event_id for e in kept), await emit_all(kept), strict=True))
    return [where.get(e.event_id, (-1, -1)) for e in events]


# Events and replies go to the producer as bytes (schemas/records.py), not through Faust's topics: records built,
# then serialized, then wrapped in Faust's pending messages were a tenth of this worker's CPU.


async def emit_all(events: Sequence[StoredEvent]) -> list[Position]:
    topic = cart_events_topic.get_topic_name()
    pending = [
        await app.producer.send(topic, str(e.member_id).encode(), event_message(e), None, None, None) for e in events
    ]  # keyed by member (Kafka's partitioner, as a keyed Topic.send): a member's events stay in order
    return [(metadata.partition, metadata.offset) for metadata in await asyncio.gather(*pending)]


async def send(envelope: CommandEnvelope, reply: CommandReply) -> None:
    # Not waited for: the batch flushes the producer once at its end.
    topic, key = cart_replies_topic.get_topic_name(), envelope.correlation_id.encode()
    await app.producer.send(topic, key, reply_message(reply), envelope.reply_partition, None, None)


_handler: CommandHandler | None = None


async def settle() -> None:
    """On a clean stop, the batch still being finished is finished (answered), and everything appended is indexed,
    before the worker goes."""
    if _handler is not None:
        await _handler.settle()


async def handle(batch: Mapping[int, Delivered[CommandEnvelope]]) -> None:
    global _handler
    if _handler is None:
        _handler = CommandHandler(
            journal=await process_runtime().journal(),
            emit=emit,
            send=send,
            assignment=cart_commands.assignment,
            carts=MemberCarts(settings.cart_cache_size),
            snapshot_every=settings.snapshot_every,
            index_every_s=settings.index_every_s,
            index_max_pending=settings.index_max_pending,
            crash_after_append=settings.crash_after_append,
        )
    await _handler.handle(batch)


def envelope_of(raw: bytes | None) -> CommandEnvelope:
    """A command envelope as the API sends it (Faust's json of the record); KeyError, TypeError or ValueError when it
    is malformed."""
    if raw is None:
        raise TypeError("a command message without a value")
    envelope = CommandEnvelope.loads(raw, default_serializer="json")
    if not isinstance(envelope, CommandEnvelope):
        raise TypeError(f"not a command envelope: {envelope!r}")
    return envelope


cart_commands: DrivenAgent[CommandEnvelope] = driven_agent(
    app,
    DrivenAgent(
        "cart_commands",
        settings,
        settings.topic_commands,
        settings.command_group,
        envelope_of,
        process=handle,
        settle=settle,
        max_batch=settings.command_batch_max,
        within=settings.command_batch_within_s,
    ),
)
