"""Pure, exact JSON-compatible encoding of the cart core's values: events become payload dicts keyed by
their snake_case field names (the event's type name, its class name, travels separately in the envelope),
carts and items become plain dicts, UUIDs are canonical strings, money is a Decimal string (never a float,
so no precision is lost), and datetimes are ISO-8601 strings with an explicit "+00:00" offset that decode
to aware UTC datetimes. Decoding validates the shape it reads and raises `CodecError` on anything else, so
that `decode(encode(x)) == x` holds for every value the core can produce.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias, assert_never
from uuid import UUID

import orjson

from app.cart.member_cart import MemberCart, Outcome
from app.cart.rules import (
    Cart,
    Event,
    Item,
    ItemAdded,
    ItemPurchased,
    ItemQuantityDecreased,
    ItemQuantityIncreased,
    ItemRemoved,
)

JsonValue: TypeAlias = str | int | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonDict: TypeAlias = dict[str, JsonValue]


class CodecError(ValueError):
    """A payload or dict does not have the shape this codec writes."""


class UnknownEventType(CodecError):
    """An event type name that is not one of the cart's event classes."""


def json_object(raw: bytes | None, what: str) -> dict[str, Any]:
    """The JSON object in a message's value. Raises TypeError (no value, or not an object) or ValueError (not JSON):
    what the agents' decoders promise for a malformed message."""
    if raw is None:
        raise TypeError(f"{what}: a message without a value")
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a JSON object, not {type(value).__name__}")
    return value


def event_type_name(event: Event) -> str:
    """The name an event is stored under: its class name, e.g. "ItemAdded"."""
    return type(event).__name__


# --- What an owner keeps per member (the `carts` table, snapshots). --------------------------------------


def member_cart_to_dict(state: MemberCart) -> dict[str, Any]:
    return {
        "member_id": str(state.member_id),
        "version": state.version,
        "cart": cart_to_dict(state.cart),
        "recent": [_outcome_to_dict(o) for o in state.recent],
    }


def member_cart_from_dict(d: Mapping[str, Any]) -> MemberCart:
    """Raises KeyError, ValueError or CodecError on a dict `member_cart_to_dict` did not write."""
    return MemberCart(
        member_id=UUID(d["member_id"]),
        version=int(d["version"]),
        cart=cart_from_dict(d["cart"]),
        rows=tuple(_outcome_from_dict(o).row() for o in d.get("recent", ())),
    )


def outcome_to_json(outcome: Outcome) -> str:
    return orjson.dumps(_outcome_to_dict(outcome)).decode()


def outcome_from_json(text: str) -> Outcome:
    """Raises KeyError, ValueError or TypeError on text `outcome_to_json` did not write."""
    return _outcome_from_dict(orjson.loads(text))


def _outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "command_id": outcome.command_id,
        "first_seq": outcome.first_seq,
        "last_seq": outcome.last_seq,
        "rejection": dict(outcome.rejection) if outcome.rejection is not None else None,
        "positions": [list(p) for p in outcome.positions],
        "fingerprint": outcome.fingerprint,
    }


def _outcome_from_dict(d: Mapping[str, Any]) -> Outcome:
    positions = tuple((int(p), int(o)) for p, o in d.get("positions", ()))
    return Outcome(
        d["command_id"], int(d["first_seq"]), int(d["last_seq"]), d.get("rejection"), positions, d.get("fingerprint")
    )


# --- Encoding. ------------------------------------------------------------------------------------------


def item_to_dict(item: Item) -> JsonDict:
    """Encode an item; the price becomes its exact Decimal string. Raises CodecError if it is not finite."""
    return {
        "product_id": str(item.product_id),
        "vendor_id": str(item.vendor_id),
        "name": item.name,
        "price": _encode_decimal(item.price),
        "quantity": item.quantity,
    }


def cart_to_dict(cart: Cart) -> JsonDict:
    """Encode a cart as {"cart_id": str | None, "items": [item dict, ...]} in cart order."""
    return {
        "cart_id": None if cart.cart_id is None else str(cart.cart_id),
        "items": [item_to_dict(item) for item in cart.items],
    }


def event_to_payload(event: Event) -> JsonDict:
    """Encode an event's fields (not its type name, see `event_type_name`) as a JSON-compatible dict."""
    payload: JsonDict = {"cart_id": str(event.cart_id)}
    match event:
        case ItemAdded(item=item):
            payload["item"] = item_to_dict(item)
        case ItemRemoved(product_id=product_id):
            payload["product_id"] = str(product_id)
        case (
            ItemQuantityIncreased(product_id=product_id, amount=amount)
            | ItemQuantityDecreased(product_id=product_id, amount=amount)
        ):
            payload["product_id"] = str(product_id)
            payload["amount"] = amount
        case ItemPurchased(item=item, purchased_at=purchased_at):
            payload["item"] = item_to_dict(item)
            payload["purchased_at"] = _encode_datetime(purchased_at)
        case _:
            assert_never(event)
    return payload


def _encode_decimal(value: Decimal) -> str:
    # NaN and infinities are not money, and NaN would also break round-trip equality.
    if not value.is_finite():
        raise CodecError(f"money must be a finite Decimal, got {value!r}")
    # str() keeps both the value and the exponent, so Decimal(str(d)) reproduces d exactly.
    return str(value)


def _encode_datetime(value: datetime) -> str:
    # A naive datetime has no defined instant; guessing local time would silently corrupt history.
    if value.tzinfo is None or value.utcoffset() is None:
        raise CodecError(f"datetime must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).isoformat()


# --- Decoding. ------------------------------------------------------------------------------------------


def item_from_dict(d: Mapping[str, object]) -> Item:
    """Decode a dict written by `item_to_dict`. Raises CodecError when a field is missing or malformed."""
    return Item(
        product_id=uuid_field(d, "product_id"),
        vendor_id=uuid_field(d, "vendor_id"),
        name=str_field(d, "name"),
        price=decimal_field(d, "price"),
        quantity=int_field(d, "quantity"),
    )


def cart_from_dict(d: Mapping[str, object]) -> Cart:
    """Decode a dict written by `cart_to_dict`. Raises CodecError when a field is missing or malformed."""
    raw_cart_id = _field(d, "cart_id")
    cart_id = None if raw_cart_id is None else uuid_field(d, "cart_id")
    raw_items = _field(d, "items")
    if not isinstance(raw_items, list):
        raise CodecError(f"field 'items' must be a list, got {raw_items!r}")
    return Cart(cart_id, tuple(item_from_dict(_mapping(raw, "items[]")) for raw in raw_items))


def event_from_payload(type_name: str, payload: Mapping[str, object]) -> Event:
    """Decode a payload written by `event_to_payload` for the event class named `type_name`.

    Raises UnknownEventType for a name that is not an event class, CodecError for a malformed payload.
    """
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        raise UnknownEventType(f"unknown event type {type_name!r}")
    return decoder(payload)


def _item_added(p: Mapping[str, object]) -> Event:
    return ItemAdded(uuid_field(p, "cart_id"), item_from_dict(mapping_field(p, "item")))


def _item_removed(p: Mapping[str, object]) -> Event:
    return ItemRemoved(uuid_field(p, "cart_id"), uuid_field(p, "product_id"))


def _item_quantity_increased(p: Mapping[str, object]) -> Event:
    return ItemQuantityIncreased(uuid_field(p, "cart_id"), uuid_field(p, "product_id"), int_field(p, "amount"))


def _item_quantity_decreased(p: Mapping[str, object]) -> Event:
    return ItemQuantityDecreased(uuid_field(p, "cart_id"), uuid_field(p, "product_id"), int_field(p, "amount"))


def _item_purchased(p: Mapping[str, object]) -> Event:
    item = item_from_dict(mapping_field(p, "item"))
    return ItemPurchased(uuid_field(p, "cart_id"), item, utc_datetime_field(p, "purchased_at"))


_DECODERS: dict[str, Callable[[Mapping[str, object]], Event]] = {
    ItemAdded.__name__: _item_added,
    ItemRemoved.__name__: _item_removed,
    ItemQuantityIncreased.__name__: _item_quantity_increased,
    ItemQuantityDecreased.__name__: _item_quantity_decreased,
    ItemPurchased.__name__: _item_purchased,
}


# --- Field readers: each returns a typed value or raises CodecError naming the field. ---------------------


def _field(d: Mapping[str, object], key: str) -> object:
    if key not in d:
        raise CodecError(f"missing field {key!r}")
    return d[key]


def mapping_field(d: Mapping[str, object], key: str) -> Mapping[str, object]:
    return _mapping(_field(d, key), key)


def _mapping(value: object, key: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise CodecError(f"field {key!r} must be an object, got {value!r}")
    return value


def str_field(d: Mapping[str, object], key: str) -> str:
    value = _field(d, key)
    if not isinstance(value, str):
        raise CodecError(f"field {key!r} must be a string, got {value!r}")
    return value


def int_field(d: Mapping[str, object], key: str) -> int:
    value = _field(d, key)
    # bool is a subclass of int, but True is not a quantity.
    if not isinstance(value, int) or isinstance(value, bool):
        raise CodecError(f"field {key!r} must be an integer, got {value!r}")
    return value


def uuid_field(d: Mapping[str, object], key: str) -> UUID:
    text = str_field(d, key)
    try:
        return UUID(text)
    except ValueError as error:
        raise CodecError(f"field {key!r} must be a UUID, got {text!r}") from error


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def uuid_text_field(d: Mapping[str, object], key: str) -> str:
    """A UUID field as canonical text (what str(UUID) writes), for readers that only compare or pass the id on: a
    UUID made and written out again per event was 8% of the projection worker's samples in a catch-up."""
    return uuid_text(str_field(d, key), f"field {key!r}")


def uuid_text(value: object, what: str) -> str:
    """`value` as a UUID's canonical text; CodecError, naming `what`, if it is not a UUID's text."""
    if type(value) is str and _CANONICAL_UUID(value):
        return value
    if not isinstance(value, str):
        raise CodecError(f"{what} must be a string, got {value!r}")
    try:
        return str(UUID(value))  # another spelling of a UUID
    except ValueError as error:
        raise CodecError(f"{what} must be a UUID, got {value!r}") from error


def decimal_field(d: Mapping[str, object], key: str) -> Decimal:
    # Only strings are accepted: a float would already have lost the exact amount.
    text = str_field(d, key)
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise CodecError(f"field {key!r} must be a decimal string, got {text!r}") from error
    if not value.is_finite():
        raise CodecError(f"field {key!r} must be a finite decimal, got {text!r}")
    return value


def utc_datetime_field(d: Mapping[str, object], key: str) -> datetime:
    """An ISO-8601 time with an offset, in UTC."""
    text = str_field(d, key)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise CodecError(f"field {key!r} must be an ISO-8601 datetime, got {text!r}") from error
    if value.tzinfo is None:
        raise CodecError(f"field {key!r} must carry a UTC offset, got {text!r}")
    return value.astimezone(UTC)
