"""Example round-trips and refusals of the cart codec."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from app.cart.codec import (
    CodecError,
    UnknownEventType,
    cart_from_dict,
    cart_to_dict,
    event_from_payload,
    event_to_payload,
    event_type_name,
    item_from_dict,
    item_to_dict,
)
from app.cart.rules import (
    EMPTY_CART,
    Cart,
    Event,
    Item,
    ItemAdded,
    ItemPurchased,
    ItemQuantityDecreased,
    ItemQuantityIncreased,
    ItemRemoved,
)

CART_ID = UUID("6f1c1f1e-8a0c-4c53-9a55-3f4f1b0b2c01")
PRODUCT_ID = UUID("0b7e2a4e-1d9b-4f7a-8a8e-5c2d7f0e9a11")
VENDOR_ID = UUID("9a3d5c7e-2b4f-4e6a-8c1d-7f9e0a2b4c22")
NOW = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)


def an_item(price: str = "19.99", quantity: int = 2) -> Item:
    return Item(PRODUCT_ID, VENDOR_ID, "Teapot", Decimal(price), quantity)


def through_json(value: dict[str, Any]) -> Any:
    """Serialise and parse, refusing floats, to prove the dict is plain JSON that keeps money exact."""

    def no_floats(text: str) -> Any:
        raise AssertionError(f"float in encoded JSON: {text}")

    return json.loads(json.dumps(value), parse_float=no_floats)


EVENTS: list[Event] = [
    ItemAdded(CART_ID, an_item()),
    ItemRemoved(CART_ID, PRODUCT_ID),
    ItemQuantityIncreased(CART_ID, PRODUCT_ID, 3),
    ItemQuantityDecreased(CART_ID, PRODUCT_ID, 1),
    ItemPurchased(CART_ID, an_item(), NOW),
]


@pytest.mark.parametrize("event", EVENTS, ids=event_type_name)
def test_every_event_type_round_trips_through_json(event: Event) -> None:
    payload = through_json(event_to_payload(event))
    assert event_from_payload(event_type_name(event), payload) == event


def test_an_event_type_name_is_its_class_name() -> None:
    assert [event_type_name(event) for event in EVENTS] == [
        "ItemAdded",
        "ItemRemoved",
        "ItemQuantityIncreased",
        "ItemQuantityDecreased",
        "ItemPurchased",
    ]


def test_an_item_added_payload_uses_snake_case_keys_canonical_uuids_and_decimal_strings() -> None:
    assert event_to_payload(ItemAdded(CART_ID, an_item("3200", 1))) == {
        "cart_id": "6f1c1f1e-8a0c-4c53-9a55-3f4f1b0b2c01",
        "item": {
            "product_id": "0b7e2a4e-1d9b-4f7a-8a8e-5c2d7f0e9a11",
            "vendor_id": "9a3d5c7e-2b4f-4e6a-8c1d-7f9e0a2b4c22",
            "name": "Teapot",
            "price": "3200",
            "quantity": 1,
        },
    }


def test_a_whole_number_price_round_trips_without_gaining_a_fraction_or_exponent() -> None:
    encoded = item_to_dict(an_item("3200"))
    assert encoded["price"] == "3200"
    assert item_from_dict(encoded).price == Decimal("3200")


def test_a_price_with_a_trailing_zero_keeps_its_value_and_its_digits() -> None:
    encoded = item_to_dict(an_item("0.10"))
    decoded = item_from_dict(encoded).price
    assert encoded["price"] == "0.10"
    assert decoded == Decimal("0.1")
    assert decoded.as_tuple() == Decimal("0.10").as_tuple()


def test_a_purchase_time_is_written_with_an_explicit_utc_offset() -> None:
    payload = event_to_payload(ItemPurchased(CART_ID, an_item(), NOW))
    assert payload["purchased_at"] == "2024-05-17T12:30:15.123456+00:00"


def test_a_purchase_time_in_another_offset_is_written_and_read_back_as_the_same_instant_in_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-5)))
    payload = event_to_payload(ItemPurchased(CART_ID, an_item(), local))
    decoded = event_from_payload("ItemPurchased", payload)
    assert payload["purchased_at"] == "2024-05-17T12:30:15.123456+00:00"
    assert isinstance(decoded, ItemPurchased)
    assert decoded.purchased_at == NOW
    assert decoded.purchased_at.tzinfo == UTC


def test_a_naive_purchase_time_cannot_be_encoded() -> None:
    with pytest.raises(CodecError, match="timezone-aware"):
        event_to_payload(ItemPurchased(CART_ID, an_item(), NOW.replace(tzinfo=None)))


def test_a_purchase_time_without_an_offset_cannot_be_decoded() -> None:
    payload = event_to_payload(ItemPurchased(CART_ID, an_item(), NOW))
    payload["purchased_at"] = "2024-05-17T12:30:15"
    with pytest.raises(CodecError, match="UTC offset"):
        event_from_payload("ItemPurchased", payload)


@pytest.mark.parametrize("cart", [EMPTY_CART, Cart(CART_ID, (an_item("3200", 1), an_item("0.10", 7)))])
def test_a_cart_round_trips_through_json(cart: Cart) -> None:
    assert cart_from_dict(through_json(cart_to_dict(cart))) == cart


def test_an_empty_cart_is_encoded_with_a_null_cart_id_and_no_items() -> None:
    assert cart_to_dict(EMPTY_CART) == {"cart_id": None, "items": []}


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType, match="CartExploded"):
        event_from_payload("CartExploded", {"cart_id": str(CART_ID)})


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", 19.99), ("price", "NaN"), ("price", "lots"), ("quantity", "2"), ("quantity", True)],
)
def test_a_malformed_item_field_is_refused(field: str, value: object) -> None:
    encoded: dict[str, object] = {**item_to_dict(an_item()), field: value}
    with pytest.raises(CodecError, match=field):
        item_from_dict(encoded)


def test_a_missing_field_is_refused() -> None:
    with pytest.raises(CodecError, match="product_id"):
        event_from_payload("ItemRemoved", {"cart_id": str(CART_ID)})


def test_a_non_finite_price_cannot_be_encoded() -> None:
    with pytest.raises(CodecError, match="finite"):
        item_to_dict(an_item("Infinity"))
