"""What a journal adds up to (app/query_side/rebuild.py) does not depend on the order the scan brings the pages in
nor on how it was split between processes: `cart verify` and `cart rebuild` read it with one process or several."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from uuid import UUID

from app.cart.codec import event_to_payload
from app.cart.rules import Item, ItemPurchased
from app.command_side.journal import JournalPage
from app.query_side.projections import VENDOR_BILLING
from app.query_side.rebuild import JournalSums

VENDOR = uuid.uuid5(uuid.NAMESPACE_DNS, "vendor")
AT = datetime(2026, 12, 5, 20, 5, 27, 414000, tzinfo=UTC)


def checkout(member_id: UUID, *names: str) -> list[SimpleNamespace]:
    """A checkout's journal rows: one purchase per item, all at the same time, as the cart writes them."""
    cart_id = uuid.uuid4()
    rows = []
    for seq_nr, name in enumerate(names, start=1):
        item = Item(uuid.uuid5(uuid.NAMESPACE_DNS, name), VENDOR, name, Decimal("2.50"), 1)
        event = ItemPurchased(cart_id, item, AT)
        rows.append(
            SimpleNamespace(
                member_id=member_id, event_id=uuid.uuid4(), cart_id=cart_id, seq_nr=seq_nr, command_id="checkout",
                occurred_at=AT.replace(tzinfo=None), type="ItemPurchased", schema_version=1,
                payload=json.dumps(event_to_payload(event)),
            )
        )  # fmt: skip
    return rows


def summed(*parts: list[list[SimpleNamespace]]) -> JournalSums:
    """The sums of each part's pages, merged as the processes' are."""
    whole = JournalSums()
    for pages in parts:
        part = JournalSums()
        for rows in pages:
            part.absorb(JournalPage(rows))
        whole.merge(part)
    return whole


def test_rows_do_not_depend_on_the_order_or_split_of_the_scan_even_for_purchases_at_the_same_millisecond() -> None:
    first, second = uuid.UUID(int=1), uuid.UUID(int=2)
    pages = [checkout(first, "apple", "pear"), checkout(second, "fig", "banana")]

    one = summed(pages).states()
    for order in itertools.permutations(pages):
        assert summed(list(order)).states() == one
        assert summed([order[0]], [order[1]]).states() == one  # two processes, a member each
    assert summed([[row] for page in pages for row in page]).states() == one  # a page per row

    [row] = one[VENDOR_BILLING].values()
    assert row.total == Decimal("10.00") and row.version == 4
    # The same millisecond: the later member's last purchase, the one of the member's that the live owner applies last.
    assert row.name == "banana"
