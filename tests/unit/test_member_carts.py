"""The owner's cache of carts (app/command_side/member_carts.py): what goes in comes out equal, it is kept as values
the garbage collector does not walk, and it forgets what it must. No I/O."""

from __future__ import annotations

import gc
import uuid
from dataclasses import fields
from decimal import Decimal
from typing import Any

from app.cart.member_cart import MemberCart
from app.cart.rules import EMPTY_CART, Cart, Item
from app.command_side.member_carts import MemberCarts


def item(name: str, price: str = "12.50", quantity: int = 2) -> Item:
    return Item(uuid.uuid4(), uuid.uuid4(), name, Decimal(price), quantity)


def fresh(value: Any) -> Any:
    """A tuple made now, as an owner makes its rows (a literal is a constant of the module, and may be frozen)."""
    return tuple([fresh(v) for v in value]) if isinstance(value, tuple) else value


def carts() -> list[MemberCart]:
    rows = fresh(
        (
            ("k1", 1, 2, None, ((0, 41), (3, 7)), "fp1"),
            ("k2", 3, 2, (("error", "ItemNotInCart"), ("reason", "not in the cart")), (), "fp2"),
        )
    )
    return [
        MemberCart(uuid.uuid4()),
        MemberCart(uuid.uuid4(), 2, Cart(uuid.uuid4(), (item("pear"), item("caf\u00e9", "0.01", 10_000))), rows),
        MemberCart(uuid.uuid4(), 9, EMPTY_CART, rows[:1]),  # after a checkout
        MemberCart(uuid.uuid4(), 4, Cart(uuid.uuid4(), ())),  # every item removed: the cart id stays
    ]


def test_a_cart_put_is_got_back_equal() -> None:
    # Every field of these shapes is kept: a field added to one must be added to the cache too.
    assert [f.name for f in fields(MemberCart)] == ["member_id", "version", "cart", "rows"]
    assert [f.name for f in fields(Cart)] == ["cart_id", "items"]
    assert [f.name for f in fields(Item)] == ["product_id", "vendor_id", "name", "price", "quantity"]
    cache = MemberCarts()
    states = carts()
    for state in states:
        cache.put(7, state)
    for state in states:
        got = cache.get(state.member_id)
        assert got == state and got is not None and got.cart.total == state.cart.total
    assert cache.get(uuid.uuid4()) is None


def test_the_carts_are_kept_as_values_the_garbage_collector_does_not_walk() -> None:
    """A full collection walks every tracked object while every command in flight waits; an owner keeps up to
    100,000 carts, about fifteen objects each as `MemberCart`s."""
    cache = MemberCarts()
    for state in carts():
        cache.put(0, state)
    # A collection lets go of a tuple once it has let go of what the tuple holds, and it looks at the holder first:
    # one level of nesting a collection (an outcome's positions are five levels down).
    for _ in range(5):
        gc.collect()
    assert not any(gc.is_tracked(kept) for kept in cache._carts.values())
    assert not any(gc.is_tracked(key) for key in cache._carts)


def test_the_least_recently_used_cart_goes_first() -> None:
    cache = MemberCarts(capacity=2)
    first, second, third, _ = carts()
    cache.put(0, first)
    cache.put(0, second)
    assert cache.get(first.member_id) == first  # now the most recently used
    cache.put(0, third)
    assert len(cache) == 2 and cache.get(second.member_id) is None and cache.get(first.member_id) == first


def test_the_carts_of_partitions_another_owner_may_have_written_are_forgotten() -> None:
    cache = MemberCarts()
    states = carts()
    for partition, state in enumerate(states):
        cache.put(partition, state)
    cache.drop([0, 1])
    assert [cache.get(s.member_id) is not None for s in states] == [False, False, True, True]
    cache.keep_only([3])
    assert [cache.get(s.member_id) is not None for s in states] == [False, False, False, True]


def test_where_a_command_s_events_went_is_recorded_in_the_kept_cart_or_in_the_one_given() -> None:
    cache = MemberCarts()
    kept, _, gone, _ = carts()
    kept = MemberCart(
        kept.member_id, 2, carts()[1].cart, fresh((("k1", 1, 1, None, (), None), ("k2", 2, 2, None, (), None)))
    )
    cache.put(1, kept)
    older = MemberCart(kept.member_id)  # the batch's state; a later batch's, kept since, is what counts
    cache.remember_emitted(1, older, "k2", [(4, 99)])
    assert cache.get(kept.member_id) == kept.remember_emitted("k2", [(4, 99)])
    assert cache.get(kept.member_id).outcome_of("k2").positions == ((4, 99),)  # type: ignore[union-attr]

    cache.remember_emitted(1, gone, "k1", [(4, 100)])  # not kept (evicted): the cart given, remembered, is kept
    assert cache.get(gone.member_id) == gone.remember_emitted("k1", [(4, 100)])
