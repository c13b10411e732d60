"""The read models as pure projections of `ItemPurchased` events, and the bookkeeping that makes them exactly once
in effect. No I/O here.

The pipeline (see docs/architecture.md):
1. `purchases` reads `cart-events` (keyed by member). It drops an event whose (member_id, seq_nr) it has already
   absorbed, and turns each `ItemPurchased` into one `RowUpdate` per read model, tagged with the event's position in
   `cart-events` (source partition, source offset), sent to a topic keyed by the read-model row. When a member's
   events skip ahead (an earlier event was never delivered to it), the missing ones are read from the journal and
   forwarded under the same source offset with increasing `source_index`.
2. The owner of a row (one agent per read model, after that repartition) keeps the row's value in a table with,
   per source partition, the highest source offset it has absorbed (`marks`). An update at or below the mark is a
   replay and changes nothing. A replay after any crash resends the same updates in the same order per source
   partition, which is why the marks suffice. The value and its marks are one table entry, written together.

Updates travel in messages of many (`updates_message`): `purchases` sends one message per update-topic partition
per batch of a cart-events partition, holding that partition's updates in source order, rather than one message
per update. The order per row and per source partition is what it was, so the marks hold as before; what changes is
the number of messages each update costs on both sides of Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from app.cart.codec import CodecError, decimal_field, int_field, json_object, str_field, uuid_text_field
from app.cart.rules import ItemPurchased
from app.cart.stored_event import StoredEvent
from schemas.records import event_of_dict

ITEM_PURCHASED_SCHEMA_VERSION = 1  # schemas/item_purchased.v1.json
POPULAR_ITEMS = "popular_items"
POSITION_SCALE = 1_000_000  # source_position = offset * POSITION_SCALE + index (index < POSITION_SCALE)
VENDOR_BILLING = "vendor_billing"


class RowUpdate(NamedTuple):
    """One event's contribution to one read-model row. (A named tuple, not a frozen dataclass: the query side makes
    and reads one per read model per purchase, and a frozen dataclass's constructor took four times as long.)"""

    row: Row  # the row, as strings (e.g. vendor, product, year, month, day)
    delta: Decimal  # quantity for popular items, money for billing
    name: str
    member_id: str  # canonical text (str(UUID)): passed on and compared, never needed as a UUID
    seq_nr: int
    source_partition: int
    source_offset: int
    occurred_at: datetime
    source_index: int = 0  # > 0 for events recovered from the journal under another event's offset

    @property
    def source_position(self) -> int:
        """Offset and index as one number, ordered as (offset, index): what the marks hold."""
        return self.source_offset * POSITION_SCALE + self.source_index

    def to_dict(self) -> dict[str, Any]:
        """The update as plain JSON values (a string for the time)."""
        return {**self.orjson_dict(), "occurred_at": self.occurred_at.isoformat()}

    def orjson_dict(self) -> dict[str, Any]:
        """`to_dict` as orjson writes it, for the update messages: the time is left to orjson, which writes what
        isoformat() would (tests/unit/test_update_messages.py), three times as fast."""
        return {
            "row": list(self.row),
            "delta": str(self.delta),
            "name": self.name,
            "member_id": self.member_id,
            "seq_nr": self.seq_nr,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "occurred_at": self.occurred_at,
            "source_index": self.source_index,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RowUpdate:
        return cls(
            row_of(d),
            decimal_field(d, "delta"),
            str_field(d, "name"),
            uuid_text_field(d, "member_id"),
            int_field(d, "seq_nr"),
            int_field(d, "source_partition"),
            int_field(d, "source_offset"),
            datetime.fromisoformat(d["occurred_at"]),
            int(d.get("source_index", 0)),
        )

    @property
    def key(self) -> str:
        return row_key(self.row)


Row = tuple[str, ...]


def row_of(d: Mapping[str, Any]) -> Row:
    """An update's row, checked here: a row of anything but strings would fail later, in its owner, not as a
    malformed message."""
    row = d["row"]
    if not isinstance(row, list) or not row or not all(isinstance(part, str) for part in row):
        raise CodecError(f"an update's row is a list of strings, not {row!r}")
    return tuple(row)


def row_key(row: Row) -> str:
    """A read-model row's key: in its owner's table, on the update topics (so, its partition), in its marks."""
    return "/".join(row)


def popular_items_row(vendor_id: UUID, product_id: UUID, year: int, month: int, day: int) -> Row:
    """A row of item_quantity_by_vendor_month: (vendor, product, year, month, day)."""
    return str(vendor_id), str(product_id), str(year), str(month), str(day)


def vendor_billing_row(vendor_id: UUID, year: int, month: int) -> Row:
    """A row of vendor billing (balance_by_vendor, vendor_billing): (vendor, year, month)."""
    return str(vendor_id), str(year), str(month)


def popular_items_update(event: StoredEvent, partition: int, offset: int, index: int = 0) -> RowUpdate | None:
    """Quantity bought per vendor, product and UTC day: row (vendor, product, year, month, day)."""
    if not isinstance(event.event, ItemPurchased):
        return None
    item, day = event.event.item, event.event.purchased_at
    row = popular_items_row(item.vendor_id, item.product_id, day.year, day.month, day.day)
    return RowUpdate(
        row, Decimal(item.quantity), item.name, str(event.member_id), event.seq_nr, partition, offset, day, index
    )


def vendor_billing_update(event: StoredEvent, partition: int, offset: int, index: int = 0) -> RowUpdate | None:
    """Money owed to a vendor per UTC month (price x quantity): row (vendor, year, month)."""
    if not isinstance(event.event, ItemPurchased):
        return None
    item, day = event.event.item, event.event.purchased_at
    row = vendor_billing_row(item.vendor_id, day.year, day.month)
    member = str(event.member_id)
    return RowUpdate(row, item.subtotal, item.name, member, event.seq_nr, partition, offset, day, index)


PROJECTIONS = {POPULAR_ITEMS: popular_items_update, VENDOR_BILLING: vendor_billing_update}
PROJECTED_EVENT_TYPES = frozenset({ItemPurchased.__name__})
"""The only event types any projection makes an update of (every other event projects to None), so readers of the
whole journal (verify, rebuild) need not decode the others."""


class PassingEvent(NamedTuple):
    """A cart event of a type no projection takes: what the duplicate filter reads of it, and no more (the member
    as text: the filter only compares it). A named tuple: one is made per event of most events."""

    member: str
    seq_nr: int


def projected_event_of_message(raw: bytes | None) -> StoredEvent | PassingEvent:
    """A cart-events message (`schemas.records.event_of_message`'s input) as `purchases` needs it: the whole event
    when a projection takes its type, only its member and seq_nr otherwise. Most events are not purchases, and
    their payload was most of the decoding (6.7 against 42 us per ItemAdded, docs/benchmarks.md, 2026-12-03,
    night). Raises KeyError, TypeError or ValueError when the message is malformed."""
    d = json_object(raw, "a cart event")
    if d.get("type") in PROJECTED_EVENT_TYPES:
        return event_of_dict(d)
    if not isinstance(d.get("type"), str):
        raise CodecError(f"a cart event's type is a string, not {d.get('type')!r}")
    return PassingEvent(uuid_text_field(d, "member_id"), int_field(d, "seq_nr"))


def item_purchased_message(stored: StoredEvent) -> bytes | None:
    """The public message for the analytics teams' topic `item-purchased` (schemas/item_purchased.v1.json). The ids
    and the time are left to orjson, which writes what str() and isoformat() would
    (tests/unit/test_update_messages.py), in half the time of a dict of strings: one per purchase."""
    if not isinstance(stored.event, ItemPurchased):
        return None
    item = stored.event.item
    return orjson.dumps(
        {
            "schemaVersion": ITEM_PURCHASED_SCHEMA_VERSION,
            "eventId": stored.event_id,
            "memberId": stored.member_id,
            "cartId": stored.cart_id,
            "productId": item.product_id,
            "vendorId": item.vendor_id,
            "name": item.name,
            "price": str(item.price),
            "quantity": item.quantity,
            "purchasedAt": stored.event.purchased_at,
        }
    )


# ~350 bytes each as JSON, about 1 KB with a 200-character name of 4-byte characters: under Kafka's 1 MB default.
UPDATES_PER_MESSAGE = 500


def updates_message(updates: Sequence[RowUpdate]) -> bytes:
    """A message of an update topic (its value, JSON): updates of rows of one partition, in source order."""
    return orjson.dumps({"updates": [update.orjson_dict() for update in updates]})


def update_messages(updates: Iterable[RowUpdate], partition_of: Callable[[str], int]) -> list[tuple[int, bytes]]:
    """(partition, message) for each message that carries `updates` (in source order) to their rows' partitions:
    per partition, the updates in the order given, at most UPDATES_PER_MESSAGE to a message."""
    by_partition: dict[int, list[RowUpdate]] = {}
    for update in updates:
        by_partition.setdefault(partition_of(update.key), []).append(update)
    return [
        (partition, updates_message(run[start : start + UPDATES_PER_MESSAGE]))
        for partition, run in by_partition.items()
        for start in range(0, len(run), UPDATES_PER_MESSAGE)
    ]


def updates_of(value: bytes | None) -> list[RowUpdate]:
    """The updates in a message of an update topic: many (`updates_message`), or one, as sent before 2026-12-03
    (a topic written by an older worker is still read to its end). Raises KeyError, TypeError or ValueError when
    the message is malformed."""
    message = json_object(value, "an update message")
    if "updates" in message:
        return [RowUpdate.from_dict(update) for update in message["updates"]]
    return [RowUpdate.from_dict(message)]


NO_MARKS: Mapping[int, int] = MappingProxyType({})


class RowState(NamedTuple):
    """A read-model row as its owner keeps it: the total, how many updates made it (`version`), and the marks
    (source partition -> highest source position absorbed). A named tuple: a row owner makes two per update (read
    back, then applied), and a frozen dataclass's constructor cost three times as much."""

    total: Decimal = Decimal(0)
    name: str = ""
    version: int = 0
    marks: Mapping[int, int] = NO_MARKS
    last_event_at: str | None = None

    def is_new(self, update: RowUpdate) -> bool:
        return update.source_position > self.marks.get(update.source_partition, -1)

    def apply(self, update: RowUpdate) -> RowState:
        """The row with the update in it; unchanged if the update was already absorbed (a replay)."""
        if not self.is_new(update):
            return self
        return RowState(
            self.total + update.delta,
            update.name,
            self.version + 1,
            {**self.marks, update.source_partition: update.source_position},
            update.occurred_at.isoformat(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": str(self.total),
            "name": self.name,
            "version": self.version,
            "marks": {str(p): o for p, o in self.marks.items()},
            "last_event_at": self.last_event_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> RowState:
        if not d:
            return cls()
        return cls(
            total=Decimal(d["total"]),
            name=d.get("name", ""),
            version=int(d["version"]),
            marks={int(p): int(o) for p, o in d.get("marks", {}).items()},
            last_event_at=d.get("last_event_at"),
        )
