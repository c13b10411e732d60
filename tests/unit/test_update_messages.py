"""How `purchases` puts row updates into messages (app/query_side/projections.py): each to its row's partition, in
source order per partition, at most UPDATES_PER_MESSAGE to a message; and the owners read back what was sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from app.cart.rules import Item, ItemPurchased
from app.cart.stored_event import StoredEvent
from app.query_side.projections import (
    UPDATES_PER_MESSAGE,
    RowUpdate,
    item_purchased_message,
    purchase_of,
    update_messages,
    updates_message,
    updates_of,
)
from app.streams.partitioning import partition_of

PARTITIONS = 12


def an_update(row: tuple[str, ...], source_offset: int) -> RowUpdate:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    return RowUpdate(row, Decimal("1.25"), "name", str(uuid4()), source_offset + 1, 3, source_offset, at)


def test_each_update_goes_to_its_rows_partition_in_source_order_at_most_so_many_to_a_message() -> None:
    rows = [(str(uuid4()), "2026", "12") for _ in range(7)]
    updates = [an_update(rows[n % len(rows)], n) for n in range(3 * UPDATES_PER_MESSAGE)]

    def where(key: str) -> int:
        return partition_of(key, PARTITIONS)

    messages = update_messages(updates, where)

    received: dict[int, list[RowUpdate]] = {}
    for partition, message in messages:
        carried = updates_of(message)
        assert 0 < len(carried) <= UPDATES_PER_MESSAGE
        assert all(where(update.key) == partition for update in carried)
        received.setdefault(partition, []).extend(carried)
    for partition, run in received.items():  # the marks rely on the source order per partition
        assert run == [u for u in updates if where(u.key) == partition]
    assert sum(len(run) for run in received.values()) == len(updates)
    assert len(messages) < len(updates) / 10  # many to a message


def test_a_message_of_one_update_as_older_workers_sent_it_is_still_read() -> None:
    from app.streams.faust_app import app

    update = an_update(("vendor", "2026", "12"), 41)
    as_faust_sent_it = app.serializers.dumps_value(None, update.to_dict(), serializer="json")  # the json topic
    assert updates_of(as_faust_sent_it) == [update]


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"[]",
        b'{"updates": [{"row": ["v"]}]}',
        b"{}",
        b'{"updates": 3}',
        b'{"updates": [["v"]]}',
        b'{"updates": [[["v"], "1", "n", "00000000-0000-0000-0000-0000000000aa", 1, 3, 41, "2026-12-03T00:00"]]}',
    ],
)
def test_a_malformed_update_message_is_a_value_error_type_error_or_key_error(value: bytes | None) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):  # what `decoded_all` skips as malformed, with a log line
        updates_of(value)


@pytest.mark.parametrize(
    "field, value",
    [
        ("member_id", 123),
        ("member_id", None),
        ("seq_nr", 1.5),
        ("seq_nr", "7"),
        ("source_offset", True),
        ("row", [1, 2]),
        ("row", "v/2026/12"),
        ("row", []),
        ("delta", 1.25),
        ("name", 7),
    ],
)
def test_an_update_with_a_field_of_the_wrong_type_is_malformed_not_a_crash(field: str, value: Any) -> None:
    # A number where a UUID belongs made UUID() raise AttributeError, which `decoded` does not skip: the worker
    # exited on it, and again on every redelivery.
    fields = {**an_update(("vendor", "2026", "12"), 41).to_dict(), field: value}
    with pytest.raises((KeyError, TypeError, ValueError)):
        updates_of(orjson.dumps({"updates": [fields]}))  # as sent from 2026-12-03 to 2026-12-07
    with pytest.raises((KeyError, TypeError, ValueError)):
        updates_of(orjson.dumps({"updates": [list(fields.values())]}))  # as sent since


@pytest.mark.parametrize(
    "field, value", [("delta", "NaN"), ("delta", "1,5"), ("occurred_at", "not a time"), ("source_index", None)]
)
def test_an_update_with_a_field_of_the_right_type_but_no_value_is_malformed(field: str, value: Any) -> None:
    fields = {**an_update(("vendor", "2026", "12"), 41).to_dict(), field: value}
    with pytest.raises((KeyError, TypeError, ValueError)):
        updates_of(orjson.dumps({"updates": [list(fields.values())]}))


def test_a_rows_partition_is_the_one_faust_chose_for_its_key() -> None:
    """Before 2026-12-03 updates were sent keyed by the row and Faust picked the partition; now `purchases` names
    it. A row whose updates moved to another partition would have two owners with two states of it."""
    from app.streams.faust_app import popular_items_updates_topic

    every = list(range(PARTITIONS))
    for _ in range(200):
        key = f"{uuid4()}/{uuid4()}/2026/12/3"
        key_bytes, _ = popular_items_updates_topic.prepare_key(key, None)
        assert partition_of(key, PARTITIONS) == DefaultPartitioner()(key_bytes, every, every)


# Times whose isoformat() differs in shape: no microseconds, microseconds, another offset than UTC's.
TIMES = [
    datetime(2026, 12, 3, tzinfo=UTC),
    datetime(2026, 12, 3, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 12, 3, 8, 0, 0, 1000, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("at", TIMES)
def test_an_update_message_carries_each_update_as_its_fields_in_order_and_reads_back_as_it(at: datetime) -> None:
    """Messages leave the times to orjson (faster than isoformat()); what they carry must be what isoformat()
    writes, which the owners read back."""
    updates = [
        RowUpdate(("v", "2026", "12"), Decimal("1234567.125"), "n\u00e9", str(uuid4()), 7, 3, 41, at),
        RowUpdate(("v", "p", "2026", "12", "3"), Decimal(2), "", str(uuid4()), 8, 3, 41, at, 2),
    ]
    assert updates_message(updates) == orjson.dumps({"updates": [list(u.to_dict().values()) for u in updates]})
    assert list(updates[0].to_dict()) == list(RowUpdate._fields)  # the order of the fields in a message
    assert updates_of(updates_message(updates)) == updates


@pytest.mark.parametrize("at", TIMES)
def test_an_update_message_as_sent_before_2026_12_07_a_dict_per_update_is_still_read(at: datetime) -> None:
    updates = [
        RowUpdate(("v", "2026", "12"), Decimal("1.5"), "n", str(uuid4()), 7, 3, 41, at),
        RowUpdate(("v", "p", "2026", "12", "3"), Decimal(2), "", str(uuid4()), 8, 3, 41, at, 2),
    ]
    assert updates_of(orjson.dumps({"updates": [u.to_dict() for u in updates]})) == updates


SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "item_purchased.v1.json").read_text())


@pytest.mark.parametrize("at", TIMES[:2])  # a purchase's time is in UTC (the cart's rules)
def test_an_item_purchased_message_is_the_documented_json_with_ids_and_time_as_str_and_isoformat(at: datetime) -> None:
    item = Item(uuid4(), uuid4(), "caf\u00e9 \U0001f600", Decimal("1234567.89"), 3)
    stored = StoredEvent(uuid4(), uuid4(), uuid4(), 5, "c", at, ItemPurchased(uuid4(), item, at))
    document = {
        "schemaVersion": 1,
        "eventId": str(stored.event_id),
        "memberId": str(stored.member_id),
        "cartId": str(stored.cart_id),
        "productId": str(item.product_id),
        "vendorId": str(item.vendor_id),
        "name": item.name,
        "price": "1234567.89",
        "quantity": 3,
        "purchasedAt": at.isoformat(),
    }
    message = item_purchased_message(purchase_of(stored))
    assert message == orjson.dumps(document)
    jsonschema.validate(orjson.loads(message), SCHEMA, format_checker=jsonschema.FormatChecker())
