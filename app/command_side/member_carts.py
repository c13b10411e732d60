"""The owner's carts between commands: in memory, a cache of the journal, bounded.

Only what the journal holds goes in (a cart is put after its events were appended), so a cart found here is the
journal's state of that member, as long as this process has owned the member's partition without a break: when
another owner may have written for a partition, its carts are dropped (`drop`) and loaded again from the journal.
At most `capacity` carts are kept; the least recently used go first and are loaded from the journal when needed.

A cart is kept as plain values (`Kept`: numbers, strings, Decimals and tuples of them), not as the `MemberCart` it is
put and got as. The garbage collector stops tracking such tuples, and a full collection walks every object it
tracks while every command in flight waits: as objects, about fifteen a member (the cart, its items, their UUIDs),
100,000 cached carts made each full collection take 561-630 ms (docs/bench/gc_carts_probe.py; docs/benchmarks.md,
2026-12-07, evening). Building the objects again costs a few microseconds a command.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TypeAlias
from uuid import UUID

from app.cart.member_cart import MemberCart, OutcomeRow, rows_with_emitted
from app.cart.rules import EMPTY_CART, Cart, Item

KeptItem: TypeAlias = tuple[int, int, str, Decimal, int]
"""An `Item`: product id and vendor id as the UUIDs' numbers, name, price, quantity."""
Kept: TypeAlias = tuple[int, int, int | None, tuple[KeptItem, ...], tuple[OutcomeRow, ...]]
"""A member's cart as kept: its partition, version, cart id (a number, or None), items and outcome rows."""


class MemberCarts:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._carts: OrderedDict[int, Kept] = OrderedDict()  # by the member id's number

    def get(self, member_id: UUID) -> MemberCart | None:
        key = member_id.int
        found = self._carts.get(key)
        if found is None:
            return None
        self._carts.move_to_end(key)
        return _member_cart(member_id, found)

    def put(self, partition: int, state: MemberCart) -> None:
        key = state.member_id.int
        self._carts[key] = _kept(partition, state)
        self._carts.move_to_end(key)
        while len(self._carts) > self.capacity:
            self._carts.popitem(last=False)

    def remember_emitted(
        self, partition: int, state: MemberCart, command_id: str, positions: Sequence[tuple[int, int]]
    ) -> None:
        """Record where a command's events were emitted in the member's cart (`MemberCart.remember_emitted`): the
        cart kept, or `state` when it is not kept any more. On the kept rows, without building the cart."""
        key = state.member_id.int
        kept = self._carts.get(key)
        if kept is None:
            self.put(partition, state.remember_emitted(command_id, positions))
            return
        rows = rows_with_emitted(kept[4], command_id, positions)
        if rows is not kept[4]:
            self._carts[key] = (partition, kept[1], kept[2], kept[3], rows)
        self._carts.move_to_end(key)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the carts of these partitions (another owner may have written for them)."""
        gone = set(partitions)
        for key in [k for k, kept in self._carts.items() if kept[0] in gone]:
            del self._carts[key]

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget the carts of every other partition."""
        kept_partitions = set(partitions)
        for key in [k for k, kept in self._carts.items() if kept[0] not in kept_partitions]:
            del self._carts[key]

    def __len__(self) -> int:
        return len(self._carts)


def _kept(partition: int, state: MemberCart) -> Kept:
    cart = state.cart
    # From a list, so that the item tuples are older than the tuple holding them: a collection lets go of a tuple
    # whose contents it has let go of already, and walks the young in the order they were made.
    items = tuple([(i.product_id.int, i.vendor_id.int, i.name, i.price, i.quantity) for i in cart.items])
    return partition, state.version, None if cart.cart_id is None else cart.cart_id.int, items, state.rows


def _member_cart(member_id: UUID, kept: Kept) -> MemberCart:
    _, version, cart_id, items, rows = kept
    if cart_id is None and not items:
        cart = EMPTY_CART
    else:
        cart = Cart(
            None if cart_id is None else UUID(int=cart_id),
            tuple(Item(UUID(int=p), UUID(int=v), name, price, quantity) for p, v, name, price, quantity in items),
        )
    return MemberCart(member_id, version, cart, rows)
