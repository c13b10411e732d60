"""The records that travel on the internal topics, declared once.

- `cart-commands` carries `CommandEnvelope`s, keyed by member id (so a member's commands stay in order on one
  partition, owned by one worker).
- `cart-replies` carries `CommandReply`s back to the API instance that asked (to the partition it listens on).
- `cart-events` carries `CartEventRecord`s, keyed by member id; (member_id, seq_nr) identifies an event, so a
  consumer drops the duplicates that at-least-once delivery can bring.
The API writes these as plain JSON with aiokafka; Faust reads them into these records.
"""

from __future__ import annotations

from typing import Any

import faust


class CommandEnvelope(faust.Record, serializer="json"):
    """A cart command on its way to the owner of the member's partition."""

    command_id: str
    member_id: str
    command: dict[str, Any]  # {"type": "AddItem", ...}: see app.cart.command_codec
    correlation_id: str
    reply_partition: int
    deadline: float  # epoch seconds: after this the API has stopped waiting, so the worker skips the command


class CommandReply(faust.Record, serializer="json"):
    """The owner's answer: status is accepted, rejected, unchanged, invalid, expired or unavailable."""

    correlation_id: str
    status: str
    body: dict[str, Any]


class CartEventRecord(faust.Record, serializer="json"):
    """One journal event as published on cart-events (schema_version 1); payload as in the journal."""

    event_id: str
    member_id: str
    cart_id: str
    seq_nr: int
    command_id: str
    type: str
    schema_version: int
    occurred_at: str
    payload: dict[str, Any]
