"""The records that travel on the internal topics, declared once and used on both sides of each topic.

- `cart-commands` carries `CommandEnvelope`s, keyed by member id (so a member's commands stay in order on one
  partition, owned by one worker). The API writes them, the `cart_commands` agent reads them.
- `cart-replies` carries `CommandReply`s back to the API instance that asked (to the partition it listens on).
- `cart-events` carries `CartEventRecord`s, keyed by member id; (member_id, seq_nr) identifies an event, so a
  consumer drops the duplicates that at-least-once delivery can bring.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import faust
import orjson

from app.cart.codec import event_from_payload, event_to_payload, int_field, json_object, uuid_field
from app.cart.stored_event import SCHEMA_VERSION, StoredEvent


class CommandEnvelope(faust.Record, serializer="json"):
    """A cart command on its way to the owner of the member's partition."""

    command_id: str
    member_id: str
    command: dict[str, Any]  # {"type": "AddItem", ...}: see app.cart.command_codec
    correlation_id: str
    reply_partition: int
    deadline: float  # epoch seconds: after this the API has stopped waiting, so the worker skips the command


class ReplyStatus(StrEnum):
    """What became of a command; the API turns each into one HTTP status."""

    ACCEPTED = "accepted"  # its events are in the journal (now, or by an earlier delivery of the same command)
    UNCHANGED = "unchanged"  # a query, or a command that changes nothing
    REJECTED = "rejected"  # a cart rule refused it; nothing was written
    INVALID = "invalid"  # malformed, or an Idempotency-Key used for another command; nothing was written
    EXPIRED = "expired"  # it arrived after its deadline and was not applied (nobody waits for this answer)
    UNAVAILABLE = "unavailable"  # a store did not answer; nothing was applied


class CommandReply(faust.Record, serializer="json"):
    """The owner's answer to one command. `body` holds the cart and events (accepted, unchanged), the rejection
    (rejected) or `error` and `reason` (the rest)."""

    correlation_id: str
    status: str  # a ReplyStatus
    body: dict[str, Any]

    @property
    def outcome(self) -> ReplyStatus:
        return ReplyStatus(self.status)


class CartEventRecord(faust.Record, serializer="json"):
    """One journal event as published on cart-events (schema_version 1); payload as in the journal."""

    event_id: str
    member_id: str
    cart_id: str
    seq_nr: int
    command_id: str
    type: str
    occurred_at: str
    payload: dict[str, Any]
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def of_event(cls, stored: StoredEvent) -> CartEventRecord:
        return cls(**event_dict(stored))

    def to_event(self) -> StoredEvent:
        """Raises KeyError, TypeError or ValueError (CodecError) on a malformed record."""
        return event_of_dict(self.asdict())


def event_of_dict(d: Mapping[str, Any]) -> StoredEvent:
    """The event of a record's fields (`event_dict`'s shape). Raises KeyError, TypeError or ValueError (CodecError)
    when they are malformed."""
    return StoredEvent(
        # Checked field readers, not UUID() and int(): UUID(123) raises AttributeError, which no decoder's caller
        # takes for a malformed message, and int() would take 1.5 or "7" for a seq_nr.
        event_id=uuid_field(d, "event_id"),
        member_id=uuid_field(d, "member_id"),
        cart_id=uuid_field(d, "cart_id"),
        seq_nr=int_field(d, "seq_nr"),
        command_id=str(d["command_id"]),
        occurred_at=datetime.fromisoformat(d["occurred_at"]).astimezone(UTC),
        event=event_from_payload(d["type"], d["payload"]),
        schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
    )


def event_of_message(raw: bytes | None) -> StoredEvent:
    """The event in a cart-events message (`event_message`'s bytes, or what Faust sent for a `CartEventRecord`),
    read without building the record: the query side reads one per event. Raises KeyError, TypeError or ValueError
    when the message is malformed (TypeError for a message without a value)."""
    return event_of_dict(json_object(raw, "a cart event"))


def event_dict(stored: StoredEvent) -> dict[str, Any]:
    """An event as a plain dict, in the shape of its record (for reply bodies, the history route and messages)."""
    return {
        "event_id": str(stored.event_id),
        "member_id": str(stored.member_id),
        "cart_id": str(stored.cart_id),
        "seq_nr": stored.seq_nr,
        "command_id": stored.command_id,
        "type": stored.type,
        "occurred_at": stored.occurred_at.astimezone(UTC).isoformat(),
        "payload": event_to_payload(stored.event),
        "schema_version": stored.schema_version,
    }


_EVENT_TYPE = {"ns": CartEventRecord._options.namespace}
_REPLY_TYPE = {"ns": CommandReply._options.namespace}


def event_message(stored: StoredEvent) -> bytes:
    """The value of the event's message on cart-events: what Faust's json serializer makes of
    `CartEventRecord.of_event(stored)` (type tag included), without building the record on the way (the command
    worker sends one per event)."""
    return orjson.dumps({**event_dict(stored), "__faust": _EVENT_TYPE})


def reply_message(reply: CommandReply) -> bytes:
    """The value of a reply's message on cart-replies, as Faust's json serializer writes it."""
    fields = {"correlation_id": reply.correlation_id, "status": reply.status, "body": reply.body}
    return orjson.dumps({**fields, "__faust": _REPLY_TYPE}, default=str)  # str: a Decimal, as Faust's encoder does
