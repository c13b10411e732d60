"""`StoredEvent`: an event with its envelope (identity, position, causation), as the journal stores it and as it
travels on `cart-events` (schemas.records.CartEventRecord is its wire form)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from app.cart.rules import Event

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class StoredEvent:
    """An event with its envelope; (member_id, seq_nr) is its stable identity everywhere downstream."""

    event_id: UUID
    member_id: UUID
    cart_id: UUID
    seq_nr: int
    command_id: str
    occurred_at: datetime
    event: Event
    schema_version: int = SCHEMA_VERSION

    @property
    def type(self) -> str:
        """The name the event is stored under: its class name, e.g. "ItemAdded"."""
        return type(self.event).__name__
