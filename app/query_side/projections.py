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
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from app.cart.codec import (
    CodecError,
    decimal_field,
    int_field,
    json_object,
    mapping_field,
    str_field,
    utc_datetime_field,
    uuid_text,
    uuid_text_field,
)
from app.cart.rules import ItemPurchased
from app.cart.stored_event import StoredEvent

ITEM_PURCHASED_SCHEMA_VERSION = 1  # schemas/item_purchased.v1.json
POPULAR_ITEMS = "popular_items"
ITEM_PURCHASED = ItemPurchased.__name__
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
        """The update as a dict of plain JSON values (the update messages' shape from 2026-12-03 to 2026-12-07, which
        `from_dict` reads)."""
        return {
            "row": list(self.row),
            "delta": str(self.delta),
            "name": self.name,
            "member_id": self.member_id,
            "seq_nr": self.seq_nr,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "occurred_at": self.occurred_at.isoformat(),
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

    @classmethod
    def from_fields(cls, fields: Sequence[Any]) -> RowUpdate:
        """An update as the update messages carry it since 2026-12-07: its fields in order, in a JSON array (what
        `updates_message` writes). Checked as `from_dict` checks them: a dict per update, with its field names, took
        the owners twice as long to read back (4.7 against 2.3 us; docs/benchmarks.md, 2026-12-07, morning)."""
        if not isinstance(fields, list) or len(fields) != len(cls._fields):
            raise CodecError(f"an update is a list of its {len(cls._fields)} fields, not {fields!r}")
        row, delta, name, member_id, seq_nr, source_partition, source_offset, occurred_at, source_index = fields
        # Checked in straight lines, not with all() over generators: this runs once per update per owner.
        if type(row) is not list or not row:
            raise CodecError(f"an update's row is a list of strings, not {row!r}")
        "".join(row)  # TypeError unless every part is a string
        if type(delta) is not str or type(name) is not str or type(occurred_at) is not str:
            raise CodecError(f"an update's delta, name and time are strings, not {delta!r}, {name!r}, {occurred_at!r}")
        if (  # `type is`: neither a bool nor a float is a position
            type(seq_nr) is not int
            or type(source_partition) is not int
            or type(source_offset) is not int
            or type(source_index) is not int
        ):
            numbers = (seq_nr, source_partition, source_offset, source_index)
            raise CodecError(f"an update's seq_nr and source position are integers, not {numbers!r}")
        try:
            amount = Decimal(delta)
        except InvalidOperation as error:  # an ArithmeticError, not what a decoder promises
            raise CodecError(f"an update's delta is a decimal, not {delta!r}") from error
        if not amount.is_finite():
            raise CodecError(f"an update's delta is a finite decimal, not {delta!r}")
        return tuple.__new__(  # the named tuple's own constructor is a Python function: a third slower
            cls,
            (
                tuple(row),
                amount,
                name,
                uuid_text(member_id, "an update's member_id"),
                seq_nr,
                source_partition,
                source_offset,
                datetime.fromisoformat(occurred_at),
                source_index,
            ),
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


def popular_items_row(vendor_id: UUID | str, product_id: UUID | str, year: int, month: int, day: int) -> Row:
    """A row of item_quantity_by_vendor_month: (vendor, product, year, month, day); ids as canonical text."""
    return str(vendor_id), str(product_id), str(year), str(month), str(day)


def vendor_billing_row(vendor_id: UUID | str, year: int, month: int) -> Row:
    """A row of vendor billing (balance_by_vendor, vendor_billing): (vendor, year, month); the id as canonical text."""
    return str(vendor_id), str(year), str(month)


class Purchase(NamedTuple):
    """An `ItemPurchased` event as the projections and the public topic take it: the ids as canonical text (what
    str(UUID) writes), since they are only compared and passed on. `purchases` reads one from a cart-events message
    without making a UUID of any id, the event's rules objects, or the ids' text again (`purchase_of_dict`): 21 ->
    10 us a purchase, and 9 -> 4 us for its updates and public message (docs/benchmarks.md, 2026-12-07, morning).
    From the journal, `purchase_of` takes a stored event."""

    event_id: str
    member_id: str
    cart_id: str
    seq_nr: int
    product_id: str
    vendor_id: str
    name: str
    price: Decimal
    quantity: int
    purchased_at: datetime  # in UTC

    @property
    def subtotal(self) -> Decimal:
        return self.price * self.quantity


def purchase_of(stored: StoredEvent) -> Purchase | None:
    """The purchase a stored event is, None for any other event."""
    event = stored.event
    if not isinstance(event, ItemPurchased):
        return None
    item = event.item
    return Purchase(
        str(stored.event_id),
        str(stored.member_id),
        str(stored.cart_id),
        stored.seq_nr,
        str(item.product_id),
        str(item.vendor_id),
        item.name,
        item.price,
        item.quantity,
        event.purchased_at.astimezone(UTC),
    )


def purchase_of_dict(d: Mapping[str, Any]) -> Purchase:
    """A cart-events message's `ItemPurchased` (its fields, as `schemas.records.event_dict` writes them), checked as
    `event_of_dict` checks what the projections read: CodecError (a ValueError), KeyError or TypeError when it is
    malformed."""
    payload = mapping_field(d, "payload")
    item = mapping_field(payload, "item")
    return Purchase(
        uuid_text_field(d, "event_id"),
        uuid_text_field(d, "member_id"),
        uuid_text_field(d, "cart_id"),
        int_field(d, "seq_nr"),
        uuid_text_field(item, "product_id"),
        uuid_text_field(item, "vendor_id"),
        str_field(item, "name"),
        decimal_field(item, "price"),
        int_field(item, "quantity"),
        utc_datetime_field(payload, "purchased_at"),
    )


def popular_items_update(purchase: Purchase, partition: int, offset: int, index: int = 0) -> RowUpdate:
    """Quantity bought per vendor, product and UTC day: row (vendor, product, year, month, day)."""
    day = purchase.purchased_at
    row = popular_items_row(purchase.vendor_id, purchase.product_id, day.year, day.month, day.day)
    quantity = Decimal(purchase.quantity)
    return RowUpdate(row, quantity, purchase.name, purchase.member_id, purchase.seq_nr, partition, offset, day, index)


def vendor_billing_update(purchase: Purchase, partition: int, offset: int, index: int = 0) -> RowUpdate:
    """Money owed to a vendor per UTC month (price x quantity): row (vendor, year, month)."""
    day = purchase.purchased_at
    row = vendor_billing_row(purchase.vendor_id, day.year, day.month)
    return RowUpdate(
        row, purchase.subtotal, purchase.name, purchase.member_id, purchase.seq_nr, partition, offset, day, index
    )


PROJECTIONS = {POPULAR_ITEMS: popular_items_update, VENDOR_BILLING: vendor_billing_update}
PROJECTED_EVENT_TYPES = frozenset({ITEM_PURCHASED})
"""The only event types any projection makes an update of (a `Purchase`), so readers of the whole journal (verify,
rebuild) need not decode the others."""


class PassingEvent(NamedTuple):
    """A cart event of a type no projection takes: what the duplicate filter reads of it, and no more (the member
    as text: the filter only compares it). A named tuple: one is made per event of most events."""

    member: str
    seq_nr: int


def projected_event_of_message(raw: bytes | None) -> Purchase | PassingEvent:
    """A cart-events message (`schemas.records.event_of_message`'s input) as `purchases` needs it: a purchase
    (`Purchase`), or only the member and seq_nr of any other event. Most events are not purchases, and their
    payload was most of the decoding (6.7 against 42 us per ItemAdded, docs/benchmarks.md, 2026-12-03, night).
    Raises KeyError, TypeError or ValueError when the message is malformed."""
    d = json_object(raw, "a cart event")
    kind = d.get("type")
    if kind == ITEM_PURCHASED:
        return purchase_of_dict(d)
    if not isinstance(kind, str):
        raise CodecError(f"a cart event's type is a string, not {kind!r}")
    return PassingEvent(uuid_text_field(d, "member_id"), int_field(d, "seq_nr"))


def item_purchased_message(purchase: Purchase) -> bytes:
    """The public message for the analytics teams' topic `item-purchased` (schemas/item_purchased.v1.json). The
    time is left to orjson, which writes what isoformat() would (tests/unit/test_update_messages.py)."""
    return orjson.dumps(
        {
            "schemaVersion": ITEM_PURCHASED_SCHEMA_VERSION,
            "eventId": purchase.event_id,
            "memberId": purchase.member_id,
            "cartId": purchase.cart_id,
            "productId": purchase.product_id,
            "vendorId": purchase.vendor_id,
            "name": purchase.name,
            "price": str(purchase.price),
            "quantity": purchase.quantity,
            "purchasedAt": purchase.purchased_at,
        }
    )


# ~350 bytes each as JSON, about 1 KB with a 200-character name of 4-byte characters: under Kafka's 1 MB default.
UPDATES_PER_MESSAGE = 500


def updates_message(updates: Sequence[RowUpdate]) -> bytes:
    """A message of an update topic (its value, JSON): updates of rows of one partition, in source order, each as
    its fields in order (`RowUpdate.from_fields`). The time is left to orjson, which writes what isoformat() would
    (tests/unit/test_update_messages.py), the delta is its Decimal's text."""
    return orjson.dumps({"updates": [tuple(update) for update in updates]}, default=_decimal_text)


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a field of an update")


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
    """The updates in a message of an update topic: many, each its fields in order (`updates_message`), or each a
    dict of its fields (as sent from 2026-12-03 to 2026-12-07), or one dict, as sent before (a topic written by an
    older worker is still read to its end). Raises KeyError, TypeError or ValueError when the message is
    malformed."""
    message = json_object(value, "an update message")
    if "updates" not in message:
        return [RowUpdate.from_dict(message)]
    updates = message["updates"]
    if not isinstance(updates, list):
        raise CodecError(f"an update message's updates are a list, not {updates!r}")
    return [
        RowUpdate.from_fields(update) if isinstance(update, list) else RowUpdate.from_dict(update) for update in updates
    ]


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
