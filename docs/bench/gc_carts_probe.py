"""How long a full garbage collection takes with N carts held as the command worker holds them (`MemberCarts`, each
cart with three items added and its last command's events emitted), everything else frozen, five passes in a row
(docs/benchmarks.md, 2026-12-07, late afternoon and evening).

.venv/bin/python docs/bench/gc_carts_probe.py   (from the checkout's root; no service needed)
"""

import gc
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.cart.member_cart import MemberCart
from app.cart.rules import Item, ItemAdded
from app.cart.stored_event import StoredEvent
from app.command_side.member_carts import MemberCarts


def a_cart(member_id: UUID) -> MemberCart:
    cart_id, now = uuid.uuid4(), datetime.now(UTC)
    events = [
        StoredEvent(
            uuid.uuid4(),
            member_id,
            cart_id,
            n,
            f"c{n}",
            now,
            ItemAdded(cart_id, Item(uuid.uuid4(), uuid.uuid4(), f"product {n}", Decimal("12.50"), 2)),
        )
        for n in (1, 2, 3)
    ]
    return MemberCart(member_id).with_events(events)


def main() -> None:
    gc.collect()
    gc.freeze()
    for count in (10_000, 100_000):
        carts = MemberCarts(count)
        for _ in range(count):
            member_id = uuid.uuid4()
            state = a_cart(member_id)
            carts.put(0, state)
            carts.remember_emitted(0, state, state.rows[-1][0], [(3, 17)])  # as the owner does once emitted
        # Tuples of plain values are let go of by the collector a level of nesting a pass (see MemberCarts).
        for n in range(1, 6):
            started = time.perf_counter()
            gc.collect()
            took_ms = (time.perf_counter() - started) * 1000
            print(f"{count:,} carts, pass {n}: {len(gc.get_objects()):,} tracked objects after it, {took_ms:.0f} ms")
        del carts


if __name__ == "__main__":
    main()
