"""The wire records of the internal topics (schemas/records.py): an event survives its record exactly, and the
bytes the command worker sends are the messages Faust would have sent and reads back as the same records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from app.cart import rules
from app.cart.stored_event import SCHEMA_VERSION, StoredEvent
from app.query_side.projections import PassingEvent, Purchase, projected_event_of_message, purchase_of
from app.streams.faust_app import app
from schemas.records import (
    CartEventRecord,
    CommandReply,
    event_dict,
    event_message,
    event_of_message,
    reply_message,
)

MEMBER_ID = UUID("00000000-0000-0000-0000-0000000000aa")
CART_ID = UUID("00000000-0000-0000-0000-0000000000cc")
PRODUCT_A = UUID("00000000-0000-0000-0000-00000000000a")
NOW = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)


def an_item(price: str = "19.99") -> rules.Item:
    return rules.Item(PRODUCT_A, UUID("00000000-0000-0000-0000-0000000000ee"), "awesome-desktop-pc", Decimal(price), 1)


def through_json(d: dict[str, Any]) -> dict[str, Any]:
    back: dict[str, Any] = json.loads(json.dumps(d))
    return back


@pytest.mark.parametrize(
    "event",
    [
        rules.ItemAdded(CART_ID, an_item(price="1234567890.123456789")),
        rules.ItemRemoved(CART_ID, PRODUCT_A),
        rules.ItemQuantityIncreased(CART_ID, PRODUCT_A, 3),
        rules.ItemQuantityDecreased(CART_ID, PRODUCT_A, 1),
        rules.ItemPurchased(CART_ID, an_item(), datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_stored_event_survives_its_record(event: rules.Event) -> None:
    original = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 42, "cmd-42", NOW, event)

    back = CartEventRecord(**through_json(event_dict(original))).to_event()

    assert back == original
    assert back.type == type(event).__name__
    assert back.schema_version == SCHEMA_VERSION


def test_a_stored_event_is_written_with_its_type_and_a_utc_time_and_read_back_in_utc() -> None:
    in_paris = datetime(2024, 5, 17, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    original = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 7, "c", in_paris, rules.ItemRemoved(CART_ID, PRODUCT_A))

    d = event_dict(original)
    back = CartEventRecord(**through_json(d)).to_event()

    assert d["type"] == "ItemRemoved"
    assert d["occurred_at"] == "2024-05-17T12:30:15.123456+00:00"
    assert d["seq_nr"] == 7 and d["schema_version"] == SCHEMA_VERSION
    assert back.occurred_at == in_paris
    assert back.occurred_at.utcoffset() == timedelta(0)


def test_a_stored_event_record_keeps_a_schema_version_it_was_given_and_defaults_a_missing_one() -> None:
    d = event_dict(StoredEvent(uuid4(), MEMBER_ID, CART_ID, 1, "c", NOW, rules.ItemRemoved(CART_ID, PRODUCT_A), 2))

    assert CartEventRecord(**d).to_event().schema_version == 2
    del d["schema_version"]
    assert CartEventRecord(**d).to_event().schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(
    "event",
    [
        rules.ItemAdded(CART_ID, an_item(price="1234567890.123456789")),
        rules.ItemPurchased(CART_ID, an_item(), datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_event_message_is_what_faust_sends_for_its_record_and_reads_back_as_it(event: rules.Event) -> None:
    stored = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 42, "cmd-42", NOW, event)
    record = CartEventRecord.of_event(stored)

    message = event_message(stored)

    assert json.loads(message) == json.loads(record.dumps())  # type tag included
    read = app.serializers.loads_value(
        CartEventRecord, message, serializer="json"
    )  # as the query side's agent is given it
    assert isinstance(read, CartEventRecord)
    assert read == record
    assert read.to_event() == stored
    assert event_of_message(message) == stored  # as the query side reads it now (a raw topic)
    assert event_of_message(record.dumps()) == stored  # what a worker that sent the record through Faust wrote


@pytest.mark.parametrize("value", [None, b"", b"{", b"[1]", b'{"event_id": "x"}', b'{"type": "ItemAdded"}'])
def test_a_malformed_event_message_is_a_value_error_type_error_or_key_error(value: bytes | None) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):  # what `decoded_all` skips as malformed, with a log line
        event_of_message(value)


@pytest.mark.parametrize(
    "field, value",
    [
        ("event_id", 1),
        ("member_id", 123),
        ("member_id", ["x"]),
        ("cart_id", None),
        ("seq_nr", 1.5),
        ("seq_nr", "7"),
        ("seq_nr", True),
        ("occurred_at", 0),
        ("payload", []),
    ],
)
def test_an_event_with_a_field_of_the_wrong_type_is_malformed_not_a_crash(field: str, value: Any) -> None:
    # A number where a UUID belongs made UUID() raise AttributeError, which `decoded` does not skip: the query
    # worker exited on it, and again on every redelivery.
    stored = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 42, "cmd-42", NOW, rules.ItemRemoved(CART_ID, uuid4()))
    message = {**json.loads(event_message(stored)), field: value}
    with pytest.raises((KeyError, TypeError, ValueError)):
        event_of_message(json.dumps(message).encode())


def test_purchases_reads_a_purchase_whole_and_of_any_other_event_only_its_member_and_seq_nr() -> None:
    purchase = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 5, "c", NOW, rules.ItemPurchased(CART_ID, an_item(), NOW))
    added = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 4, "c", NOW, rules.ItemAdded(CART_ID, an_item()))

    read = projected_event_of_message(event_message(purchase))
    assert read == purchase_of(purchase)  # what the journal's copy of it projects as
    assert read == Purchase(
        str(purchase.event_id), str(MEMBER_ID), str(CART_ID), 5, str(an_item().product_id), str(an_item().vendor_id),
        an_item().name, an_item().price, an_item().quantity, NOW,
    )  # fmt: skip
    assert projected_event_of_message(event_message(added)) == PassingEvent(str(MEMBER_ID), 4)
    assert projected_event_of_message(CartEventRecord.of_event(added).dumps()) == PassingEvent(str(MEMBER_ID), 4)


@pytest.mark.parametrize("spelled", [str(MEMBER_ID).upper(), MEMBER_ID.hex, f"{{{MEMBER_ID}}}"])
def test_a_member_id_spelled_another_way_reads_as_its_canonical_text(spelled: str) -> None:
    """The duplicate filter keys on this text: a purchase and any other event of a member must give the same."""
    added = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 4, "c", NOW, rules.ItemAdded(CART_ID, an_item()))
    message = {**json.loads(event_message(added)), "member_id": spelled}
    assert projected_event_of_message(json.dumps(message).encode()) == PassingEvent(str(MEMBER_ID), 4)
    bought = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 5, "c", NOW, rules.ItemPurchased(CART_ID, an_item(), NOW))
    message = {**json.loads(event_message(bought)), "member_id": spelled}
    purchase = projected_event_of_message(json.dumps(message).encode())
    assert isinstance(purchase, Purchase) and purchase.member_id == str(MEMBER_ID)


@pytest.mark.parametrize(
    "field, value",
    [
        ("event_id", "x"),
        ("member_id", 7),
        ("cart_id", None),
        ("seq_nr", 5.0),
        ("payload", {}),
        ("payload", {"item": []}),
        ("payload.purchased_at", "2026-12-07T10:00:00"),  # no offset: not a time in UTC
        ("payload.purchased_at", "yesterday"),
        ("item.product_id", 1),
        ("item.vendor_id", "v"),
        ("item.name", None),
        ("item.price", 1.5),
        ("item.price", "NaN"),
        ("item.quantity", "2"),
    ],
)
def test_a_purchase_with_a_field_missing_or_of_the_wrong_type_is_malformed_not_a_crash(field: str, value: Any) -> None:
    purchase = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 5, "c", NOW, rules.ItemPurchased(CART_ID, an_item(), NOW))
    message = json.loads(event_message(purchase))
    where, _, name = field.rpartition(".")
    inner = {"": message, "payload": message["payload"], "item": message["payload"]["item"]}[where]
    inner[name] = value
    with pytest.raises((KeyError, TypeError, ValueError)):
        projected_event_of_message(json.dumps(message).encode())


@pytest.mark.parametrize(
    "field, value", [("member_id", 123), ("member_id", "x"), ("seq_nr", "7"), ("seq_nr", None), ("type", 3)]
)
def test_an_event_purchases_does_not_read_whole_is_still_malformed_without_a_member_or_seq_nr(
    field: str, value: Any
) -> None:
    added = StoredEvent(uuid4(), MEMBER_ID, CART_ID, 4, "c", NOW, rules.ItemAdded(CART_ID, an_item()))
    message = {**json.loads(event_message(added)), field: value}
    with pytest.raises((KeyError, TypeError, ValueError)):
        projected_event_of_message(json.dumps(message).encode())


def test_a_reply_message_is_what_faust_sends_for_the_reply_and_reads_back_as_it() -> None:
    body = {"cart": {"items": [{"price": "19.99", "quantity": 2}], "total": "39.98"}, "events": [], "n": None}
    reply = CommandReply(correlation_id="c-1", status="accepted", body=body)

    message = reply_message(reply)

    assert json.loads(message) == json.loads(reply.dumps())
    read = app.serializers.loads_value(CommandReply, message, serializer="json")
    assert isinstance(read, CommandReply)
    assert (read.correlation_id, read.status, read.body) == ("c-1", "accepted", body)
    assert json.loads(reply_message(CommandReply("c-2", "accepted", {"total": Decimal("1.50")}))) == {
        "correlation_id": "c-2", "status": "accepted", "body": {"total": "1.50"},
        "__faust": {"ns": "schemas.records.CommandReply"},
    }  # fmt: skip
