"""The bulk loader's histories (app/tools/bulk_load.py), without a store: valid as the cart's own rules make them.
Written into Cassandra and read back by verify and rebuild in tests/integration/test_rebuild.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from app.cart.member_cart import MemberCart
from app.cart.rules import ItemAdded, ItemPurchased, ItemQuantityDecreased, ItemQuantityIncreased, ItemRemoved
from app.cart.stored_event import StoredEvent
from app.query_side.projections import PROJECTED_EVENT_TYPES, PROJECTIONS, purchase_of
from app.tools.bulk_load import Catalogue, member_history, purchases_of, split

END = datetime(2026, 12, 1, tzinfo=UTC)
START = END - timedelta(days=30)


@pytest.mark.parametrize("events", [1, 2, 3, 7, 40, 41, 250])
def test_a_generated_history_has_exactly_its_events_numbered_one_to_n_in_command_batches(events: int) -> None:
    rng = random.Random(events)
    member_id = uuid4()
    history = member_history(member_id, events, Catalogue.random(3, 20, rng), rng, START, END)

    flat = [e for batch in history for e in batch]
    assert [e.seq_nr for e in flat] == list(range(1, events + 1))
    assert all(e.member_id == member_id for e in flat)
    for batch in history:  # one command per batch: one command id and one time
        assert len({e.command_id for e in batch}) == 1 and len({e.occurred_at for e in batch}) == 1
    assert len({batch[0].command_id for batch in history}) == len(history)
    MemberCart(member_id).with_events(flat)  # the cart's own replay accepts it (it refuses a gap)


def test_generated_carts_are_checked_out_with_utc_times_in_order_and_prices_of_two_decimals() -> None:
    rng = random.Random(7)
    histories = [member_history(uuid4(), 40, Catalogue.random(5, 50, rng), rng, START, END) for _ in range(50)]

    for history in histories:
        flat = [e for batch in history for e in batch]
        state = MemberCart(flat[0].member_id).with_events(flat)
        assert state.cart.is_empty  # 40 events: every cart can be checked out, and is
        assert purchases_of(history) > 0
        times = [e.occurred_at for e in flat]
        assert times == sorted(times) and all(t.utcoffset() == timedelta(0) and t.microsecond == 0 for t in times)
        assert times[0] >= START and times[-1] < END + timedelta(hours=1)
        for e in flat:
            if isinstance(e.event, ItemAdded | ItemPurchased):
                assert e.event.item.price.as_tuple().exponent == -2 and e.event.item.price > 0
            if isinstance(e.event, ItemPurchased):
                assert e.event.purchased_at == e.occurred_at
    kinds = {type(e.event) for history in histories for batch in history for e in batch}
    assert kinds == {ItemAdded, ItemPurchased, ItemRemoved, ItemQuantityIncreased, ItemQuantityDecreased}


def test_events_are_split_over_members_as_evenly_as_whole_numbers_allow() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(1_000_000, 25_000) == [40] * 25_000
    assert sum(split(999_999, 7)) == 999_999


def test_only_purchases_make_read_model_updates_so_verify_decodes_only_those() -> None:
    rng = random.Random(3)
    history = member_history(uuid4(), 200, Catalogue.random(2, 10, rng), rng, START, END)
    events: list[StoredEvent] = [e for batch in history for e in batch]

    purchases = [purchase_of(event) for event in events]
    for event, purchase in zip(events, purchases, strict=True):
        assert (purchase is not None) == (event.type in PROJECTED_EVENT_TYPES)
    billed = [PROJECTIONS["vendor_billing"](p, 0, 0) for p in purchases if p is not None]
    bought = [e.event.item.subtotal for e in events if isinstance(e.event, ItemPurchased)]
    assert sum((u.delta for u in billed), Decimal(0)) == sum(bought, Decimal(0)) > 0
