"""Agent `cart_commands`: owns the partitions of `cart-commands`, and so those members' carts.

Takes what has arrived, in batches (app/streams/batches.py); `app.command_side.handler` does the work, this module
only wires it to the topics: events to `cart-events`, answers to the `cart-replies` partition each API listens on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.cart.stored_event import StoredEvent
from app.command_side.handler import CommandHandler, Position
from app.command_side.member_carts import MemberCarts
from app.runtime import process_runtime
from app.streams.batches import Batch, batched_agent
from app.streams.faust_app import app, cart_commands_topic, cart_events_topic, cart_replies_topic, settings
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


def assignment() -> tuple[int, frozenset[int]]:
    """This worker's consumer generation and the partitions of cart-commands it owns in it."""
    owned = frozenset(
        tp.partition for tp in app.consumer.assignment() if tp.topic == cart_commands_topic.get_topic_name()
    )
    return app.consumer_generation_id, owned


_handler: CommandHandler | None = None


async def finish() -> None:
    """On a clean stop, the batch still being finished is finished (answered), and everything appended is indexed,
    before the worker goes."""
    if _handler is not None:
        await _handler.settle()


async def handle(batch: Batch[CommandEnvelope]) -> None:
    global _handler
    if _handler is None:
        _handler = CommandHandler(
            journal=await process_runtime().journal(),
            emit=emit,
            send=send,
            assignment=assignment,
            carts=MemberCarts(settings.cart_cache_size),
            snapshot_every=settings.snapshot_every,
            index_every_s=settings.index_every_s,
            index_max_pending=settings.index_max_pending,
            crash_after_append=settings.crash_after_append,
        )
    await _handler.handle(batch)


def envelope_of(value: CommandEnvelope | object) -> CommandEnvelope:
    if not isinstance(value, CommandEnvelope):
        raise TypeError(f"not a command envelope: {value!r}")
    return value


cart_commands = batched_agent(
    app,
    cart_commands_topic,
    "cart_commands",
    envelope_of,
    process=handle,
    max_batch=settings.command_batch_max,
    within=settings.command_batch_within_s,
    on_stop=finish,
)
